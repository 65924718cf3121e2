"""The exact decomposition of LSTM/GRU outputs: sums to the logit, 0 on padding, finds the
recurrent layer and the head of users' models, refuses what it cannot decompose."""

from __future__ import annotations

import pytest
import torch
import zoo
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import captum_rnn
from captum_rnn.attr import RecurrentDecomposition, available_methods
from captum_rnn.models import RNNClassifier


def _model(cell, bidirectional=False, layers=1, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("input_size", 3)
    return RNNClassifier(
        3, cell=cell, hidden_size=6, num_layers=layers, bidirectional=bidirectional, **kwargs
    ).eval()


@settings(max_examples=24, deadline=None)
@given(
    cell=st.sampled_from(["lstm", "gru"]),
    bidirectional=st.booleans(),
    layers=st.integers(1, 2),
    pooling=st.sampled_from(["last", "mean", "attention"]),
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    scale=st.floats(0.1, 5.0),
)
def test_contributions_sum_to_the_logits_and_padding_gets_zero(
    cell, bidirectional, layers, pooling, lengths, scale
):
    kwargs = {"attention": "additive"} if pooling == "attention" else {"pooling": pooling}
    model = _model(cell, bidirectional, layers, **kwargs)
    time = max(lengths) + 2  # padded beyond the longest sequence too
    x = torch.randn(len(lengths), time, 3, generator=torch.Generator().manual_seed(len(lengths)))
    lengths = torch.tensor(lengths)
    d = RecurrentDecomposition(model).attribute(x * scale, lengths)
    assert d.contributions.shape == (len(lengths), time, 3)
    assert float(d.residual.max()) < 1e-5
    if int(lengths.max()) > 1:  # over one step the final state is also the mean
        assert d.pooling == pooling
    with torch.no_grad():
        logits = model(x * scale, lengths).double()
    assert torch.allclose(d.contributions.sum(1) + d.bias, logits, rtol=1e-5, atol=1e-6)
    padded = torch.arange(time)[None, :] >= lengths[:, None]
    assert bool((d.contributions[padded] == 0).all())
    assert bool((d.cells[padded] == 0).all())
    # the per-feature parts and the remainder make up each step's contribution
    assert torch.allclose(d.cells.sum(-1) + d.remainder, d.contributions, atol=1e-12)


def test_steps_that_do_not_matter_get_nothing():
    """A GRU whose update gate is shut (z = 1) after the first step keeps only that step."""
    model = _model("gru")
    with torch.no_grad():
        hidden = model.rnn.hidden_size
        model.rnn.weight_ih_l0[hidden : 2 * hidden] = 0
        model.rnn.weight_hh_l0[hidden : 2 * hidden] = 0
        model.rnn.bias_ih_l0[hidden : 2 * hidden] = 50.0  # z = 1: nothing is written
    d = RecurrentDecomposition(model).attribute(torch.randn(2, 6, 3))
    assert float(d.contributions.abs().max()) < 1e-12
    assert float(d.residual.max()) < 1e-5  # the logits are the head's bias


def test_token_models_and_explain():
    model = _model("lstm", True, input_size=None, vocab_size=30, embedding_dim=4)
    ids = torch.tensor([[5, 6, 7, 8, 9], [3, 4, 0, 0, 0]])
    d = RecurrentDecomposition(model).attribute(ids)
    assert float(d.residual.max()) < 1e-5
    assert d.cells.shape == (2, 5, 3, 4)  # per embedding dimension
    assert "decomposition" in available_methods()
    explanations = captum_rnn.explain(model, ids, method="decomposition", target=1)
    with torch.no_grad():
        logits = model(ids)
    for row, e in enumerate(explanations):
        assert len(e.scores) == int((ids[row] != 0).sum())
        assert sum(e.scores) + float(d.bias[1]) == pytest.approx(float(logits[row, 1]), abs=1e-5)


def test_users_models_from_the_zoo():
    for name in ("imdb_lstm", "mfcc_lightning", "nll_gru", "stacked_lstm"):
        case = zoo.build(name)
        inputs = case.inputs if case.batch_first else case.inputs.transpose(0, 1)
        d = RecurrentDecomposition(case.model, **case.hints).attribute(inputs, case.lengths)
        assert float(d.residual.max()) < 1e-5, name
        assert d.head == "fc"
        if name == "imdb_lstm":  # packed: the steps beyond each length never ran
            padded = torch.arange(inputs.shape[1])[None, :] >= case.lengths[:, None]
            assert bool((d.contributions[padded] == 0).all())
    # a hand-written cell: nothing to decompose, and nothing layer= could name
    with pytest.raises(ValueError, match="has none.*method='integrated_gradients'"):
        char = zoo.build("char_rnn")
        RecurrentDecomposition(char.model, **char.hints)


class _MLPHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 5, batch_first=True)
        self.hidden = nn.Linear(5, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(self.gru(x)[1][-1])))


class _TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.LSTM(3, 4, batch_first=True)
        self.b = nn.GRU(4, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x, h0=None):
        return self.fc(self.b(self.a(x)[0], h0)[1][-1])


def test_heads_and_layers_it_cannot_decompose_are_named():
    x = torch.randn(2, 5, 3)
    # an MLP head: the first linear reads the state, its output is decomposed
    mlp = _MLPHead().eval()
    d = RecurrentDecomposition(mlp, output="logits").attribute(x)
    assert d.head == "hidden"
    assert float(d.residual.max()) < 1e-5
    with pytest.raises(ValueError, match="head="):
        RecurrentDecomposition(mlp, head="out", output="logits").attribute(x)
    with pytest.raises(ValueError, match="head="):
        RecurrentDecomposition(_model("gru", pooling="max")).attribute(x)
    with pytest.raises(ValueError, match="layer="):
        RecurrentDecomposition(_TwoLayers(), output="logits")
    two = _TwoLayers().eval()
    assert float(RecurrentDecomposition(two, layer="b").attribute(x).residual.max()) < 1e-5


def test_a_non_zero_initial_state_is_refused():
    two = _TwoLayers().eval()
    decomposition = RecurrentDecomposition(two, layer=two.b, output="logits")
    original = two.forward
    two.forward = lambda x: original(x, torch.ones(1, x.shape[0], 4))
    try:
        with pytest.raises(ValueError, match="initial state"):
            decomposition.attribute(torch.randn(2, 5, 3))
    finally:
        del two.forward


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_ground_truth_auprc_is_within_005_of_integrated_gradients(cell):
    """On state_switching (the true cells known), the decomposition ranks the cells about
    as well as IG (reported figures: benchmarks/decomposition.py)."""
    from captum_rnn.attr import get_method
    from captum_rnn.data import state_switching
    from captum_rnn.metrics import auprc

    torch.manual_seed(0)
    train = state_switching(400, length=(12, 20), features=4, states=3, seed=0)
    test = state_switching(80, length=(12, 20), features=4, states=3, seed=1)
    model = RNNClassifier(2, input_size=4, cell=cell, hidden_size=24)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _epoch in range(8):
        for rows in torch.randperm(400).split(32):
            loss = model.compute_loss(
                model(train.series[rows], train.lengths[rows]), train.labels[rows]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    x, lengths = test.series, test.lengths
    with torch.no_grad():
        target = model(x, lengths).argmax(-1)
    assert float((target == test.labels).double().mean()) > 0.85

    def score(name, **options):
        result = get_method(name)(model).attribute(
            x, torch.zeros_like(x), target, lengths, **options
        )
        values = auprc(
            result.attributions.detach().double().reshape(len(x), -1),
            test.masks.reshape(len(x), -1),
            lengths=lengths * 4,
            absolute=True,
        )
        return float(values.mean())

    ig = score("integrated_gradients", n_steps=50, max_steps=50)
    decomposition = score("decomposition")
    chance = float(test.masks.sum() / (lengths.sum() * 4))
    print(f"{cell} AUPRC: IG {ig:.3f}, decomposition {decomposition:.3f}, chance {chance:.3f}")
    assert ig > chance + 0.2  # the model learned the task, so the comparison means something
    assert abs(decomposition - ig) <= 0.05
