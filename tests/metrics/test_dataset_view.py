import json
import math

import pytest
import torch
from matplotlib.figure import Figure

import captum_rnn
from captum_rnn import Explanation, Explanations
from captum_rnn.data import planted_cues
from captum_rnn.metrics import DatasetAttributionSummary, dataset_attribution_summary
from captum_rnn.models import RNNClassifier
from captum_rnn.viz import plot_dataset_summary

from conftest import padded_batch


@pytest.fixture(scope="module")
def cue_explanations(cue_task):
    model, _ = cue_task
    data = planted_cues(120, length=(6, 16), vocab_size=30, seed=2)
    explanations = captum_rnn.explain(model, data.sequences, vocab=data.vocab, labels=data.labels)
    return model, data, explanations


def _same_rows(a, b):
    assert [r["token"] for r in a.rows] == [r["token"] for r in b.rows]
    for x, y in zip(a.rows, b.rows, strict=True):
        for key in ("count", "sequences", "dominant_class", "flagged"):
            assert x[key] == y[key]
        for key in ("mean_attribution", "influence_share", "frequency_share", "ratio"):
            assert x[key] == pytest.approx(y[key], rel=1e-9, abs=1e-12)


def test_hand_computed_values():
    es = Explanations(
        [
            Explanation(["cue", "a", "b"], [3.0, 0.5, -0.5], "ig", target=1, predicted=1),
            Explanation(["a", "c"], [1.0, 1.0], "ig", target=0, predicted=0),
            Explanation(["cue", "c"], [2.0, 0.0], "ig", target=1, predicted=1),
        ]
    )
    s = dataset_attribution_summary(es, min_count=1, ratio_threshold=2.0)
    assert isinstance(s, DatasetAttributionSummary) and s.kind == "token"
    assert s.n_sequences == 3 and s.n_positions == 7
    assert s.classes == [0, 1] and s.class_counts == {0: 1, 1: 2}
    total = 3 + 0.5 + 0.5 + 1 + 1 + 0 + 2.0
    cue = s.row("cue")
    assert s.rows[0] is cue
    assert cue["count"] == 2 and cue["sequences"] == 2
    assert cue["mean_attribution"] == pytest.approx(2.5)
    assert cue["influence_share"] == pytest.approx(5.0 / total)
    assert cue["frequency_share"] == pytest.approx(2 / 7)
    assert cue["ratio"] == pytest.approx((5.0 / total) / (2 / 7))
    assert cue["dominant_class"] == 1 and cue["purity"] == 1.0
    assert cue["class_sequences"] == {1: 2}
    assert cue["out_of_proportion"] and cue["carries_class"] and cue["flagged"]
    a = s.row("a")
    assert a["purity"] == 0.5 and a["class_mean_attribution"] == {0: 1.0, 1: 0.5}
    assert not a["flagged"] and [r["token"] for r in s.flagged] == ["cue"]
    assert json.loads(json.dumps(s.to_dict()))["rows"][0]["class_sequences"] == {"1": 2}
    # min_count keeps rare tokens from being flagged.
    assert dataset_attribution_summary(es, min_count=3).flagged == []


def test_purity_must_beat_the_base_rate():
    # Every sequence is class 1: purity 1 says nothing, and ratio 1 is in proportion.
    es = [Explanation(["x", "y"], [1.0, 1.0], "ig", target=1, predicted=1) for _ in range(6)]
    s = dataset_attribution_summary(es, ratio_threshold=0.5)
    assert all(r["out_of_proportion"] and not r["carries_class"] for r in s.rows)


def test_cue_tokens_are_flagged_and_fillers_are_not(cue_explanations):
    model, data, explanations = cue_explanations
    s = dataset_attribution_summary(explanations)
    assert {r["token"] for r in s.flagged} == {"good", "bad"}
    for cue, cls in (("good", 1), ("bad", 0)):
        row = s.row(cue)
        assert row["out_of_proportion"] and row["carries_class"]
        assert row["ratio"] > 4 and row["purity"] > 0.95 and row["dominant_class"] == cls
    fillers = [r for r in s.rows if r["token"].startswith("w")]
    assert len(fillers) == 30 and not any(r["flagged"] for r in fillers)
    assert max(r["ratio"] for r in fillers) < 1.5
    # The cues hold most of the influence while being under a tenth of the tokens.
    assert s.row("good")["influence_share"] + s.row("bad")["influence_share"] > 0.5
    # Grouped by the true labels, the data's cues are found too.
    by_label = dataset_attribution_summary(explanations, by="label")
    assert {r["token"] for r in by_label.flagged} == {"good", "bad"}


def test_flip_test_with_the_model_changes_nothing(cue_explanations):
    model, data, explanations = cue_explanations
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    s = dataset_attribution_summary(explanations, model=model, vocab=data.vocab)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    assert s.settings["model"]
    good = s.row("good")
    assert 0.0 <= good["flip_rate"] <= 1.0 and good["id"] == data.vocab.index("good")
    assert {r["token"] for r in s.flagged} >= {"good", "bad"}
    assert not any(r["flagged"] for r in s.rows if r["token"].startswith("w"))
    checked = [r for r in s.rows if r["flip_rate"] is not None]
    assert 2 <= len(checked) <= 20
    # Deleting a filler rarely changes anything.
    assert all(r["flip_rate"] < 0.5 for r in checked if r["token"].startswith("w"))


def test_tensor_input_matches_explanations_and_ignores_padding(cue_explanations):
    model, data, explanations = cue_explanations
    lengths = torch.tensor([len(e) for e in explanations])
    classes = [e.predicted for e in explanations]
    from_explanations = dataset_attribution_summary(explanations)
    results = []
    for width in (int(lengths.max()), 40):
        ids = torch.zeros(len(explanations), width, dtype=torch.long)
        scores = torch.full((len(explanations), width), 99.0, dtype=torch.float64)
        for i, (seq, e) in enumerate(zip(data.sequences, explanations, strict=True)):
            ids[i, : len(seq)] = seq
            scores[i, : len(seq)] = torch.tensor(e.scores, dtype=torch.float64)
        s = dataset_attribution_summary(scores, ids, classes=classes, vocab=data.vocab)
        assert all(r["id"] != 0 for r in s.rows)  # padding never counted
        assert s.n_positions == int(lengths.sum())
        results.append(s)
        # Lengths inferred from the padding id and given explicitly agree.
        _same_rows(
            s,
            dataset_attribution_summary(
                scores, ids, lengths=lengths, classes=classes, vocab=data.vocab
            ),
        )
    _same_rows(results[0], results[1])
    _same_rows(results[0], from_explanations)


def test_padding_token_inside_lengths_is_not_counted():
    ids, lengths = padded_batch(seed=1, batch=5, vocab=10, max_len=8)
    ids[0, 2] = 0
    scores = torch.randn(ids.shape)
    # the padding id is told (0 is never assumed)
    s = dataset_attribution_summary(
        scores, ids, lengths=lengths, classes=[0, 1, 0, 1, 0], padding_idx=0
    )
    assert all(r["id"] != 0 for r in s.rows)
    assert s.n_positions == int(lengths.sum()) - 1


def test_token_ids_without_a_padding_id_or_lengths_are_an_error():
    ids, lengths = padded_batch(seed=1, batch=5, vocab=10, max_len=8)
    scores = torch.randn(ids.shape)
    with pytest.raises(ValueError, match="padding_idx=.*never assumes 0"):
        dataset_attribution_summary(scores, ids, classes=[0, 1, 0, 1, 0])
    # with lengths and no padding id every step within the lengths counts
    s = dataset_attribution_summary(scores, ids, lengths=lengths, classes=[0, 1, 0, 1, 0])
    assert s.n_positions == int(lengths.sum())


def test_attributions_shorter_than_the_real_tokens_are_an_error():
    ids, lengths = padded_batch(seed=1, batch=5, vocab=10, max_len=8)
    longest = int(lengths.argmax())
    short = torch.randn(ids.shape[0], int(lengths.max()) - 1)
    with pytest.raises(ValueError, match=rf"sequence {longest} has {int(lengths.max())} real"):
        dataset_attribution_summary(short, ids, lengths=lengths, padding_idx=0)


def test_html_and_markdown_escape_tokens():
    bad = "<img src=x onerror=alert(1)>"
    es = [
        Explanation([bad, "$5", "a|b"], [2.0, 0.1, 0.1], "ig", target=1, predicted=1)
        for _ in range(6)
    ] + [Explanation(["$5", "a|b"], [0.1, 0.1], "ig", target=0, predicted=0) for _ in range(6)]
    s = dataset_attribution_summary(es, class_names=["neg", "<b>pos</b>"])
    assert [r["token"] for r in s.flagged] == [bad]
    page = s.to_html(figure=True)
    assert bad not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;pos&lt;/b&gt;" in page and "data:image/png;base64," in page
    markdown = s.to_markdown()
    assert "a\\|b" in markdown and "**Flagged:**" in markdown
    assert s.to_dict()["rows"][0]["token"] == bad


def test_plot_highlights_flagged_tokens():
    es = [
        Explanation(["cue", "a", "b"], [3.0, 0.1, 0.1], "ig", target=1, predicted=1)
        for _ in range(5)
    ] + [Explanation(["a", "b"], [0.1, 0.1], "ig", target=0, predicted=0) for _ in range(5)]
    s = dataset_attribution_summary(es)
    fig = s.plot(top=2)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = ax.get_yticklabels()
    assert [t.get_text() for t in labels] == ["cue", "a"]
    assert labels[0].get_fontweight() == "bold" and labels[1].get_fontweight() != "bold"
    assert len(ax.patches) == 4
    with pytest.raises(ValueError, match="top"):
        plot_dataset_summary(s, top=0)


def test_continuous_aggregation_shapes_and_values():
    g = torch.Generator().manual_seed(0)
    batch, time, features = 6, 7, 3
    lengths = torch.tensor([7, 5, 3, 7, 2, 4])
    real = torch.arange(time)[None, :] < lengths[:, None]
    attributions = 0.1 * torch.randn(batch, time, features, generator=g)
    attributions[..., 1] += 2.0  # feature 1 dominates
    attributions[~real] = 50.0  # garbage at padding
    classes = [0, 1, 0, 1, 1, 0]
    s = dataset_attribution_summary(
        attributions,
        lengths=lengths,
        classes=classes,
        feature_names=["hr", "bp", "spo2"],
        ratio_threshold=2.5,
    )
    assert s.kind == "continuous" and s.n_positions == int(lengths.sum())
    assert s.mean_attribution.shape == (time, features)
    assert s.mean_abs_attribution.shape == (time, features)
    assert s.influence_share.shape == (time, features)
    assert s.class_mean_attribution.shape == (2, time, features)
    assert s.step_counts.tolist() == real.sum(0).tolist()
    assert float(s.influence_share.sum()) == pytest.approx(1.0)
    clean = attributions.double().masked_fill(~real[..., None], 0.0)
    expected = clean.sum(0) / real.sum(0).double()[:, None]
    assert torch.allclose(s.mean_attribution, expected)
    cls0 = torch.tensor(classes) == 0
    assert torch.allclose(
        s.class_mean_attribution[0], clean[cls0].sum(0) / real[cls0].sum(0).double()[:, None]
    )
    assert [r["token"] for r in s.rows][0] == "bp" and len(s.rows) == features
    bp = s.row("bp")
    assert bp["frequency_share"] == pytest.approx(1 / 3) and bp["ratio"] > 2.5
    assert [r["token"] for r in s.flagged] == ["bp"]
    assert s.rows[0]["ratio"] == pytest.approx(3 * s.rows[0]["influence_share"])
    s2 = dataset_attribution_summary(attributions, lengths=lengths, ratio_threshold=10.0)
    assert s2.flagged == [] and s2.classes == []
    assert "time x feature" not in s.to_html()  # the table needs no figure
    fig = s.plot()
    assert len(fig.axes) >= 2
    assert len(json.loads(json.dumps(s.to_dict()))["class_mean_attribution"]) == 2


def test_continuous_explanations_and_flip_test():
    torch.manual_seed(0)
    model = RNNClassifier(2, input_size=3, hidden_size=8, cell="gru").eval()
    x = torch.randn(8, 6, 3)
    lengths = torch.tensor([6, 4, 5, 6, 3, 6, 2, 5])
    explanations = captum_rnn.explain(model, x, lengths=lengths, method="saliency")
    s = dataset_attribution_summary(explanations, x, model=model, ratio_threshold=1.0)
    assert s.kind == "continuous" and s.mean_attribution.shape == (6, 3)
    assert all(0.0 <= r["flip_rate"] <= 1.0 for r in s.rows)
    grid = torch.zeros(8, 6, 3, dtype=torch.float64)
    for i, e in enumerate(explanations):
        grid[i, : len(e)] = torch.tensor(e.feature_scores)
    s2 = dataset_attribution_summary(
        grid, lengths=lengths, classes=[e.predicted for e in explanations]
    )
    assert torch.allclose(s.mean_attribution, s2.mean_attribution)
    assert [r["token"] for r in s.rows] == [r["token"] for r in s2.rows]


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (("not explanations",), {}, TypeError, "explanations_or_attributions"),
        ((torch.zeros(2, 3),), {}, ValueError, "inputs"),
        ((torch.zeros(2, 3), torch.ones(3, 3, dtype=torch.long)), {}, ValueError, "attributions"),
        ((torch.zeros(2, 3, 2),), {"lengths": torch.tensor([1, 4])}, ValueError, "lengths"),
        ((torch.zeros(2, 3, 2),), {"lengths": torch.tensor([1.0, 2.0])}, TypeError, "lengths"),
        ((torch.zeros(2, 3, 2),), {"classes": [0]}, ValueError, "classes"),
        ((torch.zeros(2, 3, 2),), {"by": "guess"}, ValueError, "by"),
        ((torch.zeros(2, 3, 2),), {"purity_threshold": 1.5}, ValueError, "purity_threshold"),
        ((torch.zeros(2, 3, 2),), {"min_count": 0}, ValueError, "min_count"),
        ((torch.zeros(2, 3, 2),), {"model": "model"}, TypeError, "model"),
        ((torch.full((2, 3, 2), math.nan),), {}, ValueError, "NaN"),
        (([],), {}, TypeError, "explanations_or_attributions"),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        dataset_attribution_summary(*args, **kwargs)


def test_by_label_needs_labels():
    es = [Explanation(["a"], [1.0], "ig", target=0, predicted=0)]
    with pytest.raises(ValueError, match="label"):
        dataset_attribution_summary(es, by="label")


@pytest.mark.gpu
def test_flip_test_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=30, embedding_dim=8, hidden_size=8).eval()
    ids, lengths = padded_batch(seed=0, batch=12, vocab=30, max_len=9)
    scores = torch.randn(ids.shape)
    cpu = dataset_attribution_summary(scores, ids, model=model, min_count=1)
    gpu = dataset_attribution_summary(scores, ids.cuda(), model=model.cuda(), min_count=1)
    assert [r["flip_rate"] for r in cpu.rows] == [r["flip_rate"] for r in gpu.rows]


class _Twin(torch.nn.Module):
    """A packed GRU over token ids, batch-first or time-major with the same weights."""

    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = torch.nn.Embedding(12, 4, padding_idx=1)
        self.rnn = torch.nn.GRU(4, 5, batch_first=batch_first)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, text, text_lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.embedding(text), text_lengths.cpu(), self.rnn.batch_first, enforce_sorted=False
        )
        return self.fc(self.rnn(packed)[1][-1])


def test_inputs_are_read_in_a_time_major_models_own_layout():
    ids = torch.tensor([[3, 4, 5, 1], [6, 3, 1, 1], [7, 8, 9, 3]])  # (batch, time), pad 1
    first, major = _Twin(True).eval(), _Twin(False).eval()
    explanations = captum_rnn.explain(first, ids, method="saliency")
    want = dataset_attribution_summary(explanations, model=first, inputs=ids, min_count=1)
    got = dataset_attribution_summary(explanations, model=major, inputs=ids.T, min_count=1)
    assert repr(got.rows) == repr(want.rows)
