import json
import pickle
import re
import unicodedata

import numpy as np
import pytest
import torch

from captum_rnn.data import Vocabulary


def test_special_indices_and_order():
    vocab = Vocabulary(["b", "a", "b", "<pad>", "c"])
    assert vocab.pad_index == 0 and vocab.unk_index == 1
    assert vocab.pad_token == "<pad>" and vocab.unk_token == "<unk>"
    assert vocab.itos == ["<pad>", "<unk>", "b", "a", "c"]
    assert vocab.stoi == {"<pad>": 0, "<unk>": 1, "b": 2, "a": 3, "c": 4}
    assert len(vocab) == 5
    assert "a" in vocab and "z" not in vocab


def test_custom_special_tokens():
    vocab = Vocabulary(["x"], pad_token="[PAD]", unk_token="[UNK]")
    assert vocab.itos == ["[PAD]", "[UNK]", "x"]
    with pytest.raises(ValueError, match="differ"):
        Vocabulary(pad_token="same", unk_token="same")


def test_itos_and_stoi_are_copies():
    vocab = Vocabulary(["a"])
    vocab.itos.append("zzz")
    vocab.stoi["zzz"] = 9
    assert len(vocab) == 3 and "zzz" not in vocab


def test_build_orders_by_frequency_then_alphabetically():
    texts = ["b a c", "c b", "c d", ["e", "e", "e"]]
    vocab = Vocabulary.build(texts)
    assert vocab.itos[2:] == ["c", "e", "b", "a", "d"]
    assert Vocabulary.build(reversed(texts)) == vocab


def test_build_min_freq_max_size_and_kwargs():
    texts = ["a a a b b c", "a b d"]
    assert Vocabulary.build(texts, min_freq=2).itos[2:] == ["a", "b"]
    assert Vocabulary.build(texts, max_size=1).itos[2:] == ["a"]
    assert len(Vocabulary.build(texts, max_size=0)) == 2
    vocab = Vocabulary.build([["x", "<unk>", "PAD"]], pad_token="PAD")
    assert vocab.itos == ["PAD", "<unk>", "x"]
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build(texts, min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(texts, max_size=-1)
    with pytest.raises(TypeError):
        Vocabulary.build("a single string")


def test_build_with_custom_tokenizer():
    vocab = Vocabulary.build(["a,b", "b"], tokenizer=lambda s: s.split(","))
    assert vocab.itos[2:] == ["b", "a"]


def test_index_token_encode_decode():
    vocab = Vocabulary(["good", "film"])
    assert vocab.index("good") == 2 and vocab.index("nope") == 1
    assert vocab.token(3) == "film"
    assert vocab.encode("A good, good film") == [1, 2, 1, 2, 3]
    assert vocab.encode(["film", "GOOD"]) == [3, 1]
    assert vocab.decode([3, 1, 0]) == ["film", "<unk>", "<pad>"]
    assert vocab.decode(torch.tensor([2, 0])) == ["good", "<pad>"]
    assert vocab.decode(np.array([2, 3])) == ["good", "film"]
    with pytest.raises(ValueError, match="outside"):
        vocab.token(4)
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([2, 7])
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="1-D"):
        vocab.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError):
        vocab.decode(torch.tensor([2.0]))
    with pytest.raises(TypeError):
        vocab.encode(3)
    with pytest.raises(TypeError):
        vocab.encode(["ok", 3])


def test_encode_batch_pads_with_zero():
    vocab = Vocabulary(["a", "b"])
    ids, lengths = vocab.encode_batch(["a b a", "b", ["a", "zz"]])
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.tolist() == [[2, 3, 2], [3, 0, 0], [2, 1, 0]]
    assert lengths.tolist() == [3, 1, 2]
    empty_ids, empty_lengths = vocab.encode_batch([])
    assert empty_ids.shape == (0, 0) and empty_lengths.shape == (0,)


def test_equality():
    assert Vocabulary(["a"]) == Vocabulary(["a"])
    assert Vocabulary(["a"]) != Vocabulary(["b"])
    assert Vocabulary(["a"]) != Vocabulary(["a"], unk_token="?")
    assert Vocabulary(["a"]) != ["<pad>", "<unk>", "a"]


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary(["naïve", "don't", "\u2603"], pad_token="P", unk_token="U")
    path = tmp_path / "vocab.json"
    vocab.save(path)
    json.loads(path.read_text(encoding="utf-8"))  # plain JSON
    assert Vocabulary.load(path) == vocab
    assert Vocabulary.load(str(path)).itos == vocab.itos


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json", "JSON"),
        ("[1, 2]", "JSON object"),
        ('{"format": "other", "version": 1}', "format"),
        (
            '{"format": "captum_rnn.Vocabulary", "version": 99, "pad_token": "<pad>", '
            '"unk_token": "<unk>", "itos": ["<pad>", "<unk>"]}',
            "version",
        ),
        (
            '{"format": "captum_rnn.Vocabulary", "version": 1, "pad_token": "<pad>", '
            '"unk_token": "<unk>", "itos": ["<unk>", "<pad>"]}',
            "start with",
        ),
        (
            '{"format": "captum_rnn.Vocabulary", "version": 1, "pad_token": "<pad>", '
            '"unk_token": "<unk>", "itos": ["<pad>", "<unk>", "a", "a"]}',
            "duplicate",
        ),
        (
            '{"format": "captum_rnn.Vocabulary", "version": 1, "pad_token": "<pad>", '
            '"unk_token": "<unk>", "itos": ["<pad>", "<unk>", 5]}',
            "list of strings",
        ),
        (
            '{"format": "captum_rnn.Vocabulary", "version": 1, "pad_token": 0, '
            '"unk_token": "<unk>", "itos": ["<pad>", "<unk>"]}',
            "pad_token",
        ),
    ],
)
def test_load_rejects_malformed_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        Vocabulary.load(path)


def test_load_rejects_non_utf8(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError):
        Vocabulary.load(path)


def test_nfc_and_nfd_spellings_share_an_index():
    nfd = unicodedata.normalize("NFD", "naïve")
    vocab = Vocabulary(["café", nfd])  # one composed, one decomposed entry
    for text in ("café naïve", unicodedata.normalize("NFD", "café naïve")):
        assert vocab.encode(text) == [2, 3]
    assert vocab.encode([unicodedata.normalize("NFD", "café"), "naïve"]) == [2, 3]
    assert vocab.index("naïve") == 3 and "naïve" in vocab
    assert vocab.index(unicodedata.normalize("NFD", "café")) == 2
    # an exact entry wins over another spelling's alias
    both = Vocabulary([nfd, "naïve"])
    assert both.index(nfd) == 2 and both.index("naïve") == 3


def test_vocabulary_pickled_before_the_nfc_lookup_still_works():
    vocab = Vocabulary([unicodedata.normalize("NFD", "naïve")])
    state = dict(vocab.__dict__)
    del state["_nfc"]
    old = Vocabulary.__new__(Vocabulary)
    old.__setstate__(state)
    assert old.index("naïve") == 2
    assert pickle.loads(pickle.dumps(vocab)).encode("naïve") == [2]


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"pad_token": ["<pad>"]}, "pad_token"),
        ({"unk_token": None}, "unk_token"),
        ({"itos": {"0": "<pad>"}}, "itos"),
        ({"itos": ["<pad>", "<unk>", ["a"]]}, "itos[2]"),
        ({"version": True}, "version"),
    ],
)
def test_load_names_the_file_and_the_field(tmp_path, doc, field):
    data = Vocabulary(["a"]).to_dict() | doc
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(field)) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)
