import functools
import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_rnn.data import Vocabulary, tokenize
from captum_rnn.data._tokenizer import _extender_class


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


# -- Unicode: graphemes stay whole, NFC and NFD agree ---------------------------------

NFD = functools.partial(unicodedata.normalize, "NFD")


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # viramas and vowel signs (Mn, Mc)
        ("مَرْحَبًا بِالْعَالَمِ", ["مَرْحَبًا", "بِالْعَالَمِ"]),  # Arabic harakat
        ("İstanbul", ["i̇stanbul"]),  # lower() leaves "i" + U+0307
        ("good 👍🏽!", ["good", "👍🏽", "!"]),  # skin-tone modifier (Sk)
        ("👨\u200d👩\u200d👧 ok", ["👨\u200d👩\u200d👧", "ok"]),  # ZWJ sequence
        ("🇫🇷🇩🇪", ["🇫🇷", "🇩🇪"]),  # flags: regional-indicator pairs
        ("1️⃣ #️⃣", ["1️⃣", "#️⃣"]),  # keycaps
        ("می\u200cخواهم", ["می\u200cخواهم"]),  # Persian zero-width non-joiner
        ("3.5\u0301 x", ["3.5\u0301", "x"]),
    ],
)
def test_combining_marks_and_emoji_stay_with_their_base(text, tokens):
    assert tokenize(text) == tokens
    assert tokenize(NFD(text)) == tokens


def test_nfd_cafe_is_one_known_token():
    assert tokenize(NFD("Café")) == ["café"] == tokenize("Café")
    assert tokenize(NFD("Café"), lowercase=False) == ["Café"]
    vocab = Vocabulary.build(["café crème"])
    assert vocab.encode(NFD("café crème")) == vocab.encode("café crème") == [2, 3]


# The tokenizer before it knew about marks: ASCII text must still split exactly so.
_ASCII_RE = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:['\u2019-]\w+)*|[^\w\s]")

MARKS = "\u0301\u0308\u0327\u094d\u093e\u0947\u064e\u0652\u20e3\ufe0f"
PIECES = "aeiouAEIOUİıßé5 _-'.,$!\t\n\u2019👍🏽🇫🇷\u200d\u200cनमस्तेمَرْ" + MARKS
mixed_text = st.text(alphabet=st.sampled_from(PIECES), max_size=40)
any_text = st.text(max_size=40)


def _normal(text: str, lowercase: bool) -> str:
    text = unicodedata.normalize("NFC", text)
    return unicodedata.normalize("NFC", text.lower()) if lowercase else text


def _starts(tokens: list[str], text: str) -> list[int]:
    """Where each token starts in ``text`` (tokens cover its non-space characters)."""
    starts, at = [], 0
    for token in tokens:
        while text[at].isspace():
            at += 1
        assert text.startswith(token, at), (token, text[at:])
        starts.append(at)
        at += len(token)
    assert text[at:].strip() == ""
    return starts


@settings(max_examples=300, deadline=None)
@given(st.one_of(any_text, mixed_text), st.booleans())
def test_tokens_are_nonempty_graphemes_that_cover_the_text(text, lowercase):
    tokens = tokenize(text, lowercase=lowercase)
    normal = _normal(text, lowercase)
    assert all(tokens) and not any(ch.isspace() for tok in tokens for ch in tok)
    assert all(unicodedata.is_normalized("NFC", tok) for tok in tokens)
    # nothing dropped: the tokens are the text without its whitespace
    assert "".join(tokens) == "".join(ch for ch in normal if not ch.isspace())
    for start in _starts(tokens, normal):
        if start > 0 and not normal[start - 1].isspace():
            # a token that touches the previous one never begins with a mark
            assert unicodedata.category(normal[start])[0] != "M", (normal, tokens)


@settings(max_examples=300, deadline=None)
@given(st.one_of(any_text, mixed_text), st.booleans())
def test_nfc_and_nfd_give_the_same_tokens(text, lowercase):
    nfc = unicodedata.normalize("NFC", text)
    assert tokenize(NFD(text), lowercase) == tokenize(nfc, lowercase) == tokenize(text, lowercase)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40), st.booleans())
def test_ascii_text_splits_as_before(text, lowercase):
    expected = _ASCII_RE.findall(text.lower() if lowercase else text)
    assert tokenize(text, lowercase=lowercase) == expected


def test_every_combining_mark_of_unicode_is_an_extender():
    # the class is built from the assigned planes only; check it against all of Unicode
    extender = re.compile(_extender_class())
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code))[0] == "M":
            assert extender.fullmatch(chr(code)), hex(code)
    assert not extender.match("a") and not extender.match(" ")
