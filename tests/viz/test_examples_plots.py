"""Figures for neighbours, prototypes/criticisms, gate activations and unit responses."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from captum_rnn.attr import NearestExamples, recurrent_states
from captum_rnn.data import SequenceDataset, pad_collate
from captum_rnn.viz import (
    plot_examples,
    plot_gate_activations,
    plot_neighbors,
    plot_prototypes_and_criticisms,
    plot_unit_token_responses,
)


class MeanModel(nn.Module):
    """Mean of the real steps as the representation; two-class logits from it."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)

    def encode(self, x, lengths):
        mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
        pooled = (x * mask).sum(1) / lengths[:, None]
        return x * mask, mask[..., 0], pooled

    def forward(self, x, lengths):
        return self.head(self.encode(x, lengths)[2])


def sequences(n: int, seed: int) -> SequenceDataset:
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(int(t), 2, generator=g) for t in torch.randint(2, 6, (n,), generator=g)]
    return SequenceDataset(seqs, [i % 2 for i in range(n)])


def texts_of(fig: Figure) -> list[str]:
    out = [t.get_text() for ax in fig.axes for t in ax.texts]
    out += [ax.get_title(loc="left") for ax in fig.axes]
    return out


def render(fig: Figure) -> None:
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def test_neighbor_panel_for_text_shows_labels_scores_and_raw_tokens():
    fig = plot_neighbors(
        "costs $5 & <b>",
        [["a", "$10", "deal"], "awful\tservice"],
        labels=[1, 0],
        scores=[0.91, 0.42],
        query_prediction=1,
        query_label=1,
        indices=[17, 3],
        class_names=["negative", "positive"],
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    shown = texts_of(fig)
    assert "costs $5 & <b>" in shown  # mathtext off: dollars drawn as written
    assert "a $10 deal" in shown and "awful service" in shown
    header = next(t for t in shown if t.startswith("#1"))
    assert "train[17]" in header and "label positive" in header and "0.910" in header
    colours = {t.get_text(): t.get_color() for ax in fig.axes for t in ax.texts}
    assert colours[header] != colours[next(t for t in shown if t.startswith("#2"))]
    render(fig)


def test_neighbor_panel_for_continuous_sequences_from_nearest_examples():
    train = sequences(12, seed=0)
    nearest = NearestExamples(MeanModel().eval(), train, metric="euclidean")
    query, lengths, _ = pad_collate([sequences(1, seed=2)[0]])
    result = nearest.neighbors(query, top_k=3, additional_forward_args=lengths)
    fig = plot_neighbors(
        query[0, : lengths[0]],
        [train[int(i)][0] for i in result.indices[0]],
        labels=result.labels[0],
        scores=result.scores[0],
        query_prediction=result.query_predictions[0],
        score_name="distance",
    )
    assert len(fig.axes) == 4 and all(ax.images for ax in fig.axes)
    render(fig)


def test_prototype_and_criticism_panels():
    fig = plot_examples(["good", "bad"], labels=[1, 0], indices=[4, 9], title="prototypes")
    assert len(fig.axes) == 2 and fig.get_suptitle() == "prototypes"
    fig = plot_prototypes_and_criticisms(
        ["good", "fine", "bad"], [1, 1, 0], ["odd one"], [0], class_names={0: "neg", 1: "pos"}
    )
    shown = texts_of(fig)
    assert "odd one" in shown and any("label pos" in t for t in shown)
    visible = [ax for ax in fig.axes if ax.texts]
    assert len(visible) == 4
    render(fig)
    with pytest.raises(ValueError, match="labels must have one entry per example"):
        plot_examples(["a", "b"], labels=[1])
    with pytest.raises(ValueError, match="at least one"):
        plot_neighbors("q", [])
    with pytest.raises(ValueError, match="must be text"):
        plot_examples([torch.zeros(2, 2, 2)])


def test_gate_heatmap():
    lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    trace = recurrent_states(lstm, torch.randn(2, 6, 3), torch.tensor([6, 3]))
    fig = plot_gate_activations(trace, index=1, tokens=["a", "b", "c"], direction=1)
    assert len(fig.axes) == 2 * 6  # five LSTM gates/states + hidden, each with a colour bar
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert heatmaps[0].images[0].get_array().shape == (4, 3)  # units x real steps
    assert [t.get_text() for t in heatmaps[0].get_xticklabels()] == ["a", "b", "c"]
    fig = plot_gate_activations(trace, gates=["forget"], units=[0, 2])
    assert fig.axes[0].images[0].get_array().shape == (2, 6)
    render(fig)
    with pytest.raises(ValueError, match="not one of"):
        plot_gate_activations(trace, gates=["reset"])
    with pytest.raises(ValueError, match="tokens must have one entry per real step"):
        plot_gate_activations(trace, index=1, tokens=["a"])


def test_unit_token_response_bars():
    from captum_rnn.attr import UnitTokenResponses

    responses = UnitTokenResponses(
        mean=torch.tensor([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]]),
        counts=torch.tensor([10, 10, 10]),
        unit_mean=torch.tensor([1.0, 0.5]),
        unit_std=torch.tensor([1.0, 1.0]),
    )

    class Vocab:
        def token(self, i):
            return ["x", "y", "z"][i]

    fig = plot_unit_token_responses(responses, units=[0, 1], vocab=Vocab(), n=2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["y", "z"]
    render(fig)
