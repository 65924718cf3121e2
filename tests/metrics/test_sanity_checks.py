"""Randomisation sanity checks on tiny models: mechanics, and that nothing is modified."""

import json
import math

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from captum_rnn.metrics import (
    data_randomization_test,
    explanation_similarity,
    model_randomization_test,
    randomize_parameters,
)

from conftest import padded_batch, token_model


def _state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    )


def _same(a, b):
    assert a[0].keys() == b[0].keys()
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert a[1:] == b[1:]


def test_explanation_similarity_cases():
    mask = torch.tensor([[True, True, True, False], [True, True, True, True], [True] + [False] * 3])
    a = torch.tensor([[1.0, 2.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0], [5.0, 0, 0, 0]])
    same = explanation_similarity(a, a.clone(), mask)
    assert same[:2].tolist() == [1.0, 1.0] and math.isnan(same[2])  # one token: undefined
    b = torch.tensor([[3.0, 2.0, 1.0, 9.0], [1.0, 2.0, 3.0, 4.0], [1.0, 0, 0, 0]])
    signed = explanation_similarity(a, b, mask, measure="spearman")
    assert signed[0].item() == pytest.approx(-1.0)  # reversed order; padding ignored
    assert signed[1].item() == 0.0  # constant against varying
    # Absolute values: a sign flip is not a change.
    assert explanation_similarity(a, -a, mask)[0].item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="measure must be"):
        explanation_similarity(a, b, mask, measure="cosine")


def test_randomize_parameters_redraws_everything_but_the_padding_row():
    model = token_model("gru-dot")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    randomize_parameters(model)
    for name, value in model.state_dict().items():
        assert not torch.equal(before[name], value), name
    assert torch.equal(model.embedding.weight[0], torch.zeros_like(model.embedding.weight[0]))


def test_cascading_stages_and_nothing_is_modified():
    model = token_model("lstm-bi-additive")
    ids, _ = padded_batch(batch=3)
    before = _state(model)
    result = model_randomization_test(model, ids, "saliency")
    _same(before, _state(model))
    assert [name for name, _ in result.stages] == ["head", "attention", "rnn", "embedding"]
    assert result.similarity == result.stages[-1][1]
    assert len(result.per_sequence) == 3
    json.dumps(result.to_dict())
    assert isinstance(result.plot(), Figure)
    all_at_once = model_randomization_test(model, ids, "saliency", cascade=False)
    assert all_at_once.stages == []
    # Deterministic for a seed.
    again = model_randomization_test(model, ids, "saliency")
    assert again.per_sequence == result.per_sequence


def test_a_fixed_attribution_is_flagged():
    model = token_model("gru-bi-mean")
    ids, _ = padded_batch(batch=3)
    fixed = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0))

    def ignores_the_model(model, x, lengths, target):
        return fixed[:, : x.shape[1]]

    result = model_randomization_test(model, ids, ignores_the_model)
    assert result.similarity == pytest.approx(1.0) and not result.passed
    assert "does not depend" in result.reason and "ignores_the_model" in result.reason


def test_bad_arguments():
    model = token_model("lstm-last")
    ids, _ = padded_batch(batch=2)
    with pytest.raises(ValueError, match="measure must be"):
        model_randomization_test(model, ids, "saliency", measure="pearson")
    with pytest.raises(TypeError, match="method must be"):
        model_randomization_test(model, ids, 3)
    plain = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="LightningModule"):
        data_randomization_test(plain, ([torch.randn(4, 3)], [0]), torch.randn(1, 4, 3))
