"""Property-based: recurrent models written many ways, one contract.

Hypothesis writes tutorial-style token classifiers: RNN / LSTM / GRU, one or two layers,
one or two directions, batch-first or time-major, a padding id of 0, 1 or 7 (declared by
the embedding or not), a forward that packs with lengths, averages under a mask, or reads
the padded batch as it is; one logit (with a ``BCEWithLogitsLoss``) or several class scores.
Whatever it writes, ``explain``:

* needs exactly the hints that the model cannot say itself (a ``ValueError`` naming one of
  them otherwise), and with them
* reports the model's own output for every sequence (the contract calls the model as the
  user does: layout, lengths, mask),
* gives one finite score per real token,
* explains a batch as it explains each sequence alone,
* explains a sequence the same however far it is padded (when the model packs with its
  lengths, or masks a one-way RNN: a model that reads its padding is another function of
  a longer input),
* and leaves the model as it was.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import captum_rnn

VOCAB, EMB, HID = 12, 4, 5
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class Spec:
    cell: str
    layers: int
    bidirectional: bool
    batch_first: bool
    pad: int
    declare_pad: bool
    reads: str  # "lengths", "mask" or "padded"
    width: int  # 1: one logit trained with BCEWithLogitsLoss
    left: bool  # padding before the tokens (Keras' default), for models that read it


class _Base(nn.Module):
    def __init__(self, spec: Spec, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.spec = spec
        self.embedding = nn.Embedding(
            VOCAB, EMB, padding_idx=spec.pad if spec.declare_pad else None
        )
        self.rnn = CELLS[spec.cell](
            EMB,
            HID,
            num_layers=spec.layers,
            bidirectional=spec.bidirectional,
            batch_first=spec.batch_first,
        )
        self.fc = nn.Linear(HID * (2 if spec.bidirectional else 1), spec.width)
        if spec.width == 1:
            self.criterion = nn.BCEWithLogitsLoss()

    def _last(self, hidden):
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        if self.spec.bidirectional:
            return torch.cat((hidden[-2], hidden[-1]), dim=1)
        return hidden[-1]


class _PacksLengths(_Base):
    def forward(self, text, text_lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(text),
            text_lengths.cpu(),
            batch_first=self.spec.batch_first,
            enforce_sorted=False,
        )
        _, hidden = self.rnn(packed)
        return self.fc(self._last(hidden))


class _MaskedMean(_Base):
    def forward(self, input_ids, attention_mask):  # batch-first ids, mask 1 = real
        outputs, _ = self.rnn(self.embedding(input_ids))
        weights = attention_mask.unsqueeze(-1).to(outputs.dtype)
        return self.fc((outputs * weights).sum(1) / weights.sum(1).clamp(min=1))


class _ReadsPadding(_Base):
    def forward(self, text):
        _, hidden = self.rnn(self.embedding(text))
        return self.fc(self._last(hidden))


@st.composite
def specs(draw) -> Spec:
    reads = draw(st.sampled_from(["lengths", "mask", "padded"]))
    return Spec(
        cell=draw(st.sampled_from(sorted(CELLS))),
        layers=draw(st.integers(1, 2)),
        bidirectional=draw(st.booleans()),
        batch_first=True if reads == "mask" else draw(st.booleans()),
        pad=draw(st.sampled_from([0, 1, 7])),
        declare_pad=draw(st.booleans()),
        reads=reads,
        width=draw(st.sampled_from([1, 2, 3])),
        left=reads == "padded" and draw(st.booleans()),
    )


def build(spec: Spec, seed: int = 0) -> nn.Module:
    cls = {"lengths": _PacksLengths, "mask": _MaskedMean, "padded": _ReadsPadding}[spec.reads]
    return cls(spec, seed).eval()


def needed_hints(spec: Spec) -> dict:
    """What the model cannot say itself: the pad id when its embedding does not declare it.
    (Layout comes from the RNN, the reading from the forward's signature, the output kind
    from the loss or the output's width.)"""
    return {} if spec.declare_pad else {"pad_id": spec.pad}


def batch(spec: Spec, lengths: list[int], extra_pad: int = 0) -> torch.Tensor:
    """Ids in the model's layout, padded to the longest length + extra_pad."""
    g = torch.Generator().manual_seed(sum(lengths) + 31 * len(lengths))
    real = [t for t in range(VOCAB) if t != spec.pad]
    total = max(lengths) + extra_pad
    ids = torch.full((len(lengths), total), spec.pad, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens = torch.tensor(real)[torch.randint(len(real), (n,), generator=g)]
        if spec.left:
            ids[i, total - n :] = tokens
        else:
            ids[i, :n] = tokens
    return ids if spec.batch_first else ids.T.contiguous()


def call_as_user(model: nn.Module, spec: Spec, padded: torch.Tensor, n: int) -> torch.Tensor:
    """The model's own output for one padded sequence, called the way its author calls it."""
    ids = padded[None] if spec.batch_first else padded[:, None]
    with torch.no_grad():
        if spec.reads == "padded":
            return model(ids)[0]
        if spec.reads == "lengths":
            return model(ids, torch.tensor([n]))[0]
        mask = (torch.arange(len(padded)) < n).long()[None]  # right padding only
        return model(ids, mask)[0]


def state(model: nn.Module) -> tuple:
    return (
        [p.detach().clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        ],
    )


def same_state(a: tuple, b: tuple) -> bool:
    params_a, *rest_a = a
    params_b, *rest_b = b
    return rest_a == rest_b and all(
        torch.equal(x, y) for x, y in zip(params_a, params_b, strict=True)
    )


METHODS = [
    "integrated_gradients",
    "saliency",
    "input_x_gradient",
    "deeplift",
    "occlusion",
    "feature_ablation",
]


def explain(model, ids, method, **hints):
    options = {"n_steps": 8, "max_steps": 8} if method == "integrated_gradients" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "read as class logits": known here
        return captum_rnn.explain(model, ids, method=method, **options, **hints)


def scores_close(a, b) -> bool:
    return all(
        x.target == y.target
        and len(x.scores) == len(y.scores)
        and all(
            math.isclose(u, v, rel_tol=1e-4, abs_tol=1e-5)
            for u, v in zip(x.scores, y.scores, strict=True)
        )
        for x, y in zip(a, b, strict=True)
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    spec=specs(),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    method=st.sampled_from(METHODS),
)
def test_any_tutorial_model_is_explained_right_or_asks_for_a_named_hint(spec, lengths, method):
    model = build(spec)
    ids = batch(spec, lengths)
    before = state(model)
    hints = needed_hints(spec)

    if hints:  # without the hint: a clear error naming it, never a guess
        with pytest.raises(ValueError, match="pad_id"):
            explain(model, ids, method)
        assert same_state(before, state(model))

    explanations = explain(model, ids, method, **hints)
    assert same_state(before, state(model))
    assert len(explanations) == len(lengths)
    padded_rows = ids if spec.batch_first else ids.T
    for e, padded, n in zip(explanations, padded_rows, lengths, strict=True):
        # one finite score per real token, padding never scored
        assert len(e.scores) == n and all(math.isfinite(s) for s in e.scores)
        # the contract called the model as its author does
        own = call_as_user(model, spec, padded, n)
        column = 0 if spec.width == 1 else e.target
        assert e.output == pytest.approx(float(own[column]), abs=1e-5)

    # a batch explains as each sequence alone (same padding)
    for i in range(len(lengths)):
        single = ids[i : i + 1] if spec.batch_first else ids[:, i : i + 1]
        assert scores_close(explain(model, single, method, **hints), explanations[i : i + 1])

    # padding further changes nothing when the model reads lengths, or a mask over a
    # one-way RNN (a backward direction run over the padded batch reads the padding)
    if spec.reads == "lengths" or (spec.reads == "mask" and not spec.bidirectional):
        longer = batch(spec, lengths, extra_pad=3)
        assert scores_close(explain(model, longer, method, **hints), explanations)
    assert same_state(before, state(model))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    spec=specs(),
    lengths=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    metric=st.sampled_from(["comprehensiveness", "sufficiency"]),
)
def test_faithfulness_metrics_read_any_tutorial_model_through_the_same_contract(
    spec, lengths, metric
):
    from captum_rnn import metrics

    model = build(spec)
    ids = batch(spec, lengths)
    hints = needed_hints(spec)
    explanations = explain(model, ids, "saliency", **hints)
    before = state(model)
    score = getattr(metrics, metric)

    def measure(x, e):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return score(model, x, e, **hints)

    values = measure(ids, explanations)
    assert same_state(before, state(model))
    assert values.shape == (len(lengths),) and bool(torch.isfinite(values).all())
    for i in range(len(lengths)):
        single = ids[i : i + 1] if spec.batch_first else ids[:, i : i + 1]
        assert float(measure(single, explanations[i : i + 1])[0]) == pytest.approx(
            float(values[i]), abs=1e-5
        )
    if spec.reads == "lengths" or (spec.reads == "mask" and not spec.bidirectional):
        longer = batch(spec, lengths, extra_pad=3)
        assert torch.allclose(measure(longer, explanations), values, atol=1e-5)
