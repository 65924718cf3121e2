"""NaN or infinite scores from the network are refused, naming the word (issue 16).

Read as "reject", a NaN score turns into a reject-all automaton without a word said.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from captum_rnn.data import tomita_accepts, tomita_vocabulary
from captum_rnn.models import RNNClassifier
from captum_rnn.rules import dfa_fidelity, extract_dfa, tomita_dfa
from captum_rnn.rules._oracle import RecurrentOracle, TokenModelOracle, make_oracle

VOCAB = tomita_vocabulary()  # "0" -> 2, "1" -> 3


def nan_on(bad, value=math.nan, classes=False):
    """Tomita 4 probabilities (or two class scores), ``value`` for the words in ``bad``."""

    def score(words):
        p = [value if w in bad else float(tomita_accepts(4, w)) for w in words]
        return np.stack([1 - np.array(p), np.array(p)], 1) if classes else np.array(p)

    return score


@pytest.mark.parametrize("classes", [False, True])
def test_a_callable_returning_nan_is_named_by_its_word(classes):
    net = nan_on({"0101"}, classes=classes)
    with pytest.raises(ValueError, match=r"the model returned NaN for the word '0101' \(1 of"):
        extract_dfa(net, "01", max_length=6, empty=True)
    with pytest.raises(ValueError, match="NaN for the word '0101'"):
        dfa_fidelity(tomita_dfa(4), net, max_length=6)
    with pytest.raises(ValueError, match="an infinite score for the word '0101'"):
        dfa_fidelity(tomita_dfa(4), nan_on({"0101"}, math.inf, classes), max_length=6)
    # the same network without the NaN is read as usual
    assert dfa_fidelity(tomita_dfa(4), nan_on(set(), classes=classes), max_length=6).fidelity == 1


def test_nan_for_the_empty_word_and_tuple_symbols():
    with pytest.raises(ValueError, match="NaN for the empty word"):
        extract_dfa(nan_on({""}), "01", empty="network")
    oracle = make_oracle(lambda ws: [math.nan] * len(ws), ["ab", "c"], empty=False)
    with pytest.raises(ValueError, match=r"NaN for the word \('c', 'ab'\) \(2 of 2 words"):
        oracle.labels([(1, 0), (0,)])


def test_prefix_scores_with_nan_name_the_prefix_and_ignore_padding():
    def prefix_net(words):
        width = max(map(len, words))
        out = np.full((len(words), width), math.nan)  # past a word's end: NaN, never read
        for i, w in enumerate(words):
            out[i, : len(w)] = [
                math.nan if w[: t + 1] == "011" else tomita_accepts(4, w[: t + 1])
                for t in range(len(w))
            ]
        return out

    oracle = make_oracle(prefix_net, "01", empty=True, prefix_scores=True)
    assert oracle.labels([(0, 0, 0), (1,)]).tolist() == [False, True]
    with pytest.raises(ValueError, match="NaN for the word '011'"):
        oracle.labels([(0, 1, 1, 0)])


def nan_symbol_model(**kwargs):
    """A package GRU whose embedding of "1" is NaN: every word with a 1 scores NaN."""
    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=4, embedding_dim=3, hidden_size=4, cell="gru", **kwargs)
    with torch.no_grad():
        model.embedding.weight[VOCAB.index("1")] = math.nan
    return model.eval()


def test_a_package_rnn_with_nan_states_is_refused_white_box():
    """The stepped states were read with argmax, which calls a NaN row class 0: the
    automaton rejected everything."""
    model = nan_symbol_model()
    oracle = make_oracle(model, "01", VOCAB)
    assert isinstance(oracle, RecurrentOracle)
    assert oracle.labels([(0,), (0, 0)]).shape == (2,)  # no 1: finite
    with pytest.raises(ValueError, match="the model returned NaN for the word '01'"):
        oracle.labels([(0, 1), (0, 0)])
    with pytest.raises(ValueError, match=r"the model returned NaN for the word '[01]*1"):
        extract_dfa(model, "01", vocab=VOCAB, max_length=6)


def test_a_token_model_with_nan_scores_is_refused_black_box():
    model = nan_symbol_model(bidirectional=True)
    oracle = make_oracle(model, "01", VOCAB, empty=False)
    assert isinstance(oracle, TokenModelOracle)
    with pytest.raises(ValueError, match=r"NaN for the word '1' \(2 of 3 words"):
        oracle.labels([(0, 0), (0, 1), (1,)])
    with pytest.raises(ValueError, match="NaN for the word"):
        dfa_fidelity(tomita_dfa(4), model, vocab=VOCAB, max_length=6)
