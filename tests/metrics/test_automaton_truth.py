"""Automata as ground truth for attribution: exact on hand-made automata, equal to brute
force on random ones, and scoring attribution methods on trained Tomita networks and on
a user's model."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.data import tomita, tomita_vocabulary
from captum_rnn.metrics import (
    AutomatonTruthSet,
    automaton_auprc,
    automaton_truth,
    automaton_truth_set,
    benchmark,
)
from captum_rnn.rules import DFA, tomita_dfa

EVEN_ONES = DFA("01", [[0, 1], [1, 0]], accepting={0})
# Contains "ab" over three symbols: 0 start, 1 just read a, 2 found (absorbing).
CONTAINS_AB = DFA("abc", [[1, 0, 0], [1, 2, 0], [2, 2, 2]], accepting={2})


def test_tomita1_rejected_word_any_zero_is_a_minimal_subset_and_none_flips():
    truth = automaton_truth(tomita_dfa(1), "10110")
    assert truth.accepted is False
    assert truth.flips == (False,) * 5  # two zeros: no single substitution accepts
    assert truth.minimal_subsets == ((1,), (4,))
    assert truth.relevant == (False, True, False, False, True)


def test_tomita1_single_zero_flips_and_is_the_only_subset():
    truth = automaton_truth(tomita_dfa(1), "1101")
    assert truth.flips == (False, False, True, False)
    assert truth.minimal_subsets == ((2,),)
    assert truth.mask("flips").tolist() == truth.mask("relevant").tolist()


def test_parity_every_position_flips_and_all_are_needed():
    truth = automaton_truth(EVEN_ONES, "0110")
    assert truth.accepted is True
    assert truth.flips == (True,) * 4
    assert truth.flip_share == (1.0,) * 4
    assert truth.minimal_subsets == ((0, 1, 2, 3),)


def test_flip_share_counts_the_substitutions_that_flip():
    truth = automaton_truth(CONTAINS_AB, "cabc")
    assert truth.accepted is True
    # Position 1 ("a"): "b" or "c" there both lose the only "ab"; position 2 likewise.
    assert truth.flip_share == (0.0, 1.0, 1.0, 0.0)
    assert truth.minimal_subsets == ((1, 2),)
    # "bca": no substitution makes an "ab"; the "c" alone blocks both places an "ab"
    # could go, and so do the "b" and the "a" together.
    rejected = automaton_truth(CONTAINS_AB, "bca")
    assert rejected.flips == (False, False, False)
    assert rejected.minimal_subsets == ((1,), (0, 2))


def test_constant_decision_gives_the_empty_subset_and_no_relevant_position():
    truth = automaton_truth(tomita_dfa(2), "101")  # (10)*: odd lengths are all rejected
    assert truth.minimal_subsets == ((),)
    assert truth.relevant == (False, False, False)
    assert automaton_truth(tomita_dfa(2), "").minimal_subsets == ((),)


def _brute(dfa, word):
    """Flips and minimal sufficient subsets by enumerating every word of the length."""
    n, alphabet = len(word), dfa.alphabet
    decision = dfa.accepts(word)
    flips = tuple(
        any(dfa.accepts(word[:i] + (b,) + word[i + 1 :]) != decision for b in alphabet if b != s)
        for i, s in enumerate(word)
    )
    everything = list(itertools.product(alphabet, repeat=n))

    def sufficient(subset):
        return all(
            dfa.accepts(w) == decision for w in everything if all(w[i] == word[i] for i in subset)
        )

    found = []
    for size in range(n + 1):
        for subset in itertools.combinations(range(n), size):
            if any(set(f) <= set(subset) for f in found):
                continue
            if sufficient(subset):
                found.append(subset)
    return flips, sorted(found, key=lambda t: (len(t), t))


@st.composite
def automaton_and_word(draw):
    k = draw(st.integers(1, 3))
    n = draw(st.integers(1, 4))
    alphabet = "abc"[:k]
    table = [[draw(st.integers(0, n - 1)) for _ in range(k)] for _ in range(n)]
    accepting = draw(st.sets(st.integers(0, n - 1)))
    start = draw(st.integers(0, n - 1))
    word = tuple(draw(st.lists(st.sampled_from(alphabet), max_size=6)))
    return DFA(alphabet, table, accepting, start=start), word


@settings(max_examples=150, deadline=None)
@given(automaton_and_word())
def test_truth_equals_brute_force_on_random_automata(case):
    dfa, word = case
    truth = automaton_truth(dfa, word)
    flips, subsets = _brute(dfa, word)
    assert truth.flips == flips
    assert list(truth.minimal_subsets) == subsets
    # Every flip position is in every minimal sufficient subset; relevant is their union.
    for i, flip in enumerate(truth.flips):
        if flip:
            assert all(i in s for s in truth.minimal_subsets)
    assert truth.relevant == tuple(any(i in s for s in subsets) for i in range(len(word)))
    shares = [
        sum(dfa.accepts(word[:i] + (b,) + word[i + 1 :]) != truth.accepted for b in dfa.alphabet)
        / (len(dfa.alphabet) - 1)
        if len(dfa.alphabet) > 1
        else 0.0
        for i in range(len(word))
    ]
    assert truth.flip_share == pytest.approx(tuple(shares))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.text("01", min_size=1, max_size=10))
def test_minimal_subsets_are_sufficient_on_tomita(grammar, word):
    dfa = tomita_dfa(grammar)
    truth = automaton_truth(dfa, word)
    for subset in truth.minimal_subsets[:5]:
        free = [i for i in range(len(word)) if i not in subset]
        for fill in itertools.product("01", repeat=min(len(free), 6)):
            w = list(word)
            for i, s in zip(free, fill, strict=False):
                w[i] = s
            assert dfa.accepts(w) == truth.accepted


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="word"):
        automaton_truth(tomita_dfa(1), "012")
    with pytest.raises(ValueError, match="kind"):
        automaton_truth_set(tomita_dfa(1), ["01"], tomita_vocabulary(), kind="necessary")
    with pytest.raises(ValueError, match="vocab="):
        automaton_truth_set(tomita_dfa(1), ["01"])
    with pytest.raises(ValueError, match="max_subsets"):
        automaton_truth(tomita_dfa(1), "0" * 8, max_subsets=3)
    with pytest.raises(TypeError, match="automaton_truth_set"):
        automaton_auprc(torch.nn.Linear(2, 2), {"masks": []})


def test_truth_set_encodes_with_the_vocabulary_and_keeps_int_symbols():
    vocab = tomita_vocabulary()
    data = automaton_truth_set(tomita_dfa(4), ["1000", "0101"], vocab, kind="flips")
    assert [s.tolist() for s in data.sequences] == [
        vocab.encode(list("1000")),
        vocab.encode(list("0101")),
    ]
    assert data.labels == [0, 1]
    assert [m.tolist() for m in data.masks] == [
        [False, True, True, True],
        [False, True, False, False],  # "0001" holds "000"
    ]
    ints = automaton_truth_set(DFA([5, 7], [[0, 1], [1, 1]], accepting={1}), [[5, 7, 5]])
    assert isinstance(ints, AutomatonTruthSet) and len(ints) == 1
    assert ints.sequences[0].tolist() == [5, 7, 5]


# ---------------------------------------------------------------------- trained networks
@pytest.fixture(scope="module")
def tomita4_gru():
    from captum_rnn.demo import train_tomita

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, accuracy, _ = train_tomita(4, "gru", hidden_size=16, n_train=1000, max_epochs=30)
    finally:
        torch.set_num_threads(threads)
    assert accuracy == 1.0
    return model


def test_methods_beat_chance_and_benchmark_pick_is_near_the_best(tomita4_gru):
    vocab = tomita_vocabulary()
    words, _ = tomita(4, 24, 5, 10, seed=11)
    data = automaton_truth_set(tomita_dfa(4), words, vocab)
    padded = pad_sequence(data.sequences, batch_first=True, padding_value=vocab.pad_index)
    with torch.no_grad():
        assert tomita4_gru(padded).argmax(-1).tolist() == data.labels  # decides like the DFA
    methods = ["saliency", "integrated_gradients", "occlusion", "feature_ablation"]
    scores = automaton_auprc(tomita4_gru, data, methods, pad_id=vocab.pad_index)
    assert list(scores) == [*methods, "random"]
    for name in ("integrated_gradients", "occlusion"):
        assert scores[name] > scores["random"] + 0.15, scores
    # benchmark reads the truth set like planted cues: its masks are the rationale.
    result = benchmark(tomita4_gru, data, methods=methods, progress=False, pad_id=vocab.pad_index)
    assert "auprc" in result.metrics
    for name in methods:
        assert result.row(name)["auprc"] == pytest.approx(scores[name], abs=0.05)
    best = max(scores[m] for m in methods)
    assert scores[result.recommendation] >= best - 0.05, (result.recommendation, scores)


def test_on_a_user_model_time_major_with_pad_one():
    import zoo
    from zoo.imdb_lstm import GOOD, PAD_IDX, VOCAB_SIZE

    case = zoo.build("imdb_lstm")
    alphabet = [t for t in range(VOCAB_SIZE) if t not in (PAD_IDX, 3)]  # no pad, no BAD
    contains_good = DFA(
        alphabet, [[1 if t == GOOD else 0 for t in alphabet], [1] * len(alphabet)], {1}
    )
    words = [
        case.inputs[: int(case.lengths[i]), i].tolist()
        for i in range(case.inputs.shape[1])
        if int(case.labels[i]) == 1
    ]
    data = automaton_truth_set(contains_good, words)
    for word, mask in zip(words, data.masks, strict=True):
        assert mask.tolist() == [t == GOOD for t in word]  # the cue is the only relevant token
    scores = automaton_auprc(case.model, data, ["occlusion", "saliency"], **case.hints)
    assert scores["occlusion"] > 0.9 > scores["random"]
    assert not any(math.isnan(v) for v in scores.values())
    assert PAD_IDX not in alphabet
