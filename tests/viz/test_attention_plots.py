"""Attention figures: token labels, padding cut out, tokens verbatim, bad shapes refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from captum_rnn.attr import attention_rollout
from captum_rnn.models import TransformerClassifier
from captum_rnn.viz import plot_attention_matrix, plot_attention_tokens, plot_rollout_layers


def tick_texts(ax, axis: str) -> list[str]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [label.get_text() for label in labels]


def image_of(ax) -> np.ndarray:
    return np.asarray(ax.get_images()[0].get_array())


def renders(fig: Figure) -> None:
    fig.savefig(io.BytesIO(), format="png")


def test_attention_matrix_labels_and_padding_cut():
    weights = torch.rand(2, 4, 6)  # heads, target (2 real), source (3 real)
    weights[:, 2:] = 9.0  # padded rows/columns: must not be drawn
    weights[:, :, 3:] = 9.0
    fig = plot_attention_matrix(weights, ["a", "<s>", "$x$"], ["y1", "&z"], title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert tick_texts(ax, "x") == ["a", "<s>", "$x$"]  # verbatim: no HTML, no mathtext
    assert tick_texts(ax, "y") == ["y1", "&z"]
    assert all(not label.get_parse_math() for label in ax.get_xticklabels())
    shown = image_of(ax)
    assert shown.shape == (2, 3)
    np.testing.assert_allclose(shown, weights.mean(0)[:2, :3].numpy(), rtol=1e-6)
    renders(fig)


def test_attention_matrix_single_head_and_space_label():
    weights = torch.rand(1, 2, 3, 3)
    fig = plot_attention_matrix(weights, ["a", " ", "b"], ["a", " ", "b"], head=1, annotate=True)
    ax = fig.axes[0]
    assert tick_texts(ax, "x") == ["a", "\u2423", "b"]
    np.testing.assert_allclose(image_of(ax), weights[0, 1].numpy(), rtol=1e-6)
    assert len(ax.texts) == 9  # annotated cells


def test_attention_matrix_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_attention_matrix(np.eye(2), ["a", "b"], ["c", "d"], ax=ax) is fig


@pytest.mark.parametrize(
    "weights, source, target, error",
    [
        (torch.rand(5), ["a"], ["b"], ValueError),  # 1-D
        (torch.rand(2, 2, 2, 2, 2), ["a"], ["b"], ValueError),  # 5-D
        (torch.rand(2, 3), ["a", "b", "c", "d"], ["x"], ValueError),  # more tokens than columns
        (torch.rand(2, 3), ["a"], ["x", "y", "z"], ValueError),  # more tokens than rows
        (torch.rand(2, 3), [], ["x"], ValueError),
        (torch.rand(2, 3), "abc", ["x"], TypeError),
        (torch.rand(2, 2, 3), ["a"], ["x"], None),  # fine, checks head below
    ],
)
def test_attention_matrix_bad_input(weights, source, target, error):
    if error is None:
        with pytest.raises(ValueError, match="head"):
            plot_attention_matrix(weights, source, target, head=5)
        with pytest.raises(ValueError, match="head"):
            plot_attention_matrix(weights, source, target, head="median")
        return
    with pytest.raises(error):
        plot_attention_matrix(weights, source, target)


def test_rollout_layers_panels_match_rollout_and_cut_padding():
    torch.manual_seed(0)
    model = TransformerClassifier(2, vocab_size=20, num_layers=3, num_heads=2, embedding_dim=8)
    model.eval()
    ids = torch.tensor([[4, 5, 6, 7, 0, 0]])  # 4 real tokens, 2 padding
    model(ids)
    maps = model.attention_maps
    tokens = ["the", "$cat$", "<b>", "sat"]
    fig = plot_rollout_layers(maps, tokens, title="rollout")
    panels = [ax for ax in fig.axes if ax.get_images() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["after layer 1", "after layer 2", "after layer 3"]
    expected = attention_rollout(maps, mask=ids != 0, all_layers=True)[:, 0, :4, :4]
    for layer, ax in enumerate(panels):
        assert tick_texts(ax, "x") == tokens and tick_texts(ax, "y") == tokens
        np.testing.assert_allclose(image_of(ax), expected[layer].numpy(), atol=1e-6)
        np.testing.assert_allclose(image_of(ax).sum(1), 1.0, atol=1e-5)  # padding cut, rows sum 1
    renders(fig)


def test_rollout_layers_same_whatever_the_padding():
    torch.manual_seed(1)
    model = TransformerClassifier(2, vocab_size=20, num_layers=2, num_heads=2, embedding_dim=8)
    model.eval()
    model(torch.tensor([[4, 5, 6]]))
    short = [m.clone() for m in model.attention_maps]
    model(torch.tensor([[4, 5, 6, 0, 0, 0, 0]]))
    long = [m.clone() for m in model.attention_maps]
    a = plot_rollout_layers(short, ["a", "b", "c"])
    b = plot_rollout_layers(long, ["a", "b", "c"])
    for pa, pb in zip(a.axes, b.axes, strict=True):
        if pa.get_images():
            np.testing.assert_allclose(image_of(pa), image_of(pb), atol=1e-6)


def test_rollout_layers_bad_input():
    good = torch.full((2, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match="empty"):
        plot_rollout_layers([], ["a"])
    with pytest.raises(TypeError):
        plot_rollout_layers(good, ["a"])
    with pytest.raises(ValueError, match="attentions\\[1\\]"):
        plot_rollout_layers([good, torch.rand(2, 3, 4)], ["a"])
    with pytest.raises(ValueError, match="attentions\\[1\\]"):
        plot_rollout_layers([good, torch.rand(2, 4, 4)], ["a"])
    with pytest.raises(ValueError, match="tokens"):
        plot_rollout_layers([good], ["a", "b", "c", "d"])


def test_attention_tokens_rows_padding_and_labels():
    scores = torch.tensor([[0.1, 0.6, 0.3, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0]])
    tokens = [["a", "<i>", "$b$"], ["x", "&y"]]
    fig = plot_attention_tokens(scores, tokens, row_labels=["rollout", "weights"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["a", "<i>", "$b$", "x", "&y"]
    assert all(not t.get_parse_math() for t in ax.texts)
    grid = np.ma.filled(image_of(ax).astype(float), np.nan)
    assert grid.shape == (2, 3)  # padding columns cut out
    np.testing.assert_allclose(grid[0], [0.1, 0.6, 0.3], rtol=1e-6)
    assert np.isnan(grid[1, 2])  # the shorter sequence's padding is blank
    assert tick_texts(ax, "y") == ["rollout", "weights"]
    renders(fig)


def test_attention_tokens_one_sequence_and_signed_scores():
    fig = plot_attention_tokens([0.2, -0.5, 0.3], ["a", "b", "c"])
    image = fig.axes[0].get_images()[0]
    assert image.get_clim() == (-0.5, 0.5)  # diverging scale for signed scores
    fig = plot_attention_tokens(np.array([0.2, 0.8]), ["a", "b"])
    assert fig.axes[0].get_images()[0].get_clim() == (0.0, 0.8)


@pytest.mark.parametrize(
    "scores, tokens",
    [
        (torch.rand(2, 3, 4), [["a"], ["b"]]),  # 3-D
        (torch.rand(2, 3), [["a"]]),  # one token list for two rows
        (torch.rand(1, 2), ["a", "b", "c"]),  # more tokens than scores
        (torch.rand(2, 3), [["a"], []]),  # empty sequence
    ],
)
def test_attention_tokens_bad_input(scores, tokens):
    with pytest.raises(ValueError):
        plot_attention_tokens(scores, tokens)
