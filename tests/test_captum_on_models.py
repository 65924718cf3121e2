"""Captum's own classes, called the Captum way, on every model of the package."""

import pytest
import torch
from captum.attr import (
    DeepLift,
    FeatureAblation,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    LayerIntegratedGradients,
    Lime,
    Occlusion,
    Saliency,
)

from captum_rnn.attr import WeightedRidge

from conftest import continuous_model, padded_batch


def _embedded(model, ids):
    return model.embedding(ids).detach()


def test_layer_integrated_gradients_on_embedding(any_token_model):
    model = any_token_model
    ids, lengths = padded_batch()
    lig = LayerIntegratedGradients(model, model.embedding)
    attr, delta = lig.attribute(
        ids, target=1, additional_forward_args=(lengths,), return_convergence_delta=True
    )
    assert attr.shape == (*ids.shape, 8)
    assert (attr[ids == 0] == 0).all()
    assert delta.abs().max() < 1e-2


def test_layer_integrated_gradients_without_lengths_also_runs(any_token_model):
    # The all-padding default baseline counts as full length, so this plain call works.
    ids, _ = padded_batch()
    attr = LayerIntegratedGradients(any_token_model, any_token_model.embedding).attribute(
        ids, target=0
    )
    assert (attr[ids == 0] == 0).all()


@pytest.mark.parametrize("cls", [IntegratedGradients, Saliency, InputXGradient, DeepLift])
def test_gradient_methods_on_embedded_input(any_token_model, cls):
    model = any_token_model
    ids, lengths = padded_batch()
    emb = _embedded(model, ids)
    attr = cls(model).attribute(emb, target=0, additional_forward_args=(lengths,))
    assert attr.shape == emb.shape
    assert (attr[ids == 0] == 0).all()
    assert attr[ids != 0].abs().sum() > 0


def test_gradient_shap_on_embedded_input(any_token_model):
    model = any_token_model
    ids, lengths = padded_batch()
    emb = _embedded(model, ids)
    attr = GradientShap(model).attribute(
        emb,
        baselines=torch.zeros(2, *emb.shape[1:]),
        target=1,
        additional_forward_args=(lengths,),
        n_samples=4,
    )
    assert (attr[ids == 0] == 0).all()


def _token_feature_mask(ids, dim):
    return torch.arange(ids.shape[1])[None, :, None].expand(ids.shape[0], ids.shape[1], dim)


@pytest.mark.parametrize("cls", [FeatureAblation, Occlusion])
def test_ablation_methods_one_feature_per_token(any_token_model, cls):
    model = any_token_model
    ids, lengths = padded_batch()
    emb = _embedded(model, ids)
    if cls is Occlusion:
        attr = cls(model).attribute(
            emb, sliding_window_shapes=(1, 8), target=0, additional_forward_args=(lengths,)
        )
    else:
        attr = cls(model).attribute(
            emb,
            target=0,
            additional_forward_args=(lengths,),
            feature_mask=_token_feature_mask(ids, 8),
        )
    assert (attr[ids == 0] == 0).all()
    assert attr[ids != 0].abs().sum() > 0


@pytest.mark.parametrize("cls", [Lime, KernelShap])
def test_surrogate_methods_one_feature_per_token(any_token_model, cls):
    model = any_token_model
    ids, lengths = padded_batch(batch=1)
    emb = _embedded(model, ids)
    method = cls(model)
    method.interpretable_model = WeightedRidge()  # no scikit-learn needed
    attr = method.attribute(
        emb,
        target=0,
        additional_forward_args=(lengths,),
        feature_mask=_token_feature_mask(ids, 8),
        n_samples=60,
    )
    assert attr.shape == emb.shape and torch.isfinite(attr).all()
    assert attr.abs().sum() > 0


def test_methods_on_continuous_regressor():
    model = continuous_model(cell="gru", attention="additive")
    x = torch.randn(3, 7, 3)
    lengths = torch.tensor([7, 5, 2])
    pad = torch.arange(7)[None, :] >= lengths[:, None]
    for cls in (IntegratedGradients, Saliency, InputXGradient, DeepLift):
        attr = cls(model).attribute(x, target=0, additional_forward_args=(lengths,))
        assert (attr[pad] == 0).all(), cls.__name__
    attr = FeatureAblation(model).attribute(x, target=0, additional_forward_args=(lengths,))
    assert (attr[pad] == 0).all()


def test_weighted_ridge_recovers_linear_function():
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    w = torch.rand(200)
    ridge = WeightedRidge(alpha=0.0)
    ridge.fit(DataLoader(TensorDataset(x, y[:, None], w), batch_size=50))
    torch.testing.assert_close(
        ridge.representation().squeeze(), torch.tensor([1.0, -2.0, 0.5]), atol=1e-4, rtol=0
    )
