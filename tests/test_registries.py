"""One metric registry: the names it lists are what benchmark and the callbacks accept."""

import pytest
import torch

from captum_rnn.callbacks import _metrics as callback_metrics
from captum_rnn.metrics import METRICS, _benchmark, available_metrics, get_metric
from captum_rnn.metrics._registry import _DECLARED


def test_every_metric_is_declared_once_with_what_it_means():
    names = available_metrics()
    assert names == [m.name for m in _DECLARED] == list(METRICS)
    assert len(set(names)) == len(names)
    for name in names:
        metric = get_metric(name)
        assert metric.direction in ("higher", "lower")
        low, high = metric.range
        assert low < high
        assert metric.cost, name
        assert callable(metric.compute), name


def test_benchmark_accepts_exactly_the_registry_names():
    accepted = _benchmark._resolve_metrics(
        available_metrics(), has_rationale=True, has_lexicon=True, has_train=True
    )
    assert sorted(accepted) == sorted(available_metrics())
    with pytest.raises(ValueError, match=r"no_such_metric") as error:
        _benchmark._resolve_metrics(["no_such_metric"], True, True, True)
    for name in available_metrics():
        assert name in str(error.value)


def test_callbacks_accept_exactly_the_registry_names():
    assert callback_metrics.available_metrics() == available_metrics()
    for name in available_metrics():
        try:
            [(resolved, fn)] = callback_metrics.resolve_metrics(name)
        except ValueError as error:  # a metric needing data a callback cannot give
            assert "not available" not in str(error)
            assert "callback cannot give" in str(error)
            assert set(get_metric(name).needs) - {"explainer"}
        else:
            assert resolved == name and callable(fn)
    # public helpers of captum_rnn.metrics that are not metrics are not accepted
    for name in ("comprehensiveness_sufficiency", "kendall_tau", "flip_labels", "no_such"):
        with pytest.raises(ValueError, match="available") as error:
            callback_metrics.resolve_metrics(name)
        for known in available_metrics():
            assert known in str(error.value)


def test_unknown_names_are_a_value_error_listing_the_known_ones():
    with pytest.raises(ValueError) as error:
        get_metric("accuracy")
    assert "accuracy" in str(error.value)
    for name in available_metrics():
        assert name in str(error.value)


def test_callback_metric_functions_run_on_a_probe_batch():
    from captum_rnn.models import RNNClassifier

    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=12, hidden_size=6, embedding_dim=4).eval()
    ids = torch.tensor([[4, 5, 6, 7], [8, 9, 3, 0]])
    lengths = torch.tensor([4, 3])
    attributions = torch.rand(2, 4) * (ids != 0)
    target = torch.tensor([0, 1])
    for name in ("faithfulness", "comprehensiveness", "sufficiency", "deletion_auc"):
        [(_, fn)] = callback_metrics.resolve_metrics(name)
        values = callback_metrics.call_metric(
            fn, model=model, inputs=ids, attributions=attributions, target=target, lengths=lengths
        )
        assert set(values) == {""}


def test_a_method_options_are_read_off_its_signature():
    import inspect

    from captum_rnn.attr._methods import AttributionMethod, MethodResult, check_options

    for name, cls in AttributionMethod._registry.items():
        params = list(inspect.signature(cls.attribute).parameters.values())[5:]
        if cls.options is not None and not any(p.kind is p.VAR_KEYWORD for p in params):
            assert cls.options == tuple(p.name for p in params), name

    class Scaled(AttributionMethod):  # not registered: no name
        def attribute(self, inputs, baselines, target, lengths, scale: float = 1.0):
            return MethodResult(scale * inputs.sum(-1))

    assert Scaled.options == ("scale",)
    check_options(Scaled, {"scale": 2.0})
    with pytest.raises(TypeError, match="n_steps.*scale"):
        check_options(Scaled, {"n_steps": 5})
