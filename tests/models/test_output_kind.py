"""What a model's outputs are, read off the loss it trains with (models/_output_kind.py).

A multi-output regressor and a multi-label classifier both return unnormalised rows of
width >= 2, as a classifier's logits do; only the loss tells them apart. These models are
written as Lightning tutorials write them: the loss held as an attribute, or called in
``training_step`` (directly or through a shared-step helper).
"""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

import captum_rnn
from captum_rnn.models import adapt
from captum_rnn.models._output_kind import loss_evidence


class _Net(pl.LightningModule):
    """GRU over continuous steps; ``head`` outputs per sequence; ``final`` applied last."""

    def __init__(self, width: int = 3, final=None, loss: nn.Module | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.GRU(2, 6, batch_first=True)
        self.head = nn.Linear(6, width)
        self.final = final
        if loss is not None:
            self.loss_fn = loss

    def forward(self, x):
        out = self.head(self.rnn(x)[1][-1])
        return out if self.final is None else self.final(out)


class _MSEInStep(_Net):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self(x), y)


class _SharedStep(_Net):
    def _shared_step(self, batch):
        x, y = batch
        return nn.functional.l1_loss(self(x), y)

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch)


class _CrossEntropyInStep(_Net):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)


class _BinaryCrossEntropyInStep(_Net):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.binary_cross_entropy(self(x), y)  # not cross_entropy: a sigmoid per output


def _x(batch: int = 4, steps: int = 5) -> torch.Tensor:
    return torch.randn(batch, steps, 2, generator=torch.Generator().manual_seed(1))


def _observe(seq) -> None:
    with torch.no_grad():
        seq.observe(seq(_x()))


def _inferred(model: nn.Module, **hints) -> tuple[str, str]:
    seq = adapt(model, **hints)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # evidence decides: no warning
        _observe(seq)
    return seq.output, seq.provenance["output"]


@pytest.mark.parametrize(
    "model, kind, where",
    [
        (_Net(loss=nn.MSELoss()), "regression", "loss_fn = nn.MSELoss()"),
        (_Net(loss=nn.HuberLoss()), "regression", "nn.HuberLoss()"),
        (_MSEInStep(), "regression", "training_step calls mse_loss"),
        (_SharedStep(), "regression", "_shared_step calls l1_loss"),
        (_CrossEntropyInStep(), "logits", "training_step calls cross_entropy"),
        (_Net(loss=nn.CrossEntropyLoss()), "logits", "nn.CrossEntropyLoss()"),
        (_Net(final=nn.LogSoftmax(-1), loss=nn.NLLLoss()), "log_probs", "NLLLoss"),
        # log_softmax then cross-entropy trains the same model; the outputs are log-probs
        (_Net(final=nn.LogSoftmax(-1), loss=nn.CrossEntropyLoss()), "log_probs", "Cross"),
        (_Net(width=1, loss=nn.BCEWithLogitsLoss()), "logits", "BCEWithLogitsLoss"),
        (_Net(width=1, final=nn.Sigmoid(), loss=nn.BCELoss()), "probs", "BCELoss"),
    ],
)
def test_the_loss_says_what_the_outputs_are(model, kind, where):
    output, provenance = _inferred(model)
    assert output == kind
    assert where in provenance


def test_a_multi_output_regressor_is_explained_as_regression_not_as_softmax():
    model = _MSEInStep().eval()
    x = _x()[:2]
    # read as logits, the largest output was explained as "the predicted class"
    with pytest.raises(ValueError, match="target is required"):
        captum_rnn.explain(model, x)
    (e, _) = captum_rnn.explain(model, x, target=1, n_steps=16)
    assert e.probability is None and e.predicted is None
    # comprehensiveness drops the raw output, not a softmax probability
    from captum_rnn.metrics import comprehensiveness

    scores = torch.rand(2, 5, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([1, 1])
    as_regression = comprehensiveness(model, x, scores, target=target, output="regression")
    as_logits = comprehensiveness(model, x, scores, target=target, output="logits")
    inferred = comprehensiveness(model, x, scores, target=target)
    assert torch.allclose(inferred, as_regression)
    assert not torch.allclose(inferred, as_logits)


@pytest.mark.parametrize(
    "model",
    [
        _Net(width=3, loss=nn.BCEWithLogitsLoss()),
        _Net(width=3, loss=nn.MultiLabelSoftMarginLoss()),
        _BinaryCrossEntropyInStep(width=3, final=nn.Sigmoid()),
    ],
)
def test_independent_labels_are_refused_naming_output(model):
    with pytest.raises(ValueError, match="independent labels.*output='regression'"):
        _observe(adapt(model))
    # the keyword it names works: each label's own value is explained
    (e,) = captum_rnn.explain(model.eval(), _x()[:1], output="regression", target=2, n_steps=16)
    assert len(e.scores) == 5


def test_a_softmax_trained_with_cross_entropy_is_refused_naming_both_readings():
    model = _Net(final=nn.Softmax(-1), loss=nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="probabilities.*CrossEntropyLoss.*output='probs'"):
        _observe(adapt(model))
    seq = adapt(model, output="probs")
    _observe(seq)
    assert seq.output == "probs"


def test_nll_loss_on_outputs_that_are_not_log_probabilities_is_refused():
    with pytest.raises(ValueError, match="not log-probabilities.*output='logits'"):
        _observe(adapt(_Net(loss=nn.NLLLoss())))


def test_losses_that_disagree_are_refused():
    class TwoLosses(_Net):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self(x), y)

    with pytest.raises(ValueError, match="disagree.*mse_loss|disagree.*MSELoss"):
        _observe(adapt(TwoLosses(loss=nn.MSELoss())))


def test_cross_entropy_on_one_output_is_refused():
    with pytest.raises(ValueError, match="one value per sequence.*output='logits'"):
        _observe(adapt(_Net(width=1, loss=nn.CrossEntropyLoss())))


def test_a_hint_wins_over_the_loss():
    seq = adapt(_Net(loss=nn.MSELoss()), output="logits")
    _observe(seq)
    assert seq.output == "logits" and seq.provenance["output"] == "given"


def test_unnormalised_outputs_without_a_loss_are_logits_with_a_warning_naming_output():
    with pytest.warns(UserWarning, match="read as class logits.*output='logits'.*'regression'"):
        seq = adapt(_Net())
        _observe(seq)
    assert seq.output == "logits"
    assert "no loss found" in seq.provenance["output"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        confirmed = adapt(_Net(), output="logits")
        _observe(confirmed)
        softmaxed = adapt(_Net(final=nn.Softmax(-1)))
        _observe(softmaxed)  # rows summing to 1 say it themselves
    assert softmaxed.output == "probs"


def test_binary_cross_entropy_is_not_read_as_cross_entropy():
    kinds = [e.kind for e in loss_evidence(_BinaryCrossEntropyInStep())]
    assert kinds == ["binary_probs"]


def test_a_class_whose_source_cannot_be_read_is_judged_by_its_values():
    namespace: dict = {}
    exec(  # a class defined where inspect finds no source (a notebook cell, exec)
        "def training_step(self, batch, batch_idx):\n    return F.mse_loss(self(batch[0]), batch[1])\n",
        {"F": F},
        namespace,
    )
    NotebookNet = type("NotebookNet", (_Net,), {"training_step": namespace["training_step"]})
    assert loss_evidence(NotebookNet()) == []
    with pytest.warns(UserWarning, match="read as class logits"):
        _observe(adapt(NotebookNet()))


def test_predict_and_test_steps_say_nothing_about_training():
    class Scored(_Net):
        def predict_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[1])

    assert loss_evidence(Scored()) == []


def test_a_loss_computed_in_forward_counts_hugging_face_style():
    class WithLabels(_Net):
        def forward(self, x, labels=None):
            logits = super().forward(x)
            if labels is not None:
                return F.cross_entropy(logits, labels), logits
            return logits

    output, provenance = _inferred(WithLabels())
    assert output == "logits" and "forward calls cross_entropy" in provenance
