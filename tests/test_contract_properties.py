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

import itertools
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import pytorch_lightning as pl
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
    features: int  # 0: token ids; else continuous input with this many features
    head: str = "sequence"  # or "tagger" (an output per step), "trimmed" (a tagger whose
    # pad_packed_sequence has no total_length: as many steps as the longest in the call)
    wrapped: bool = False  # inside a LightningModule whose forward passes *args, **kwargs on


class _Base(nn.Module):
    def __init__(self, spec: Spec, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.spec = spec
        if not spec.features:
            self.embedding = nn.Embedding(
                VOCAB, EMB, padding_idx=spec.pad if spec.declare_pad else None
            )
        self.rnn = CELLS[spec.cell](
            spec.features or EMB,
            HID,
            num_layers=spec.layers,
            bidirectional=spec.bidirectional,
            batch_first=spec.batch_first,
        )
        self.fc = nn.Linear(HID * (2 if spec.bidirectional else 1), spec.width)
        if spec.width == 1:
            self.criterion = nn.BCEWithLogitsLoss()

    def _embed(self, x):
        return x if self.spec.features else self.embedding(x)

    def _last(self, hidden):
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        if self.spec.bidirectional:
            return torch.cat((hidden[-2], hidden[-1]), dim=1)
        return hidden[-1]


class _PacksLengths(_Base):
    def forward(self, text, text_lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self._embed(text),
            text_lengths.cpu(),
            batch_first=self.spec.batch_first,
            enforce_sorted=False,
        )
        outputs, hidden = self.rnn(packed)
        if self.spec.head == "sequence":
            return self.fc(self._last(hidden))
        total = None if self.spec.head == "trimmed" else text.shape[self.spec.batch_first]
        outputs, _ = nn.utils.rnn.pad_packed_sequence(
            outputs, batch_first=self.spec.batch_first, total_length=total
        )
        return self.fc(outputs)


class _MaskedMean(_Base):
    def forward(self, input_ids, attention_mask):  # batch-first ids, mask 1 = real
        outputs, _ = self.rnn(self._embed(input_ids))
        if self.spec.head != "sequence":
            return self.fc(outputs)
        weights = attention_mask.unsqueeze(-1).to(outputs.dtype)
        return self.fc((outputs * weights).sum(1) / weights.sum(1).clamp(min=1))


class _ReadsPadding(_Base):
    def forward(self, text):
        outputs, hidden = self.rnn(self._embed(text))
        return self.fc(self._last(hidden) if self.spec.head == "sequence" else outputs)


@st.composite
def specs(draw) -> Spec:
    reads = draw(st.sampled_from(["lengths", "mask", "padded"]))
    features = draw(st.sampled_from([0, 0, 1, 3]))
    return Spec(
        cell=draw(st.sampled_from(sorted(CELLS))),
        layers=draw(st.integers(1, 2)),
        bidirectional=draw(st.booleans()),
        batch_first=True if reads == "mask" else draw(st.booleans()),
        pad=draw(st.sampled_from([0, 1, 7])),
        declare_pad=draw(st.booleans()),
        reads=reads,
        width=draw(st.sampled_from([1, 2, 3])),
        # left padding: models that read their padding, or token models under a mask
        left=(reads == "padded" or (reads == "mask" and not features)) and draw(st.booleans()),
        features=features,
        head=draw(st.sampled_from(["sequence", "tagger", "trimmed"]))
        if reads == "lengths"
        else draw(st.sampled_from(["sequence", "tagger"])),
        wrapped=draw(st.booleans()),
    )


class _Lightning(pl.LightningModule):
    """The Lightning wrapper many tutorials put around the network."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.spec = net.spec

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)


def build(spec: Spec, seed: int = 0) -> nn.Module:
    cls = {"lengths": _PacksLengths, "mask": _MaskedMean, "padded": _ReadsPadding}[spec.reads]
    net = cls(spec, seed)
    return (_Lightning(net) if spec.wrapped else net).eval()


def needed_hints(spec: Spec) -> dict:
    """What the model cannot say itself: the pad id when its embedding does not declare it.
    (Layout comes from the RNN, the reading from the forward's signature, the output kind
    from the loss or the output's width.)"""
    return {} if spec.declare_pad or spec.features else {"pad_id": spec.pad}


def batch(spec: Spec, lengths: list[int], extra_pad: int = 0) -> torch.Tensor:
    """Ids (or features) in the model's layout, padded to the longest length + extra_pad."""
    g = torch.Generator().manual_seed(sum(lengths) + 31 * len(lengths))
    total = max(lengths) + extra_pad
    if spec.features:
        x = torch.zeros(len(lengths), total, spec.features)
        for i, n in enumerate(lengths):
            x[i, :n] = torch.randn(n, spec.features, generator=g)
        return x if spec.batch_first else x.transpose(0, 1).contiguous()
    real = [t for t in range(VOCAB) if t != spec.pad]
    ids = torch.full((len(lengths), total), spec.pad, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens = torch.tensor(real)[torch.randint(len(real), (n,), generator=g)]
        if spec.left:
            ids[i, total - n :] = tokens
        else:
            ids[i, :n] = tokens
    return ids if spec.batch_first else ids.T.contiguous()


def real_steps(spec: Spec, padded: torch.Tensor, n: int) -> torch.Tensor:
    """1 at the real steps of one padded sequence (batch-first), as its author masks it."""
    if spec.features or spec.reads == "lengths":
        return (torch.arange(len(padded)) < n).long()
    return (padded != spec.pad).long()


def call_as_user(model: nn.Module, spec: Spec, padded: torch.Tensor, n: int) -> torch.Tensor:
    """The model's own output for one padded sequence, called the way its author calls it:
    ``(classes,)``, or ``(steps, classes)`` for a tagger."""
    x = padded[None] if spec.batch_first else padded.unsqueeze(1)
    with torch.no_grad():
        if spec.reads == "padded":
            out = model(x)
        elif spec.reads == "lengths":
            out = model(x, torch.tensor([n]))
        else:
            out = model(x, real_steps(spec, padded, n)[None])
    return out[:, 0] if spec.head != "sequence" and not spec.batch_first else out[0]


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


#: Methods and the options that keep them quick here; the sampling ones are seeded, so a
#: sequence must draw the same alone as in a batch.
METHODS = {
    "integrated_gradients": {"n_steps": 8, "max_steps": 8},
    "saliency": {},
    "input_x_gradient": {},
    "deeplift": {},
    "occlusion": {},
    "feature_ablation": {},
    "gradient_shap": {"n_samples": 4},
    "shapley_value_sampling": {"n_samples": 3},
    "lime": {"n_samples": 40},
}


def explain(model, ids, method, lengths=None, **hints):
    options = dict(METHODS[method])
    if lengths is not None and model.spec.features and model.spec.reads != "padded":
        options["lengths"] = lengths  # continuous input: padding is not a token
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "read as class logits": known here
        return captum_rnn.explain(model, ids, method=method, **options, **hints)


def scores_close(a, b) -> bool:
    """Same targets and scores (one row per sequence, or per output step for taggers)."""
    return all(
        x.target == y.target
        and np.shape(x.scores) == np.shape(y.scores)
        and np.allclose(np.asarray(x.scores, float), np.asarray(y.scores, float), 1e-4, 1e-5)
        for x, y in zip(a, b, strict=True)
    )


def pad_invariant(spec: Spec) -> bool:
    """Whether more trailing padding leaves the model's outputs as they are: it packs with
    its lengths, or masks a one-way RNN padded on the right (a backward direction, or
    padding in front, is read by the RNN)."""
    return spec.reads == "lengths" or (
        spec.reads == "mask" and not spec.bidirectional and not spec.left
    )


def examples(n: int):
    """Hypothesis settings of these tests: ``n`` examples, no deadline (tiny models, but
    a loaded machine). The same examples every run, so that CI is deterministic; set
    ``CAPTUM_RNN_EXPLORE=1`` to draw new ones (how the bugs these tests pin were found)."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=not os.environ.get("CAPTUM_RNN_EXPLORE"),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def case(spec: Spec, lengths: list[int]) -> tuple[list[int], nn.Module, torch.Tensor, dict]:
    """``(lengths, model, inputs, hints)`` of one drawn case; continuous input that the
    model reads without lengths gets no padding."""
    if spec.features and spec.reads == "padded":
        lengths = [max(lengths)] * len(lengths)
    return lengths, build(spec), batch(spec, lengths), needed_hints(spec)


def one(spec: Spec, x: torch.Tensor, i: int) -> torch.Tensor:
    """Sequence ``i`` of a batch in the model's layout, as a batch of one."""
    return x[i : i + 1] if spec.batch_first else x[:, i : i + 1]


@examples(150)
@given(
    spec=specs(),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    method=st.sampled_from(sorted(METHODS)),
)
def test_any_tutorial_model_is_explained_right_or_asks_for_a_named_hint(spec, lengths, method):
    lengths, model, ids, hints = case(spec, lengths)
    before = state(model)

    if hints:  # without the hint: a clear error naming it, never a guess
        with pytest.raises(ValueError, match="pad_id"):
            explain(model, ids, method, lengths)
        assert same_state(before, state(model))

    explanations = explain(model, ids, method, lengths, **hints)
    assert same_state(before, state(model))
    assert len(explanations) == len(lengths)
    padded_rows = ids if spec.batch_first else ids.transpose(0, 1)
    for e, padded, n in zip(explanations, padded_rows, lengths, strict=True):
        own = call_as_user(model, spec, padded, n)
        column = (lambda t: 0) if spec.width == 1 else (lambda t: t)
        if spec.head == "sequence":
            # one finite score per real step, padding never scored
            assert len(e.scores) == n and all(math.isfinite(s) for s in e.scores)
            # the contract called the model as its author does
            assert e.output == pytest.approx(float(own[column(e.target)]), abs=1e-5)
        else:  # a tagger: every real step's output explained over the real steps
            assert np.shape(e.scores) == (n, n) and np.isfinite(e.scores).all()
            where = real_steps(spec, padded, n).nonzero().flatten().tolist()
            mine = [float(own[step, column(t)]) for step, t in zip(where, e.target, strict=True)]
            assert e.output == pytest.approx(mine, abs=1e-5)

    # a batch explains as each sequence alone (same padding)
    for i in range(len(lengths)):
        alone = explain(model, one(spec, ids, i), method, lengths[i : i + 1], **hints)
        assert scores_close(alone, explanations[i : i + 1])

    if pad_invariant(spec):  # padding further changes nothing
        longer = batch(spec, lengths, extra_pad=3)
        assert scores_close(explain(model, longer, method, lengths, **hints), explanations)
    assert same_state(before, state(model))


@examples(80)
@given(
    spec=specs(),
    lengths=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    metric=st.sampled_from(
        ["comprehensiveness", "sufficiency", "deletion_auc", "insertion_auc", "loo_kendall"]
    ),
)
def test_faithfulness_metrics_read_any_tutorial_model_through_the_same_contract(
    spec, lengths, metric
):
    from captum_rnn import metrics

    if spec.head != "sequence" and metric not in ("comprehensiveness", "sufficiency"):
        metric = "comprehensiveness"  # taggers: the per-output-step function
    lengths, model, ids, hints = case(spec, lengths)
    explanations = explain(model, ids, "saliency", lengths, **hints)
    before = state(model)
    score = getattr(metrics, metric)

    def measure(x, e, n) -> list[np.ndarray]:
        """The metric per sequence: one value, or one per output step for a tagger."""
        options = dict(hints)
        if spec.features and spec.reads != "padded":
            options["lengths"] = n
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if spec.head == "sequence":
                return [np.array([v]) for v in score(model, x, e, **options).tolist()]
            comp, suff = metrics.comprehensiveness_sufficiency_per_output(model, x, e, **options)
            return [v.numpy() for v in (comp if metric == "comprehensiveness" else suff)]

    if spec.head != "sequence":  # per-step explanations are not one-output explanations
        with pytest.raises(ValueError, match="comprehensiveness_sufficiency_per_output"):
            score(model, ids, explanations, **hints)
    values = measure(ids, explanations, lengths)
    assert same_state(before, state(model))
    # Kendall tau is undefined (NaN) on one-step sequences and on constant scores or drops;
    # every other value is finite
    defined = [v for v in values if metric != "loo_kendall"]
    assert len(values) == len(lengths) and all(np.isfinite(v).all() for v in defined)
    for i in range(len(lengths)):
        (alone,) = measure(one(spec, ids, i), explanations[i : i + 1], lengths[i : i + 1])
        assert np.allclose(alone, values[i], atol=1e-5, equal_nan=True)
    if pad_invariant(spec):
        longer = batch(spec, lengths, extra_pad=3)
        further = measure(longer, explanations, lengths)
        assert all(
            np.allclose(u, v, atol=1e-5, equal_nan=True)
            for u, v in zip(further, values, strict=True)
        )


def user_class(model: nn.Module, spec: Spec, ids: torch.Tensor) -> int:
    """The class the author reads off the model for one unpadded token sequence."""
    out = call_as_user(model, spec, ids, len(ids))
    return int(out[0] > 0) if spec.width == 1 else int(out.argmax())


@examples(40)
@given(
    spec=specs().filter(lambda s: s.head == "sequence" and not s.features),
    lengths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
)
def test_counterfactuals_are_verified_by_the_authors_own_call(spec, lengths):
    lengths, model, ids, hints = case(spec, lengths)
    before = state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        found = captum_rnn.counterfactuals(model, ids, budget=200, **hints)
    assert same_state(before, state(model))
    assert len(found) == len(lengths)
    rows = ids if spec.batch_first else ids.T
    for c, padded, n in zip(found, rows, lengths, strict=True):
        real = real_steps(spec, padded, n).bool() if spec.reads == "mask" else None
        original = padded[real] if real is not None else padded[padded != spec.pad]
        assert torch.equal(c.original, original)
        assert c.original_prediction == user_class(model, spec, c.original)
        if c.flipped:
            assert c.prediction == user_class(model, spec, c.counterfactual)
            assert c.prediction != c.original_prediction
            edited = c.original.clone()
            for position, old, new in c.edits:  # substitutions only (edits="substitute")
                assert int(edited[position]) == old
                edited[position] = new
            assert torch.equal(edited, c.counterfactual)
            assert spec.pad not in c.counterfactual.tolist()


@examples(30)
@given(spec=specs(), lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_a_loader_batch_under_inference_mode_explains_as_explain_does(spec, lengths):
    """What ``trainer.predict`` with ``ExplainingModule`` runs on each batch: the
    ``(inputs, lengths, labels)`` tuple a loader yields, inside ``torch.inference_mode()``."""
    from captum_rnn.callbacks import explain_batch

    lengths, model, ids, hints = case(spec, lengths)
    expected = explain(model, ids, "integrated_gradients", lengths, **hints)
    labels = torch.zeros(len(lengths), dtype=torch.long)
    before = state(model)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", UserWarning)
        arrays = explain_batch(
            model,
            (ids, torch.tensor(lengths), labels),
            n_steps=8,
            max_steps=8,
            model_hints=hints,
        )
    assert same_state(before, state(model))
    assert arrays["lengths"].tolist() == [len(e) for e in expected]
    for i, e in enumerate(expected):
        got = arrays["scores"][i]
        if e.is_sequence_output:
            n_out, n = np.shape(e.scores)
            got = got[:n_out, :n]
        else:
            got = got[: len(e.scores)]
        assert np.allclose(got, np.asarray(e.scores, float), rtol=1e-4, atol=1e-5)


@examples(40)
@given(spec=specs().filter(lambda s: s.head == "sequence" and not s.features))
def test_an_extracted_automaton_agrees_with_the_authors_own_call(spec):
    """L* asks the model through the contract; every word up to ``max_length`` is a test
    word, so a converged automaton must answer each as the model alone does (a model that
    reads its padding must not be asked beside longer words)."""
    from captum_rnn.rules import extract_dfa

    model = build(spec)
    symbols = {"a": 3, "b": 4} if spec.pad not in (3, 4) else {"a": 5, "b": 6}
    words = ["".join(w) for n in range(1, 6) for w in itertools.product("ab", repeat=n)]
    before = state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if spec.width > 2:
            with pytest.raises(ValueError, match="binary classifier"):
                extract_dfa(model, symbols, max_length=5, **needed_hints(spec))
            return
        dfa = extract_dfa(
            model, symbols, max_length=5, samples=words, time_limit=20, **needed_hints(spec)
        )
    assert same_state(before, state(model))
    assert dfa.report.stopped_by == "equivalence"
    for word in words:
        ids = torch.tensor([symbols[c] for c in word])
        assert dfa.accepts(word) == (user_class(model, spec, ids) == 1), word


@examples(40)
@given(
    spec=specs().filter(lambda s: s.head == "sequence" and not s.features),
    lengths=st.lists(st.integers(1, 6), min_size=3, max_size=8),
)
def test_each_training_sequence_is_its_own_nearest_example(spec, lengths):
    """NearestExamples encodes the training set batch by batch and a query in the model's
    own layout: a training sequence asked again finds itself (cosine 1)."""
    from captum_rnn.influence import NearestExamples

    lengths, model, ids, hints = case(spec, lengths)
    rows = ids if spec.batch_first else ids.T
    train = [
        (row[real_steps(spec, row, n).bool()], 0) for row, n in zip(rows, lengths, strict=True)
    ]
    before = state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layer = "net.fc:input" if spec.wrapped else "fc:input"
        nearest = NearestExamples(model, train, layers=layer, batch_size=3, **hints)
        _, scores = nearest.influence(ids, top_k=1)[layer]
    assert same_state(before, state(model))
    assert scores.shape == (len(lengths), 1)
    assert torch.allclose(scores[:, 0], torch.ones(len(lengths)), atol=1e-4), scores


@pytest.mark.parametrize(
    "spec, lengths, metric",
    [
        # insertion starts from rows of padding only, which a masked model ignores
        # whatever their length: the padding check must ask a row with tokens
        (
            Spec("gru", 1, True, True, 0, False, "mask", 1, False, 0),
            [2, 3],
            "insertion_auc",
        ),
        # left padding: cutting behind the lengths would cut the tokens
        (
            Spec("gru", 1, False, True, 0, False, "mask", 1, True, 0, head="tagger"),
            [1, 2],
            "comprehensiveness",
        ),
        # two deletions leaving the same sequence: rounding must not rank them
        (
            Spec("gru", 1, True, True, 0, False, "mask", 1, False, 0),
            [6, 1],
            "loo_kendall",
        ),
    ],
)
def test_cases_the_properties_found(spec, lengths, metric):
    test_faithfulness_metrics_read_any_tutorial_model_through_the_same_contract.hypothesis.inner_test(
        spec, lengths, metric
    )
