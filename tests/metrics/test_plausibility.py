"""Plausibility metrics: AUPRC, top-k F1 and IoU against rationales, lexicon agreement."""

import math

import pytest
import torch

from captum_rnn import Explanation
from captum_rnn.data import DataUnavailableError
from captum_rnn.metrics import (
    auprc,
    lexicon_agreement,
    spearman,
    token_f1,
    token_iou,
    top_k_mask,
)

from conftest import average_precision


def test_auprc_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.1, 0.4]])
    rationale = torch.tensor([[1, 0, 0, 1], [1, 0, 0, 0]])
    # Row 0: ranks 0, 2, 3, 1: hits at ranks 1 and 3: (1 + 2/3) / 2.
    # Row 1: the relevant token is ranked 3rd: 1/3.
    assert auprc(scores, rationale).tolist() == pytest.approx([5 / 6, 1 / 3])


def test_auprc_matches_the_reference_definition_without_ties():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        scores = torch.rand(12, generator=g)
        relevant = torch.rand(12, generator=g) < 0.3
        relevant[0] = True
        got = float(auprc(scores[None], relevant[None])[0])
        assert got == pytest.approx(average_precision(scores, relevant))


def test_tied_scores_are_one_threshold():
    # A constant attribution ranks nothing: it scores exactly the share of relevant tokens.
    assert auprc(torch.zeros(1, 5), torch.tensor([[0, 1, 0, 0, 1]])).item() == pytest.approx(0.4)
    # Ties between a relevant and an irrelevant token at the top count as one step.
    value = auprc(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[1, 0, 0]])).item()
    assert value == pytest.approx(0.5)


def test_padding_is_never_counted():
    scores = torch.tensor([[0.1, 0.9, 5.0, 5.0]])  # padding scores would win if ranked
    rationale = torch.tensor([[0, 1, 0, 0]])
    assert auprc(scores, rationale, lengths=[2]).item() == pytest.approx(1.0)
    assert token_f1(scores, rationale, lengths=[2]).item() == pytest.approx(1.0)
    # Ragged lists give the lengths.
    ragged = auprc([[0.1, 0.9]], [torch.tensor([False, True])])
    assert ragged.item() == pytest.approx(1.0)


def test_top_k_f1_and_iou_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.0, 0.3]])
    rationale = torch.tensor([[1, 1, 0, 0, 0]])
    # k = 2 (rationale size): predicted {0, 2}: 1 hit. F1 = 0.5, IoU = 1/3.
    assert token_f1(scores, rationale).item() == pytest.approx(0.5)
    assert token_iou(scores, rationale).item() == pytest.approx(1 / 3)
    # k = 3: predicted {0, 2, 4}: precision 1/3, recall 1/2, F1 = 0.4; IoU = 1/4.
    assert token_f1(scores, rationale, k=3).item() == pytest.approx(0.4)
    assert token_iou(scores, rationale, k=3).item() == pytest.approx(0.25)
    # k as a fraction of the length: 0.2 * 5 = 1 token: {0}: F1 = 2/3, IoU = 1/2.
    assert token_f1(scores, rationale, k=0.2).item() == pytest.approx(2 / 3)
    assert token_iou(scores, rationale, k=0.2).item() == pytest.approx(0.5)
    # absolute ranking.
    negative = torch.tensor([[-0.9, -0.8, 0.5, 0.0, 0.3]])
    assert token_f1(negative, rationale, absolute=True).item() == pytest.approx(1.0)
    assert top_k_mask(torch.tensor([0.2, 0.2, 0.1]), 1).tolist() == [True, False, False]


def test_no_rationale_gives_nan_and_bad_input_is_named():
    assert math.isnan(auprc(torch.rand(1, 3), torch.zeros(1, 3)).item())
    assert math.isnan(token_f1(torch.rand(1, 3), torch.zeros(1, 3)).item())
    with pytest.raises(ValueError, match="differ in batch size"):
        auprc(torch.rand(2, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="k must be"):
        token_f1(torch.rand(1, 3), torch.ones(1, 3), k=0)
    with pytest.raises(ValueError, match="NaN"):
        auprc(torch.tensor([[math.nan, 1.0]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="has 2 scores but rationale\\[0\\] has 3"):
        auprc([[0.1, 0.2]], [torch.ones(3)])


def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    # Ties get average ranks: a = ranks (1, 2.5, 2.5, 4) against b = (1, 2, 3, 4).
    # Centred: (-1.5, 0, 0, 1.5) and (-1.5, -0.5, 0.5, 1.5).
    expected = (1.5 * 1.5 + 1.5 * 1.5) / math.sqrt((2.25 * 2) * (2.25 * 2 + 0.25 * 2))
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(expected)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _explanation(tokens, scores, target=1):
    return Explanation(list(tokens), list(scores), "ig", target=target)


LEXICON = {"good": 1.9, "great": 3.1, "bad": -2.5, "awful": -2.0, "fine": 0.8}


def test_lexicon_agreement_on_a_hand_made_lexicon():
    explanations = [
        _explanation(["a", "Good", "film"], [0.0, 1.0, 0.2]),
        _explanation(["great", "but", "awful"], [2.0, 0.0, -0.5]),
        _explanation(["bad", "good"], [-1.0, 0.6]),
    ]
    result = lexicon_agreement(explanations, LEXICON)
    # Per word means: good 0.8, great 2.0, awful -0.5, bad -1.0 against valence
    # 1.9, 3.1, -2.0, -2.5: the same order, so rho = 1.
    assert result.spearman == pytest.approx(1.0)
    assert (result.n_words, result.n_occurrences) == (4, 5)
    assert result.words[0] == ("good", pytest.approx(0.8), 1.9, 2)
    # Over occurrences both "good" (1.0 and 0.6, valence tied at 1.9) count: centred
    # ranks (1, 2, -1, -2, 0) against (0.5, 2, -1, -2, 0.5).
    occ = lexicon_agreement(explanations, LEXICON, aggregate="occurrence")
    assert occ.spearman == pytest.approx(9.5 / math.sqrt(10 * 9.5))
    # Case-sensitive lookup drops "Good".
    assert lexicon_agreement(explanations, LEXICON, lowercase=False).n_occurrences == 4
    # Reversed attributions give -1.
    flipped = [_explanation(e.tokens, [-s for s in e.scores]) for e in explanations]
    assert lexicon_agreement(flipped, LEXICON).spearman == pytest.approx(-1.0)
    assert lexicon_agreement(explanations, LEXICON, min_count=2).n_words == 1
    assert result.to_dict()["n_words"] == 4


def test_lexicon_agreement_refuses_another_target():
    with pytest.raises(ValueError, match="explain with target=1"):
        lexicon_agreement([_explanation(["good"], [1.0], target=0)], LEXICON)
    with pytest.raises(ValueError, match="aggregate must be"):
        lexicon_agreement([], LEXICON, aggregate="mean")


@pytest.mark.network
def test_lexicon_agreement_with_the_real_vader_lexicon():
    from captum_rnn.data import load_valence_lexicon

    try:
        lexicon = load_valence_lexicon()
    except DataUnavailableError as error:
        pytest.skip(f"lexicon unavailable: {error}")
    words = ["good", "great", "love", "bad", "awful", "hate", "terrible", "nice"]
    assert all(w in lexicon for w in words)
    # An explanation that scores words by a crude rule (+1 positive list, -1 negative)
    # agrees with the human ratings on these words.
    positive = {"good", "great", "love", "nice"}
    e = _explanation(words, [1.0 if w in positive else -1.0 for w in words])
    result = lexicon_agreement([e], lexicon)
    assert result.n_words == len(words) and result.spearman > 0.8
