"""Anchors that claim precision prove it: the lower confidence bound reaches the target,
the claim holds on fresh perturbations, and the rows a search reuses for larger anchors
are exactly the draws of those anchors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _cue_net import cue_net, one_thread  # noqa: F401 (fixture)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.attr import RuleExtraction
from captum_rnn.data import planted_cues
from captum_rnn.rules._anchors import _Arms

pytestmark = pytest.mark.usefixtures("one_thread")


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 6),
    st.lists(st.lists(st.integers(0, 5), max_size=3), min_size=1, max_size=5),
    st.lists(st.integers(0, 5), max_size=4),
    st.integers(0, 10**6),
)
def test_reused_rows_are_exactly_the_draws_of_the_larger_anchor(n_features, drawn, wanted, seed):
    rng = np.random.default_rng(seed)
    record: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]] = []

    def sampler(anchors, n):
        out = []
        for anchor in anchors:
            kept = rng.random((n, n_features)) < 0.5
            kept[:, list(anchor)] = True
            ok = rng.random(n) < 0.7
            record.append((anchor, ok, kept))
            out.append((ok, kept))
        return out

    arms = _Arms(sampler)
    target = tuple(sorted({f % n_features for f in wanted}))
    for i, anchor in enumerate(drawn):
        anchor = tuple(sorted({f % n_features for f in anchor}))
        if i == len(drawn) // 2:
            arms.register([target])  # registered midway: earlier and later rows both count
        arms.sample([anchor], 7)
    arms.register([target])
    rows = hits = 0
    for anchor, ok, kept in record:
        if set(anchor) <= set(target):
            fits = kept[:, list(target)].all(axis=1)
            rows, hits = rows + int(fits.sum()), hits + int(ok[fits].sum())
    assert (arms.n[target], arms.hits[target]) == (rows, hits)
    assert arms.used == 7 * len(drawn)


def test_precise_anchors_have_their_lower_bound_at_the_target_and_hold_on_fresh_draws():
    model, held = cue_net()
    train = pad_sequence(planted_cues(300, length=(6, 16), vocab_size=30, seed=0).sequences, True)
    ids = pad_sequence(held.sequences[:10], batch_first=True)
    anchors = RuleExtraction(model).explain(
        ids,
        precision=0.9,
        perturbation="unigram",
        train_data=train,
        seed=0,
        held_out_samples=1000,
    )
    precise = [a for a in anchors if a.reached]
    assert len(precise) >= 8
    for a in precise:
        assert a.tokens and a.precision_lower >= 0.9 and a.precision >= a.precision_lower
    # the claim holds on 1000 perturbations drawn with another seed
    assert sum(a.held_out_precision >= 0.9 for a in precise) >= len(precise) - 1


def test_an_anchor_that_is_not_precise_says_so_with_its_precision():
    # class 1 iff token 5 is there and a fair coin per distinct input says so: no anchor
    # is more than about 0.5 precise for class 1
    weights = torch.arange(1, 40) ** 2

    def half_random(ids: torch.Tensor) -> torch.Tensor:
        coin = ((ids * weights[: ids.shape[1]]).sum(1) * 2654435761 % 1000) < 500
        one = (ids == 5).any(1) & coin
        return torch.stack([(~one).float(), one.float()], 1)

    x = torch.tensor([[3, 4, 5, 6, 9, 10]])
    found = RuleExtraction(half_random).explain(
        x, target=1, pad_index=0, precision=0.95, max_samples=3000, max_anchor_size=2
    )[0]
    assert found.tokens and not found.reached
    assert found.precision_lower < 0.95 and found.precision < 0.8
    assert found.num_samples > 0 and "precision target not reached" in str(found)
    assert found.to_dict()["reached"] is False
