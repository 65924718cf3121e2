"""Models trained in float64 (``model.double()``, common in scientific code) work in every
entry point, in their own precision; and benchmark takes ``lengths=`` like explain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import captum_rnn
from captum_rnn.metrics import comprehensiveness


class SeriesGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.GRU(3, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        return self.fc(self.rnn(packed)[1][-1])


def series(n: int = 4, time: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    lengths = torch.tensor([6, 4, 5, 3][:n])
    x = torch.randn(n, time, 3, generator=g, dtype=torch.float64)
    x[torch.arange(time)[None, :] >= lengths[:, None]] = 0
    return x, lengths


@pytest.mark.parametrize(
    "method",
    ["occlusion", "feature_ablation", "lime", "kernel_shap", "shapley_value_sampling"],
)
def test_perturbation_methods_explain_a_float64_model(method):
    model = SeriesGRU().double().eval()
    x, lengths = series()
    explanations = captum_rnn.explain(model, x, method=method, lengths=lengths)
    in_float32 = captum_rnn.explain(SeriesGRU().eval(), x.float(), method=method, lengths=lengths)
    for e, f in zip(explanations, in_float32, strict=True):
        assert torch.allclose(
            torch.tensor(e.feature_scores), torch.tensor(f.feature_scores), atol=1e-4
        )
    assert next(model.parameters()).dtype == torch.float64


@pytest.mark.parametrize("method", ["native_guide", "comte"])
def test_series_counterfactuals_call_a_float64_model_in_float64(method):
    model = SeriesGRU().double().eval()
    x, lengths = series()
    g = torch.Generator().manual_seed(5)
    train = [(torch.randn(5, 3, generator=g, dtype=torch.float64), i % 2) for i in range(16)]
    found = captum_rnn.counterfactuals(
        model, x, train_dataset=train, lengths=lengths, method=method
    )
    assert len(found) == 4
    for c in found:  # each verified by the model itself
        with torch.no_grad():
            out = model(c.counterfactual[None].double(), torch.tensor([len(c.counterfactual)]))
        assert c.prediction == int(out.argmax())


def test_benchmark_takes_lengths_like_explain():
    model = SeriesGRU().eval()
    x, lengths = series()
    x = x.float()
    keyword = captum_rnn.benchmark(
        model, x, methods=["saliency"], metrics=["comprehensiveness"], lengths=lengths,
        progress=False,
    )  # fmt: skip
    in_data = captum_rnn.benchmark(
        model, (x, lengths), methods=["saliency"], metrics=["comprehensiveness"], progress=False
    )
    assert keyword[0]["comprehensiveness"] == in_data[0]["comprehensiveness"]
    explanations = captum_rnn.explain(model, x, method="saliency", lengths=lengths)
    direct = comprehensiveness(model, x, explanations, lengths=lengths)
    assert keyword[0]["comprehensiveness"] == pytest.approx(float(direct.mean()))
    with pytest.raises(ValueError, match=r"data=\(inputs, lengths\)"):
        captum_rnn.benchmark(model, [x[0], x[1]], methods=["saliency"], lengths=lengths)
