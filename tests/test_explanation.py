import json

import pytest
import torch
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
