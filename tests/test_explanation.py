import json
import math
import re
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from captum_rnn import Explanation, Explanations, explain

from conftest import continuous_model, padded_batch, token_model


def _example():
    return Explanation(
        tokens=["<script>alert(1)</script>", "good", "&amp;"],
        scores=[0.1, 0.9, -0.4],
        method="integrated_gradients",
        target=1,
        predicted=1,
        probability=0.8,
        output=1.2,
        delta=0.001,
        n_steps=50,
    )


def test_top_tokens():
    e = _example()
    assert e.top(1) == [("good", 0.9)]
    assert e.top(2, absolute=True)[1] == ("&amp;", -0.4)


def test_plot_returns_figure_without_showing():
    fig = _example().plot()
    assert isinstance(fig, Figure) and fig.axes


def test_html_escapes_every_token():
    page = Explanations([_example()]).to_html(title="<title>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&amp;amp;" in page
    assert "&lt;title&gt;" in page


def test_save_and_load_round_trip(tmp_path):
    e = _example()
    e.save(tmp_path / "e.json")
    assert Explanation.load(tmp_path / "e.json") == e
    batch = Explanations([e, e])
    batch.save(tmp_path / "b.json")
    assert Explanations.load(tmp_path / "b.json") == batch
    json.loads((tmp_path / "b.json").read_text())  # plain JSON


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"tokens": []}')
    with pytest.raises(ValueError, match="not a saved Explanation"):
        Explanation.load(tmp_path / "x.json")


def test_mismatched_lengths_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        Explanation(tokens=["a"], scores=[1.0, 2.0], method="x")


def test_real_explanations_plot_and_render(tmp_path):
    model = token_model("lstm-last")
    batch = explain(model, padded_batch()[0])
    assert isinstance(batch.plot(), Figure)
    batch.save(tmp_path / "b.json")
    assert Explanations.load(tmp_path / "b.json")[0].scores == pytest.approx(batch[0].scores)
    continuous = explain(continuous_model(), torch.randn(1, 5, 3))
    assert "data:image/png;base64," in continuous[0].to_html()


def test_class_names_appear_in_titles(tmp_path):
    e = _example()
    e.class_names = ["negative", "positive"]
    e.label = 0
    assert "predicted=positive (p=0.80)" in e.title() and "label=negative" in e.title()
    e.save(tmp_path / "e.json")
    assert Explanation.load(tmp_path / "e.json").class_names == ["negative", "positive"]


# -- non-finite numbers round-trip; top() ranks NaN last --------------------------------


def _strict_json(text: str):
    """Parse as strict JSON: a bare NaN/Infinity token is an error."""

    def refuse(token):
        raise AssertionError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _same(a, b) -> bool:
    """Equality where NaN equals NaN, through lists and dicts."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _same_explanation(a: Explanation, b: Explanation) -> bool:
    return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(Explanation))


def test_non_finite_numbers_round_trip_through_save_and_load(tmp_path):
    nan, inf = math.nan, math.inf
    e = Explanation(
        tokens=["NaN", "Infinity", "a", "b"],  # strings that look like the encoding stay strings
        scores=[nan, inf, -inf, 0.5],
        method="ig",
        target=1,
        probability=nan,
        output=-inf,
        delta=inf,
        feature_scores=[[nan, 1.0], [inf, -inf], [0.0, 2.0], [1.0, nan]],
        label=nan,
        extra={"loss": nan, "curve": [1.0, -inf, {"x": inf}], "name": "NaN"},
    )
    e.save(tmp_path / "e.json")
    _strict_json((tmp_path / "e.json").read_text())
    loaded = Explanation.load(tmp_path / "e.json")
    assert _same_explanation(loaded, e)
    assert loaded.extra["name"] == "NaN" and loaded.tokens[0] == "NaN"
    assert loaded.top(4) == [("Infinity", inf), ("b", 0.5), ("a", -inf), ("NaN", loaded.scores[0])]
    Explanations([e, e]).save(tmp_path / "b.json")
    _strict_json((tmp_path / "b.json").read_text())
    assert all(_same_explanation(x, e) for x in Explanations.load(tmp_path / "b.json"))


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(finite_or_not, max_size=8), st.one_of(st.none(), finite_or_not))
def test_any_scores_round_trip(scores, probability):
    e = Explanation([f"t{i}" for i in range(len(scores))], scores, "m", probability=probability)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "e.json"
        e.save(path)
        loaded = Explanation.load(path)
    assert _same_explanation(loaded, e)
    assert [t for t, _ in loaded.top(len(scores))] == [t for t, _ in e.top(len(scores))]


@given(st.lists(finite_or_not, min_size=1, max_size=10), st.booleans())
def test_top_ranks_nan_last_and_numbers_in_order(scores, absolute):
    e = Explanation([str(i) for i in range(len(scores))], scores, "m")
    ranked = [s for _, s in e.top(len(scores), absolute=absolute)]
    numbers = [abs(s) if absolute else s for s in ranked if not math.isnan(s)]
    assert numbers == sorted(numbers, reverse=True)
    nans = [math.isnan(s) for s in ranked]
    assert nans == sorted(nans)  # every NaN after every number
    assert len(ranked) == len(scores)


def test_files_from_before_load_their_null_scores_as_nan(tmp_path):
    old = {
        "format": "captum_rnn.Explanation/1",
        "tokens": ["a", "b", "c"],
        "scores": [0.5, None, 1.0],
        "method": "ig",
        "probability": None,
        "feature_scores": None,
        "extra": {},
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    e = Explanation.load(tmp_path / "old.json")
    assert math.isnan(e.scores[1]) and e.probability is None
    assert e.top(3) == [("c", 1.0), ("a", 0.5), ("b", e.scores[1])]


def test_save_refuses_a_target_that_would_not_load(tmp_path):
    e = _example()
    e.target = math.nan
    with pytest.raises(ValueError, match="target"):
        e.save(tmp_path / "e.json")
    e.target = torch.tensor(1)  # an integer scalar is saved as an int
    e.save(tmp_path / "e.json")
    assert Explanation.load(tmp_path / "e.json").target == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"scores": [0.1, "high", 0.2]}, "scores[1]"),
        ({"scores": [0.1, True, 0.2]}, "scores[1]"),
        ({"tokens": ["a", 3, "c"]}, "tokens[1]"),
        ({"method": None}, "method"),
        ({"target": 1.5}, "target"),
        ({"probability": "often"}, "probability"),
        ({"feature_scores": [[1.0], "row"]}, "feature_scores[1]"),
        ({"class_names": [1, 2]}, "class_names[0]"),
        ({"extra": []}, "extra"),
        ({"scores": 10**400}, "scores"),
        ({"output": 10**400}, "output"),
    ],
)
def test_load_names_the_file_and_the_field(tmp_path, change, field):
    data = _example().to_dict() | change
    path = tmp_path / "e.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(field)) as info:
        Explanation.load(path)
    assert str(path) in str(info.value)
    batch = {"format": "captum_rnn.Explanation/1s", "explanations": [_example().to_dict(), data]}
    path.write_text(json.dumps(batch))
    with pytest.raises(ValueError, match=re.escape(f"explanations[1].{field}")):
        Explanations.load(path)
