import pytest

from captum_rnn.data import tokenize


def test_words_punctuation_and_numbers():
    assert tokenize("Don't panic: a well-made film, 3.5 stars!") == [
        "don't",
        "panic",
        ":",
        "a",
        "well-made",
        "film",
        ",",
        "3.5",
        "stars",
        "!",
    ]


def test_each_punctuation_char_is_a_token():
    assert tokenize("wow!!! (really?)") == ["wow", "!", "!", "!", "(", "really", "?", ")"]


def test_outer_apostrophes_and_hyphens_are_split():
    assert tokenize("'quoted' -dash- rock'n'roll") == [
        "'",
        "quoted",
        "'",
        "-",
        "dash",
        "-",
        "rock'n'roll",
    ]


def test_lowercase_flag_and_unicode():
    assert tokenize("Café GOOD", lowercase=False) == ["Café", "GOOD"]
    assert tokenize("Café GOOD") == ["café", "good"]


def test_whitespace_only_gives_no_tokens():
    assert tokenize("") == []
    assert tokenize(" \t\r\n ") == []


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a"]])
def test_non_str_is_a_type_error(bad):
    with pytest.raises(TypeError, match="text"):
        tokenize(bad)
