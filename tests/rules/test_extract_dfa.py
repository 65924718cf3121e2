"""extract_dfa: exact automata from trained networks, caps, reports and bad input.

The Tomita networks are trained once per module in plain torch (a few seconds).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.data import tomita, tomita_accepts, tomita_vocabulary
from captum_rnn.models import RNNClassifier, RNNRegressor
from captum_rnn.rules import DFA, extract_dfa, tomita_dfa
from captum_rnn.rules._oracle import RecurrentOracle, TokenModelOracle, make_oracle

VOCAB = tomita_vocabulary()


def encode(strings):
    """Tomita strings -> padded token ids ("0" -> 2, "1" -> 3)."""
    vocab = tomita_vocabulary()
    return pad_sequence([torch.tensor(vocab.encode(list(s))) for s in strings], batch_first=True)


def train_tomita(
    grammar,
    cell="gru",
    hidden=16,
    n=2000,
    max_length=15,
    epochs=40,
    seed=0,
    extra_epochs=3,
    lr=0.01,
):
    """Train on balanced data until training accuracy is 1 for ``extra_epochs`` more epochs."""
    strings, labels = tomita(grammar, n, 1, max_length, seed=seed)
    x, y = encode(strings), torch.tensor(labels)
    torch.manual_seed(seed)
    model = RNNClassifier(2, vocab_size=4, embedding_dim=4, hidden_size=hidden, cell=cell)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    perfect = 0
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 100):
            idx = order[i : i + 100]
            xb = x[idx][:, : int((x[idx] != 0).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy = (model(x).argmax(1) == y).float().mean().item()
        perfect = perfect + 1 if accuracy == 1.0 else 0
        if perfect > extra_epochs:
            break
    return model.eval()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny batched RNN steps run fastest on one thread on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _single_threaded(fn, *args, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tomita_nets():
    """GRUs trained to perfect training accuracy on Tomita 1, 4 and 7 (lengths 1-15)."""
    return {g: _single_threaded(train_tomita, g) for g in (1, 4, 7)}


@pytest.fixture(scope="module")
def imperfect_net():
    """A 4-unit GRU trained for three epochs on Tomita 6: far from a perfect recogniser."""
    return _single_threaded(train_tomita, 6, hidden=4, epochs=3, n=1000, seed=1)


def snapshot(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {n: m.training for n, m in model.named_modules()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
    )


def same(a, b):
    return (
        all(torch.equal(a[0][k], b[0][k]) for k in a[0])
        and a[1] == b[1]
        and a[2] == b[2]
        and a[3] == b[3]
    )


def network_labels(model, strings):
    with torch.no_grad():
        return (model(encode(strings)).argmax(1) == 1).tolist()


@pytest.mark.parametrize("grammar", [1, 4, 7])
def test_lstar_recovers_the_minimal_automaton(tomita_nets, grammar):
    model = tomita_nets[grammar]
    dfa = extract_dfa(model, "01", vocab=VOCAB, max_length=15, reference=tomita_dfa(grammar))
    assert dfa.equivalent(tomita_dfa(grammar)) is None
    assert dfa.num_states == tomita_dfa(grammar).num_states
    report = dfa.report
    assert report.converged and report.stopped_by == "equivalence"
    assert report.method == "lstar" and report.white_box
    assert report.equivalence == "abstraction+sampling"
    assert report.states == dfa.num_states and report.queries > 0 and report.calls > 0
    assert report.empty_label is True  # the empty word's label that keeps the DFA minimal
    fid = report.fidelity
    assert fid.reference_states == fid.num_states
    assert fid.in_range.dfa_accuracy == 1.0 and fid.in_range.fidelity >= 0.99
    # sampled uniformly within each length, the in-range words show the Tomita 7 network's
    # own few errors (34 of the 65534 words up to length 15); never the automaton's
    assert all(c.truth == c.dfa != c.network for c in fid.counterexamples)
    assert fid.longer.min_length == 16 and fid.longer.max_length == 30
    assert fid.longer.dfa_accuracy == 1.0
    # the automaton's own access strings name its states
    assert dfa.state_names[0] == "ε"


def test_black_box_extraction_from_a_scoring_callable(tomita_nets):
    model = tomita_nets[4]

    def score(words):
        return model(encode(words)).softmax(-1)[:, 1]

    dfa = extract_dfa(score, "01", max_length=15, seed=3)
    assert dfa.equivalent(tomita_dfa(4)) is None
    assert not dfa.report.white_box and dfa.report.equivalence == "sampling"
    # a bidirectional model cannot be stepped: padded forwards, same answer
    assert isinstance(make_oracle(model, "01", VOCAB, white_box=False), TokenModelOracle)


def test_abstraction_alone_with_starting_examples(tomita_nets):
    strings, _ = tomita(7, 200, 1, 15, seed=2)
    dfa = extract_dfa(tomita_nets[7], "01", vocab=VOCAB, equivalence="abstraction", samples=strings)
    assert dfa.equivalent(tomita_dfa(7)) is None
    assert dfa.report.partition_parts > 1


def test_quantize_gives_a_faithful_small_automaton(tomita_nets):
    dfa = extract_dfa(
        tomita_nets[4],
        "01",
        "quantize",
        vocab=VOCAB,
        max_length=15,
        reference=tomita_dfa(4),
        n_clusters=[4, 8, 16],
    )
    report = dfa.report
    assert report.method == "quantize" and report.clusters in (4, 8, 16)
    assert dfa.num_states <= 16
    assert report.fidelity.in_range.fidelity >= 0.95


def test_quantize_with_an_interval_grid(tomita_nets):
    dfa = extract_dfa(tomita_nets[1], "01", "quantize", vocab=VOCAB, clustering="interval")
    assert dfa.report.clusters >= 2
    assert dfa.equivalent(tomita_dfa(1)) is None


def test_imperfect_network_gives_a_small_automaton_with_its_fidelity(imperfect_net):
    dfa = extract_dfa(
        imperfect_net,
        "01",
        vocab=VOCAB,
        max_length=15,
        time_limit=2.0,
        max_states=12,
        reference=tomita_dfa(6),
    )
    report = dfa.report
    assert dfa.num_states <= 12
    assert report.stopped_by in {"equivalence", "time", "max_states", "max_rounds"}
    fid = report.fidelity
    assert 0.5 < fid.in_range.fidelity <= 1.0 and 0.0 <= fid.longer.fidelity <= 1.0
    assert fid.in_range.network_accuracy < 0.9  # indeed not a perfect recogniser
    # every attached counterexample is a real disagreement between network and DFA
    for cex in report.counterexamples:
        assert network_labels(imperfect_net, [cex.word]) == [cex.network]
        assert dfa.accepts(cex.word) == cex.dfa != cex.network
        assert cex.truth == tomita_accepts(6, cex.word)
    lengths = [len(c.word) for c in report.counterexamples]
    assert lengths == sorted(lengths)


def test_caps_stop_a_run_and_return_a_valid_automaton():
    net = lambda words: [tomita_accepts(5, w) for w in words]  # noqa: E731
    capped = extract_dfa(net, "01", max_states=2, falsify=0)
    assert capped.num_states <= 2 and capped.report.stopped_by == "max_states"
    assert capped.report.fidelity is None
    rounds = extract_dfa(net, "01", max_rounds=0, falsify=0)
    assert rounds.report.stopped_by == "max_rounds" and rounds.report.rounds == 0
    timed = extract_dfa(net, "01", time_limit=1e-9, falsify=0)
    assert timed.report.stopped_by == "time" and isinstance(timed, DFA)


def test_empty_word_label():
    net = lambda words: [tomita_accepts(1, w) for w in words]  # noqa: E731
    auto = extract_dfa(net, "01", falsify=0)
    assert auto.report.empty_label and auto.accepts("") and auto.num_states == 2
    rejecting = extract_dfa(net, "01", empty=False, falsify=0)
    assert not rejecting.accepts("") and rejecting.num_states == 3
    asked = extract_dfa(
        lambda ws: [w == "" or tomita_accepts(1, w) for w in ws], "01", empty="network", falsify=0
    )
    assert asked.accepts("") and asked.num_states == 2


def test_extraction_changes_nothing_and_is_deterministic(tomita_nets):
    model = tomita_nets[1].train()  # even a model left in training mode
    try:
        before = snapshot(model)
        a = extract_dfa(model, "01", vocab=VOCAB, seed=5, falsify=200)
        assert same(before, snapshot(model))
        b = extract_dfa(model, "01", vocab=VOCAB, seed=5, falsify=200)
        assert a == b and a.report.queries == b.report.queries
        with pytest.raises(ValueError, match="samples"):
            extract_dfa(model, "01", vocab=VOCAB, samples=["012"])
        assert same(before, snapshot(model))
    finally:
        model.eval()


@pytest.mark.parametrize("cell, layers", [("gru", 1), ("lstm", 2), ("rnn", 2)])
def test_stepped_states_agree_with_the_forward_pass(cell, layers):
    torch.manual_seed(0)
    model = RNNClassifier(
        2, vocab_size=6, embedding_dim=3, hidden_size=5, num_layers=layers, cell=cell
    ).eval()
    oracle = make_oracle(model, {"a": 2, "b": 3, "c": 5})
    assert isinstance(oracle, RecurrentOracle)
    rng = random.Random(0)
    words = [tuple(rng.randrange(3) for _ in range(rng.randint(1, 9))) for _ in range(300)]
    ids = torch.zeros(len(words), 9, dtype=torch.long)
    for i, w in enumerate(words):
        ids[i, : len(w)] = torch.tensor([[2, 3, 5][a] for a in w])
    with torch.no_grad():
        expected = (model(ids).argmax(1) == 1).numpy()
        got = oracle.labels(words)
    assert np.array_equal(got, expected)
    assert oracle.steps <= sum(len(w) for w in words)  # shared prefixes stepped once


def test_models_without_steppable_state_use_padded_forwards():
    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=4, embedding_dim=3, hidden_size=4, bidirectional=True)
    dfa = extract_dfa(model.eval(), "01", vocab=VOCAB, time_limit=2.0, max_states=8)
    assert not dfa.report.white_box and dfa.num_states <= 8
    with pytest.raises(ValueError, match="quantize"):
        extract_dfa(model, "01", "quantize", vocab=VOCAB)
    with pytest.raises(ValueError, match="abstraction"):
        extract_dfa(model, "01", vocab=VOCAB, equivalence="abstraction")


def test_bad_input_errors():
    model = RNNClassifier(2, vocab_size=4, embedding_dim=3, hidden_size=4, cell="gru").eval()
    with pytest.raises(ValueError, match="vocabulary"):
        extract_dfa(model, "012", vocab=VOCAB)  # "2" is not a Tomita token
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        extract_dfa(model, {"0": 2, "1": 9})
    with pytest.raises(ValueError, match="padding"):
        extract_dfa(model, {"0": 0, "1": 3})
    with pytest.raises(ValueError, match="token ids"):
        extract_dfa(model, "01")  # no way to map symbols to ids
    with pytest.raises(ValueError, match="binary"):
        extract_dfa(RNNClassifier(3, vocab_size=4, hidden_size=4), "01", vocab=VOCAB)
    with pytest.raises(ValueError, match="binary"):
        extract_dfa(RNNRegressor(vocab_size=4, hidden_size=4), "01", vocab=VOCAB)
    with pytest.raises(ValueError, match="binary"):
        extract_dfa(lambda words: np.zeros((len(words), 3)), "01")
    with pytest.raises(ValueError, match="samples is empty"):
        extract_dfa(model, "01", "quantize", vocab=VOCAB, samples=[])
    with pytest.raises(ValueError, match="method"):
        extract_dfa(model, "01", "svm", vocab=VOCAB)
    with pytest.raises(ValueError, match="max_states"):
        extract_dfa(model, "01", vocab=VOCAB, max_states=0)
    with pytest.raises(ValueError, match="time_limit"):
        extract_dfa(model, "01", vocab=VOCAB, time_limit=0)
    with pytest.raises(ValueError, match="empty"):
        extract_dfa(model, "01", vocab=VOCAB, empty="maybe")
    with pytest.raises(ValueError, match="empty='network'"):
        extract_dfa(
            RNNClassifier(2, vocab_size=4, hidden_size=4, bidirectional=True),
            "01",
            vocab=VOCAB,
            empty="network",
        )
    with pytest.raises(TypeError, match="model"):
        extract_dfa(42, "01")
    with pytest.raises(ValueError, match="continuous"):
        extract_dfa(RNNClassifier(2, input_size=3, hidden_size=4), "01", vocab=VOCAB)
    with pytest.raises(ValueError, match="alphabet"):
        extract_dfa(
            model, "01", vocab=VOCAB, reference=tomita_dfa(1).__class__("ab", [[0, 0]], {0})
        )


def test_report_serialises():
    import json

    net = lambda words: [tomita_accepts(2, w) for w in words]  # noqa: E731
    dfa = extract_dfa(net, "01", falsify=100)
    data = json.loads(json.dumps(dfa.report.to_dict()))
    assert data["states"] == 3 and data["fidelity"]["in_range"]["fidelity"] == 1.0
    assert "3 states" in str(dfa.report)


def test_any_token_classifier_of_the_package_works_black_box():
    from captum_rnn.models import TransformerClassifier

    torch.manual_seed(0)
    model = TransformerClassifier(2, vocab_size=4, num_layers=1, num_heads=1).eval()
    dfa = extract_dfa(model, "01", vocab=VOCAB, time_limit=2.0, max_states=6, falsify=200)
    assert not dfa.report.white_box and 1 <= dfa.num_states <= 6
    assert 0.0 <= dfa.report.fidelity.in_range.fidelity <= 1.0


@pytest.mark.gpu
def test_extraction_and_anchors_on_cuda():
    from captum_rnn.attr import RuleExtraction

    model = train_tomita(4).cuda()
    dfa = extract_dfa(model, "01", vocab=VOCAB, max_length=15)
    assert dfa.equivalent(tomita_dfa(4)) is None and dfa.report.white_box
    quant = extract_dfa(model, "01", "quantize", vocab=VOCAB, n_clusters=[4, 8])
    assert quant.report.fidelity.in_range.fidelity > 0.9
    ids = encode(["1101", "10001"]).cuda()
    mask = RuleExtraction(model).attribute(ids, precision=0.9)
    assert mask.device.type == "cuda" and (mask[ids == 0] == 0).all()
    model.cpu()
