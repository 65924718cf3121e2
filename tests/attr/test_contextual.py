"""Contextual decomposition (Murdoch, Liu & Yu 2018) against the authors' algorithm written
out step by step, its exactness on users' LSTMs (stacked, bidirectional, packed, padded)
and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zoo
from torch import nn

import captum_rnn
from captum_rnn.attr import ContextualDecomposition
from captum_rnn.models import RNNClassifier


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_cd(lstm: nn.LSTM, vecs: np.ndarray, start: int, stop: int):
    """The authors' ``cd.py`` (one layer, one sequence, phrase ``start..stop``), written
    out with numpy: relevant and irrelevant final hidden states."""
    w_ii, w_if, w_ig, w_io = np.split(lstm.weight_ih_l0.detach().double().numpy(), 4, 0)
    w_hi, w_hf, w_hg, w_ho = np.split(lstm.weight_hh_l0.detach().double().numpy(), 4, 0)
    b = (lstm.bias_ih_l0.detach().double() + lstm.bias_hh_l0.detach().double()).numpy()
    b_i, b_f, b_g, b_o = np.split(b, 4)

    def three(a, b, c, act):
        a_c = 0.5 * (act(a + c) - act(c) + act(a + b + c) - act(b + c))
        b_c = 0.5 * (act(b + c) - act(c) + act(a + b + c) - act(a + c))
        return a_c, b_c, act(c)

    def two(a, b, act):
        return 0.5 * (act(a) + (act(a + b) - act(b))), 0.5 * (act(b) + (act(a + b) - act(a)))

    time, hidden = vecs.shape[0], w_hi.shape[1]
    relevant, irrelevant = np.zeros((time, hidden)), np.zeros((time, hidden))
    relevant_h, irrelevant_h = np.zeros((time, hidden)), np.zeros((time, hidden))
    for i in range(time):
        prev_rel_h = relevant_h[i - 1] if i > 0 else np.zeros(hidden)
        prev_irrel_h = irrelevant_h[i - 1] if i > 0 else np.zeros(hidden)
        rel_i, rel_g, rel_f, rel_o = (w @ prev_rel_h for w in (w_hi, w_hg, w_hf, w_ho))
        irrel_i, irrel_g, irrel_f, irrel_o = (w @ prev_irrel_h for w in (w_hi, w_hg, w_hf, w_ho))
        x = vecs[i]
        if start <= i <= stop:
            rel_i, rel_g, rel_f, rel_o = (
                rel_i + w_ii @ x,
                rel_g + w_ig @ x,
                rel_f + w_if @ x,
                rel_o + w_io @ x,
            )
        else:
            irrel_i, irrel_g = irrel_i + w_ii @ x, irrel_g + w_ig @ x
            irrel_f, irrel_o = irrel_f + w_if @ x, irrel_o + w_io @ x
        rc_i, ic_i, bc_i = three(rel_i, irrel_i, b_i, _sigmoid)
        rc_g, ic_g, bc_g = three(rel_g, irrel_g, b_g, np.tanh)
        relevant[i] = rc_i * (rc_g + bc_g) + bc_i * rc_g
        irrelevant[i] = ic_i * (rc_g + ic_g + bc_g) + (rc_i + bc_i) * ic_g
        if start <= i <= stop:
            relevant[i] += bc_i * bc_g
        else:
            irrelevant[i] += bc_i * bc_g
        if i > 0:
            rc_f, ic_f, bc_f = three(rel_f, irrel_f, b_f, _sigmoid)
            relevant[i] += (rc_f + bc_f) * relevant[i - 1]
            irrelevant[i] += (rc_f + ic_f + bc_f) * irrelevant[i - 1] + ic_f * relevant[i - 1]
        o = _sigmoid(w_io @ x + w_ho @ (prev_rel_h + prev_irrel_h) + b_o)
        new_rel_h, new_irrel_h = two(relevant[i], irrelevant[i], np.tanh)
        relevant_h[i], irrelevant_h[i] = o * new_rel_h, o * new_irrel_h
    return relevant_h[-1], irrelevant_h[-1]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RNNClassifier(3, vocab_size=30, embedding_dim=6, hidden_size=10, cell="lstm").eval()


def test_phrase_scores_equal_the_authors_algorithm(model):
    ids = torch.tensor([[4, 9, 13, 7, 21, 5, 6], [8, 2, 17, 3, 0, 0, 0]])
    lengths = (ids != 0).sum(1)
    spans = [(0, 0), (1, 3), (2, 2), (0, 6), (5, 6)]
    phrases = torch.zeros(2, len(spans), 7, dtype=torch.bool)
    for k, (a, b) in enumerate(spans):
        phrases[:, k, a : b + 1] = True
    relevant, irrelevant = ContextualDecomposition(model).attribute(ids, phrases)
    w = model.head.weight.detach().double().numpy()
    for row in range(2):
        n = int(lengths[row])
        vecs = model.embedding(ids[row, :n]).detach().double().numpy()
        for k, (a, b) in enumerate(spans):
            if a >= n:
                assert relevant[row, k].abs().max() == 0
                continue
            rel_h, irrel_h = reference_cd(model.rnn, vecs, a, min(b, n - 1))
            np.testing.assert_allclose(relevant[row, k].numpy(), w @ rel_h, atol=1e-10)
            np.testing.assert_allclose(irrelevant[row, k].numpy(), w @ irrel_h, atol=1e-10)


def test_whole_sequence_is_all_relevant_and_parts_add_up_to_the_logit(model):
    ids = torch.tensor([[4, 9, 13, 7], [8, 2, 0, 0]])
    cd = ContextualDecomposition(model)
    with torch.no_grad():
        logits = model(ids).double() - model.head.bias.double()
    everything = torch.ones(2, 1, 4, dtype=torch.bool)
    nothing = torch.zeros(2, 1, 4, dtype=torch.bool)
    relevant, irrelevant = cd.attribute(ids, everything)
    torch.testing.assert_close(relevant[:, 0], logits, atol=1e-6, rtol=0)
    assert irrelevant.abs().max() < 1e-12
    relevant, irrelevant = cd.attribute(ids, nothing)
    assert relevant.abs().max() < 1e-12
    words_rel, words_irrel = cd.attribute(ids)  # one phrase per step
    torch.testing.assert_close(words_rel + words_irrel, logits[:, None].expand_as(words_rel),
                               atol=1e-6, rtol=0)  # fmt: skip


@pytest.mark.parametrize("name", ["imdb_lstm", "stacked_lstm"])
def test_users_stacked_bidirectional_packed_lstms(name):
    case = zoo.build(name)
    m, x = case.model, case.inputs[:4] if case.batch_first else case.inputs[:, :4]
    state = [p.detach().clone() for p in m.parameters()]
    lengths = case.lengths[:4] if case.lengths is not None else None
    explanations = captum_rnn.explain(m, x, method="contextual_decomposition", lengths=lengths,
                                      **case.hints)  # fmt: skip
    alone = [
        captum_rnn.explain(
            m, x[..., i : i + 1] if not case.batch_first else x[i : i + 1],
            method="cd", lengths=None if lengths is None else lengths[i : i + 1], **case.hints,
        )[0]
        for i in range(len(explanations))
    ]  # fmt: skip
    for e, f in zip(explanations, alone, strict=True):
        assert e.scores == pytest.approx(f.scores, rel=1e-6, abs=1e-9)  # batch = singles
    if lengths is not None:
        assert [len(e.scores) for e in explanations] == lengths.tolist()
    # relevant + irrelevant is the head's output less its bias, for every word
    seq = captum_rnn.adapt(m, **case.hints)
    batch_first = x if case.batch_first else x.transpose(0, 1)
    cd = ContextualDecomposition(m, **case.hints)
    inputs = batch_first
    relevant, irrelevant = cd.attribute(inputs, None, lengths)
    with torch.no_grad():
        out = seq(inputs, lengths).double()
    head = cd._locate(inputs, lengths, None).head
    total = (relevant + irrelevant)[:, 0] + head.bias.double()
    torch.testing.assert_close(total, out, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), state, strict=True))


def test_a_gru_is_refused_naming_the_decomposition():
    gru = RNNClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=3, cell="gru").eval()
    with pytest.raises(ValueError, match="method='decomposition'"):
        ContextualDecomposition(gru)
    with pytest.raises(ValueError, match="phrases must be"):
        lstm = RNNClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=3, cell="lstm")
        ContextualDecomposition(lstm.eval()).attribute(torch.tensor([[3, 4]]), torch.ones(2, 2))


def test_phrases_run_in_chunks_within_the_memory_budget(model, monkeypatch):
    ids = torch.tensor([[4, 9, 13, 7, 21, 5, 6], [8, 2, 17, 3, 0, 0, 0]])
    whole = ContextualDecomposition(model).attribute(ids)
    monkeypatch.setattr(ContextualDecomposition, "max_elements", 1)  # one phrase a chunk
    chunked = ContextualDecomposition(model).attribute(ids)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_benchmark_tries_it_on_lstms_only(model):
    from captum_rnn.attr._contextual import ContextualDecompositionMethod
    from captum_rnn.metrics._benchmark import applicable_methods

    gru = RNNClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=3, cell="gru").eval()
    assert ContextualDecompositionMethod.applies_to(model)
    assert "contextual_decomposition" in applicable_methods(model)
    assert "contextual_decomposition" not in applicable_methods(gru)


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, False), (1, True), (2, True)])
def test_starting_each_phrase_at_its_first_relevant_step_changes_nothing(
    layers, bidirectional, monkeypatch
):
    from captum_rnn.attr import _contextual

    torch.manual_seed(layers + 2 * bidirectional)
    m = RNNClassifier(3, vocab_size=30, embedding_dim=6, hidden_size=10, cell="lstm",
                      num_layers=layers, bidirectional=bidirectional).eval()  # fmt: skip
    ids = torch.tensor([[4, 9, 13, 7, 21, 5, 6], [8, 2, 17, 3, 0, 0, 0]])
    phrases = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(0)) < 0.3
    for given in (None, phrases):
        fast = ContextualDecomposition(m).attribute(ids, given)
        monkeypatch.setattr(_contextual, "SKIP_UNSTARTED", False)
        plain = ContextualDecomposition(m).attribute(ids, given)
        monkeypatch.setattr(_contextual, "SKIP_UNSTARTED", True)
        for a, b in zip(fast, plain, strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
