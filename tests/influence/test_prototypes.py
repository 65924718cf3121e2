"""MMD-critic prototypes and criticisms, directly and through NearestExamples."""

from __future__ import annotations

import itertools

import pytest
import torch
from test_nearest import CENTRES, Blobs, blob_data

from captum_rnn.attr import NearestExamples
from captum_rnn.data import SequenceDataset
from captum_rnn.influence import (
    median_gamma,
    mmd_criticisms,
    mmd_prototypes,
    nearest_prototype_predict,
    rbf_kernel,
    witness,
)


def mmd_objective(x, subset, gamma):
    k = rbf_kernel(x, x, gamma)
    s = list(subset)
    return float(2.0 * k[:, s].mean() - k[s][:, s].mean())


def test_rbf_kernel_and_median_gamma():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    k = rbf_kernel(x, x, 0.1)
    torch.testing.assert_close(
        k,
        torch.tensor([[1.0, torch.exp(torch.tensor(-2.5))], [torch.exp(torch.tensor(-2.5)), 1.0]]),
    )
    assert median_gamma(x) == pytest.approx(1 / 25)


def test_greedy_prototypes_match_exhaustive_search_for_small_sets():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(6, 2, generator=g), torch.randn(5, 2, generator=g) + 5])
    gamma = 0.5
    first = int(mmd_prototypes(x, 1, gamma)[0])
    best = max(range(len(x)), key=lambda i: mmd_objective(x, [i], gamma))
    assert first == best
    # with two well separated clusters the greedy pair is the best pair
    pair = sorted(mmd_prototypes(x, 2, gamma).tolist())
    best_pair = max(
        itertools.combinations(range(len(x)), 2), key=lambda s: mmd_objective(x, s, gamma)
    )
    assert pair == sorted(best_pair)


def test_prototypes_cover_the_clusters():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.3 * torch.randn(30, 2, generator=g) for c in centres])
    chosen = mmd_prototypes(x, 3, gamma=0.2)
    assert sorted((chosen // 30).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="k must be in"):
        mmd_prototypes(x, 0, 1.0)


def test_criticisms_find_under_represented_regions_and_are_diverse():
    # MMD-critic criticises regions the prototypes miss: a main cluster with one
    # prototype, and two small groups (6 and 5 points) no prototype covers
    g = torch.Generator().manual_seed(2)
    x = torch.cat(
        [
            0.3 * torch.randn(40, 2, generator=g),
            torch.tensor([6.0, 6.0]) + 0.05 * torch.randn(6, 2, generator=g),
            torch.tensor([-6.0, 6.0]) + 0.05 * torch.randn(5, 2, generator=g),
        ]
    )
    gamma = 0.3
    protos = mmd_prototypes(x, 1, gamma)
    assert int(protos[0]) < 40
    values = witness(x, x, x[protos], gamma)
    group = lambda idx: [0 if i < 40 else (1 if i < 46 else 2) for i in idx.tolist()]  # noqa: E731
    plain = mmd_criticisms(x, values, 2, gamma, exclude=protos, regularizer="none", sign="positive")
    assert group(plain) == [1, 1]  # the larger group, twice
    diverse = mmd_criticisms(x, values, 2, gamma, exclude=protos, sign="positive")
    assert sorted(group(diverse)) == [1, 2]  # one from each group
    # the paper's |f|: the main cluster is over-represented by the mass of the missed
    # groups, so it is criticised too; the diversity term still reaches both groups
    absolute = mmd_criticisms(x, values, 4, gamma, exclude=protos)
    assert {1, 2} <= set(group(absolute)) and 0 in group(absolute)
    assert not set(absolute.tolist()) & set(protos.tolist())
    with pytest.raises(ValueError, match="regularizer"):
        mmd_criticisms(x, values, 2, gamma, regularizer="entropy")
    with pytest.raises(ValueError, match="k must be in"):
        mmd_criticisms(x, values, 51, gamma, exclude=protos)


def test_nearest_prototype_predict():
    protos = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    out = nearest_prototype_predict(
        torch.tensor([[1.0, 0.0], [4.0, 6.0]]), protos, torch.tensor([3, 8])
    )
    assert out.tolist() == [3, 8]


def test_nearest_examples_prototypes_criticisms_and_accuracy():
    train = blob_data(25, seed=0)
    # six odd examples labelled 2, in a tight group far from every centre
    g = torch.Generator().manual_seed(0)
    odd_points = [
        torch.tensor([[12.0, -12.0]]) + 0.05 * torch.randn(3, 2, generator=g) for _ in range(6)
    ]
    odd = SequenceDataset(
        train.sequences + odd_points, torch.cat([train.targets, torch.full((6,), 2)])
    )
    nearest = NearestExamples(Blobs(CENTRES), odd, metric="euclidean")
    protos = nearest.prototypes(k_per_class=1)
    assert odd.targets[protos].tolist() == [0, 1, 2] and int(protos.max()) < 75
    crit = nearest.criticisms(k=2, sign="positive")
    assert int(crit[0]) >= 75  # the under-represented group is criticised first
    crit = nearest.criticisms(k=4)
    assert int(crit.max()) >= 75
    assert not set(crit.tolist()) & set(protos.tolist())
    nearest = NearestExamples(Blobs(CENTRES), train, metric="euclidean")
    protos = nearest.prototypes(k_per_class=2)
    assert protos.shape == (6,)
    assert train.targets[protos].tolist() == [0, 0, 1, 1, 2, 2]
    evaluation = nearest.prototype_accuracy(blob_data(10, seed=4), k_per_class=2)
    assert evaluation.prototype_accuracy == 1.0 and evaluation.model_accuracy == 1.0
    assert evaluation.agreement == 1.0 and evaluation.num_prototypes == 6
    assert evaluation.majority_baseline == pytest.approx(1 / 3)
    # deterministic for a seed
    assert torch.equal(nearest.prototypes(k_per_class=2), protos)
    with pytest.raises(ValueError, match="k_per_class"):
        nearest.prototypes(k_per_class=0)


def test_prototypes_need_class_labels():
    seqs = [torch.randn(3, 2) for _ in range(6)]
    regression = SequenceDataset(seqs, [0.5] * 6)
    nearest = NearestExamples(Blobs(CENTRES), regression)
    with pytest.raises(ValueError, match="integer class labels"):
        nearest.prototypes(2)
