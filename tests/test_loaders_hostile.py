"""Loaders meet hostile files: any JSON document gives a valid object or a ``ValueError``
naming the file, never ``RecursionError``, ``TypeError``, ``KeyError`` or another type.

Random documents come from hypothesis ``recursive`` strategies, both free-form and as
valid documents with fields replaced by random JSON or deleted.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captum_rnn import Explanation, Explanations
from captum_rnn._utils.jsonio import (
    DEFAULT_MAX_BYTES,
    check,
    decode_float,
    encode_float,
    load_json,
    require,
)
from captum_rnn.data import Vocabulary
from captum_rnn.rules import DFA, RuleList

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)  # too large for a float
    | st.floats()  # NaN and infinities: Python writes and reads them as bare tokens
    | st.text(max_size=6)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "__float__"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _valid_explanation() -> dict[str, Any]:
    return Explanation(
        tokens=["a", "$5", "b"],
        scores=[0.5, math.nan, -1.0],
        method="ig",
        target=1,
        predicted=0,
        probability=0.7,
        output=1.5,
        delta=0.01,
        n_steps=20,
        feature_scores=[[1.0], [math.inf], [0.0]],
        feature_names=["x"],
        label=math.nan,
        class_names=["neg", "pos"],
        extra={"k": [1, math.inf]},
    ).to_dict()


def _valid_dfa() -> dict[str, Any]:
    return DFA("ab", [[1, 0], [1, 1]], {1}, 0).to_dict()


def _valid_rule_list() -> dict[str, Any]:
    texts = ["good film", "bad film", "good plot", "bad plot"] * 3
    return RuleList(min_support=2).fit(texts, [1, 0, 1, 0] * 3).to_dict()


VALID = {
    "explanation": (Explanation.load, Explanation, _valid_explanation),
    "explanations": (
        Explanations.load,
        Explanations,
        lambda: {
            "format": "captum_rnn.Explanation/1s",
            "explanations": [_valid_explanation(), _valid_explanation()],
        },
    ),
    "vocabulary": (Vocabulary.load, Vocabulary, lambda: Vocabulary(["a", "b"]).to_dict()),
    "dfa": (DFA.load, DFA, _valid_dfa),
    "rule list": (RuleList.load, RuleList, _valid_rule_list),
}


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A valid document with some fields, at any depth, replaced by random JSON or deleted."""
    odds = draw(st.sampled_from([200, 40, 10, 3]), label="one change in")

    def walk(value: Any) -> Any:
        if draw(st.integers(0, odds - 1)) == 0:
            return draw(json_values)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if draw(st.integers(0, odds)) != 0:  # sometimes drop the key
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(valid)


def _usable(result: Any) -> None:
    """What loaded works: it saves again as strict JSON, and ranks, encodes or runs."""
    for e in result if isinstance(result, Explanations) else [result]:
        if isinstance(e, Explanation):
            assert all(isinstance(t, str) for t in e.tokens)
            assert all(isinstance(s, float) for s in e.scores)
            assert len(e.top(len(e))) == len(e)
            json.dumps(e.to_dict(), allow_nan=False)
    if isinstance(result, Vocabulary):
        assert result.encode(result.itos) == list(range(len(result)))
        json.dumps(result.to_dict())
    if isinstance(result, DFA | RuleList):
        json.dumps(result.to_dict())


def _outcome(load, kind: type, path: Path) -> None:
    """``load(path)`` returns a usable ``kind`` or raises a ValueError that names ``path``."""
    try:
        result = load(path)
    except ValueError as err:
        assert str(path) in str(err), f"the message does not name the file: {err}"
        return
    assert isinstance(result, kind)
    _usable(result)


def _write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@pytest.mark.parametrize("what", list(VALID))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_documents_load_or_raise_value_error(folder, what, data):
    load, kind, valid = VALID[what]
    doc = data.draw(st.one_of(json_values, mutated(valid())), label="document")
    path = folder / f"{what}.json"
    _write(path, doc)
    _outcome(load, kind, path)


@pytest.mark.parametrize("what", list(VALID))
def test_valid_documents_load(folder, what):
    load, kind, valid = VALID[what]
    path = folder / f"{what}-valid.json"
    _write(path, valid())
    result = load(path)
    assert isinstance(result, kind)
    _usable(result)


@pytest.mark.parametrize("what", list(VALID))
@pytest.mark.parametrize("where", ["top", "inside"])
def test_deeply_nested_json_is_a_value_error(folder, what, where):
    load, _, valid = VALID[what]
    deep = "[" * 100_000 + "]" * 100_000
    path = folder / f"{what}-deep.json"
    if where == "top":
        path.write_text(deep)
    else:
        text = json.dumps(valid())
        path.write_text(text[:-1] + ', "deep": ' + deep + "}")
    with pytest.raises(ValueError, match="nested too deeply") as info:
        load(path)
    assert str(path) in str(info.value)


def test_nesting_deep_enough_for_the_builder_but_not_the_parser(folder):
    # parses within the recursion limit, then the builder's walk of ``extra`` hits it
    depth = 900
    doc = _valid_explanation()
    doc["extra"] = {"deep": json.loads("[" * depth + "]" * depth)}
    path = folder / "deep-extra.json"
    _write(path, doc)
    _outcome(Explanation.load, Explanation, path)


@pytest.mark.parametrize("what", list(VALID))
@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not utf-8", b"{", b"[1, 2", ("9" * 5000).encode(), b"", b"nul\x00l"],
)
def test_broken_files_are_value_errors_naming_the_file(folder, what, content):
    load = VALID[what][0]
    path = folder / f"{what}-broken.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load(path)
    assert str(path) in str(info.value)


def test_size_cap(folder):
    path = folder / "big.json"
    path.write_text(json.dumps(list(range(100))))
    with pytest.raises(ValueError, match="larger than 50 bytes") as info:
        load_json(path, "test", lambda d: d, max_bytes=50)
    assert str(path) in str(info.value)
    assert load_json(path, "test", len, max_bytes=10_000) == 100
    assert load_json(path, "test", len, max_bytes=None) == 100
    assert DEFAULT_MAX_BYTES >= 1 << 20


def test_a_missing_file_stays_an_os_error(folder):
    with pytest.raises(FileNotFoundError):
        Explanation.load(folder / "missing.json")


def test_require_and_check_name_the_field():
    assert require({"a": [1]}, "a", list) == [1]
    assert require({}, "a", list, default=None) is None
    with pytest.raises(ValueError, match=r"'x\.a' is missing"):
        require({}, "a", list, "x")
    with pytest.raises(ValueError, match=r"'x\.a' must be an integer or null, got a boolean"):
        require({"a": True}, "a", (int, type(None)), "x")
    with pytest.raises(ValueError, match="'x' must be a JSON object, got an array"):
        require([], "a", int, "x")
    assert check(3, float, "n") == 3  # JSON numbers have no int/float kind
    with pytest.raises(ValueError, match="'n' must be a number, got a boolean"):
        check(False, float, "n")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_encode_float_round_trips_through_strict_json(value):
    text = json.dumps(encode_float(value), allow_nan=False)
    back = decode_float(json.loads(text), "v")
    assert back == value or (math.isnan(back) and math.isnan(value))
