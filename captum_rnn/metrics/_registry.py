"""The metric registry: every explanation-quality metric declared once.

A declaration (:class:`~captum_rnn.metrics.Metric`) gives the metric's name, direction
(higher or lower is better), range, cost, what it needs, and the functions that compute
it: ``compute(context)`` for :func:`~captum_rnn.metrics.benchmark` (per-sequence values
from a :class:`MetricContext`) and ``function`` for the training callbacks. ``METRICS``,
:func:`get_metric`, :func:`available_metrics`, ``benchmark`` and
``captum_rnn.callbacks`` all read this one table, so a new metric is one declaration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from captum_rnn._utils.state import seeded
from captum_rnn.metrics._base import (
    Metric,
    _as_scores,
    _Batch,
    _call_explainer,
    _device,
    _explainer_model,
    _native,
)
from captum_rnn.metrics._faithfulness import (
    DEFAULT_FRACTIONS,
    comprehensiveness,
    comprehensiveness_sufficiency,
    deletion_auc,
    infidelity,
    insertion_auc,
    loo_kendall,
    sensitivity_max,
    sufficiency,
)
from captum_rnn.metrics._per_output import output_aopc, output_rationale_metric
from captum_rnn.metrics._plausibility import auprc, auroc, lexicon_agreement, token_f1, token_iou
from captum_rnn.metrics._sanity import explanation_similarity, model_randomization_test
from captum_rnn.models.protocol import SequenceModel

__all__ = ["METRICS", "MetricContext", "available_metrics", "explain_cells", "get_metric"]


@dataclass
class MetricContext:
    """What ``compute`` gets: the adapted model, the batch, one method's scores and the
    work shared by every method (leave-one-out drops, randomised copies)."""

    model: SequenceModel
    batch: _Batch
    scores: Tensor
    target: Tensor
    explainer: Callable[..., Any] | None = None
    drops: Tensor | None = None
    randomized: nn.Module | None = None
    shuffled: nn.Module | None = None
    rationale: Tensor | None = None
    #: the method's attributions per cell ``(batch, time, features)`` of multivariate
    #: continuous input: the perturbation metrics then remove cells, and a 3-D
    #: ``rationale`` is scored per cell.
    cells: Tensor | None = None
    lexicon: Mapping[str, float] | None = None
    vocab: Any = None
    positive_class: int = 1
    #: ``"delete"``, ``"replace"`` or ``None`` (delete steps, replace cells).
    removal: str | None = None
    seed: int = 0
    #: results a metric shares with another (comprehensiveness and sufficiency).
    cache: dict[str, Any] = field(default_factory=dict)
    #: extra results that are not table columns (the lexicon agreement).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def x(self) -> Tensor:
        """The batch in the model's own layout, as the public metrics take it."""
        return _native(self.model, self.batch.x)


# ---------------------------------------------------------------------- compute functions
def _perturbed(ctx: MetricContext) -> tuple[Tensor, dict[str, Any]]:
    """The attributions the perturbation metrics rank and their options: per cell
    (cells replaced by the baseline; leave-one-out and infidelity perturb single
    cells) when the method's cell attributions of multivariate input are known, per
    step otherwise or when ``removal="delete"`` was asked for (a cell cannot be
    deleted: whole steps are)."""
    common: dict[str, Any] = dict(lengths=ctx.batch.lengths, removal=ctx.removal)
    if ctx.cells is None or ctx.removal == "delete":
        return ctx.scores, {**common, "cells": False}
    return ctx.cells, {**common, "cells": True}


def _aopc_pair(ctx: MetricContext) -> tuple[Tensor, Tensor]:
    if "aopc" not in ctx.cache:
        attributions, common = _perturbed(ctx)
        ctx.cache["aopc"] = comprehensiveness_sufficiency(
            ctx.model, ctx.x, attributions, ctx.target, **common
        )
    return ctx.cache["aopc"]


def _faithfulness(ctx: MetricContext) -> Tensor:
    comp, suff = _aopc_pair(ctx)
    return comp - suff


def _deletion(ctx: MetricContext) -> Tensor:
    attributions, common = _perturbed(ctx)
    return deletion_auc(ctx.model, ctx.x, attributions, ctx.target, **common)


def _insertion(ctx: MetricContext) -> Tensor:
    attributions, common = _perturbed(ctx)
    return insertion_auc(ctx.model, ctx.x, attributions, ctx.target, **common)


def _loo(ctx: MetricContext) -> Tensor:
    # per cell, ``ctx.drops`` are the single cells' drops (benchmark computes them so)
    attributions, common = _perturbed(ctx)
    return loo_kendall(ctx.model, ctx.x, attributions, ctx.target, drops=ctx.drops, **common)


def _infidelity(ctx: MetricContext) -> Tensor:
    attributions, common = _perturbed(ctx)
    return infidelity(
        ctx.model,
        ctx.x,
        attributions,
        ctx.target,
        lengths=common["lengths"],
        seed=ctx.seed,
        cells=common["cells"],
    )


def _sensitivity(ctx: MetricContext) -> Tensor:
    return sensitivity_max(
        ctx.model,
        ctx.x,
        ctx.explainer,
        ctx.target,
        lengths=ctx.batch.lengths,
        seed=ctx.seed,
        n_perturb_samples=5,
    )


def _plausibility(fn: Callable[..., Tensor]) -> Callable[[MetricContext], Tensor]:
    def compute(ctx: MetricContext) -> Tensor:
        if ctx.rationale is not None and ctx.rationale.dim() == 3:
            # cells of continuous input: every real (step, feature) of a sequence is one
            # position, ranked by |attribution| (the truth marks cells, not a direction)
            real = ctx.batch.mask.cpu()
            cells = ctx.cells.cpu().abs()
            scores = [cells[i][real[i]].reshape(-1) for i in range(len(real))]
            truth = [ctx.rationale[i][real[i]].reshape(-1) for i in range(len(real))]
            return fn(scores, truth)
        return fn(ctx.scores.cpu(), ctx.rationale, lengths=ctx.batch.lengths.cpu())

    return compute


def _rationale_metric(function: Callable[..., Any], description: str) -> Metric:
    """A plausibility metric in [0, 1] scored against a 0/1 rationale mask, no forward."""
    return Metric(
        function.__name__,
        "higher",
        (0.0, 1.0),
        "plausibility",
        description,
        cost="free (no forward pass)",
        needs=("rationale",),
        compute=_plausibility(function),
        function=function,
        per_output=output_rationale_metric(function),
    )


def _lexicon(ctx: MetricContext) -> float:
    from captum_rnn.explanation import Explanation

    batch, positive = ctx.batch, ctx.positive_class
    target = torch.full((batch.size,), positive, dtype=torch.long, device=batch.x.device)
    with seeded(ctx.seed, _device(ctx.model)):
        model = _explainer_model(ctx.explainer, ctx.model)
        scores = _as_scores(ctx.explainer(model, batch.x, batch.lengths, target), batch)
    explanations = []
    for i in range(batch.size):
        real = batch.mask[i]
        words = ctx.vocab.decode(batch.x[i][real].tolist())
        explanations.append(
            Explanation(list(words), scores[i][real].tolist(), "m", target=positive)
        )
    agreement = lexicon_agreement(explanations, ctx.lexicon, positive_class=positive)
    ctx.details["lexicon"] = agreement
    return agreement.spearman


def explain_cells(
    explainer: Callable[..., Any], model: nn.Module, batch: _Batch, target: Tensor
) -> tuple[Tensor, Tensor]:
    """Run ``explainer`` and return per-step scores ``(batch, time)`` and per-cell
    attributions ``(batch, time, features)`` of continuous input, 0 at padding. A method
    that scores steps only gives every feature of a step its step's score (it does not
    tell them apart)."""
    raw = explainer(_explainer_model(explainer, model), batch.x, batch.lengths, target)
    scores = _as_scores(raw, batch, "explanations")
    if isinstance(raw, Tensor) and raw.dim() == 3 and raw.shape[:2] == batch.x.shape[:2]:
        cells = raw.detach().to(scores)
    else:
        cells = scores[..., None].expand(*scores.shape, batch.x.shape[2])
    return scores, cells.masked_fill(~batch.mask[..., None], 0.0)


def _similarity(attribute: str) -> Callable[[MetricContext], Tensor]:
    def compute(ctx: MetricContext) -> Tensor:
        model = getattr(ctx, attribute)
        with seeded(ctx.seed, _device(ctx.model)):
            if ctx.cells is None:
                after = _call_explainer(ctx.explainer, model, ctx.batch, ctx.target)
            else:
                after = explain_cells(ctx.explainer, model, ctx.batch, ctx.target)[1]
        ctx.cache[attribute] = after
        if ctx.cells is None:
            return explanation_similarity(ctx.scores, after, ctx.batch.mask)
        # per cell on multivariate input (which feature of a step matters is learned)
        real = ctx.batch.mask[..., None].expand(ctx.cells.shape).flatten(1)
        return explanation_similarity(ctx.cells.flatten(1), after.flatten(1), real)

    return compute


def _faithfulness_function(
    model: nn.Module, inputs: Any, attributions: Any, target: Any = None, **kwargs: Any
) -> Tensor:
    """Comprehensiveness minus sufficiency per sequence (higher is better)."""
    comp, suff = comprehensiveness_sufficiency(model, inputs, attributions, target, **kwargs)
    return comp - suff


def _randomization_function(
    model: nn.Module, inputs: Any, target: Any = None, **kwargs: Any
) -> Tensor:
    """Per-sequence similarity of integrated gradients before and after randomising
    every weight (the callbacks' form of :func:`model_randomization_test`)."""
    return model_randomization_test(model, inputs, target=target, **kwargs).per_sequence


# ---------------------------------------------------------------------- the declarations
_PROB = (-1.0, 1.0)
_FR = len(DEFAULT_FRACTIONS)


def _aopc_metric(function: Callable[..., Any], direction: str, part: int, what: str) -> Metric:
    """Comprehensiveness (``part`` 0) or sufficiency (1): one ERASER AOPC of the pair the
    two share (computed once per method)."""
    return Metric(
        function.__name__,
        direction,  # type: ignore[arg-type]
        _PROB,
        "faithfulness",
        f"AOPC of the output drop when the top-ranked tokens (or cells) are {what} (ERASER)",
        cost=f"{1 + _FR} forward passes per sequence",
        default=True,
        compute=lambda ctx: _aopc_pair(ctx)[part],
        function=function,
        per_output=output_aopc(function.__name__),
    )


_DECLARED = (
    Metric(
        "faithfulness",
        "higher",
        _PROB,
        "faithfulness",
        "comprehensiveness minus sufficiency: the summary used to recommend a method",
        cost=f"{1 + 2 * _FR} forward passes per sequence (with the two below)",
        compute=_faithfulness,
        function=_faithfulness_function,
        per_output=output_aopc("faithfulness"),
    ),
    _aopc_metric(comprehensiveness, "higher", 0, "removed"),
    _aopc_metric(sufficiency, "lower", 1, "kept alone"),
    Metric(
        "deletion_auc",
        "lower",
        (0.0, 1.0),
        "faithfulness",
        "area under the output curve as tokens are removed, most important first",
        cost="11 forward passes per sequence",
        default=True,
        compute=_deletion,
        function=deletion_auc,
    ),
    Metric(
        "insertion_auc",
        "higher",
        (0.0, 1.0),
        "faithfulness",
        "area under the output curve as tokens are inserted, most important first",
        cost="11 forward passes per sequence",
        default=True,
        compute=_insertion,
        function=insertion_auc,
    ),
    Metric(
        "loo_kendall",
        "higher",
        (-1.0, 1.0),
        "faithfulness",
        "Kendall tau between attributions and the output drop of removing each token "
        "(each real cell alone on multivariate series)",
        chance=0.0,
        cost="one forward pass per token, or per real cell of multivariate series (shared "
        "by every method)",
        default=True,
        compute=_loo,
        function=loo_kendall,
    ),
    Metric(
        "infidelity",
        "lower",
        (0.0, math.inf),
        "faithfulness",
        "Captum infidelity (normalised) under random removal of tokens in embedding space "
        "(of single cells on multivariate series)",
        cost="10 forward passes per sequence (per cell or per step alike)",
        default=True,
        compute=_infidelity,
        function=infidelity,
    ),
    Metric(
        "sensitivity_max",
        "lower",
        (0.0, math.inf),
        "faithfulness",
        "Captum sensitivity_max: largest relative change under small embedding noise",
        cost="5 explanations per sequence",
        needs=("explainer",),
        compute=_sensitivity,
        function=sensitivity_max,
    ),
    _rationale_metric(
        auprc, "average precision of the attributions against the 0/1 rationale mask"
    ),
    _rationale_metric(
        auroc, "area under the ROC curve of the attributions against the rationale mask"
    ),
    _rationale_metric(
        token_f1, "F1 of the top-k tokens against the rationale (k = rationale size)"
    ),
    _rationale_metric(token_iou, "intersection over union of the top-k tokens and the rationale"),
    Metric(
        "lexicon_spearman",
        "higher",
        (-1.0, 1.0),
        "plausibility",
        "Spearman correlation of attributions toward the positive class with human valence",
        chance=0.0,
        cost="one explanation per sequence",
        needs=("lexicon", "explainer"),
        compute=_lexicon,
    ),
    Metric(
        "randomization",
        "lower",
        (-1.0, 1.0),
        "sanity",
        "rank similarity of the explanations before and after randomising the weights",
        chance=0.0,
        cost="one explanation per sequence",
        needs=("explainer",),
        default=True,
        compute=_similarity("randomized"),
        function=_randomization_function,
    ),
    Metric(
        "data_randomization",
        "lower",
        (-1.0, 1.0),
        "sanity",
        "rank similarity of the explanations of models trained on true and on shuffled labels",
        chance=0.0,
        cost="a training run and one explanation per sequence",
        needs=("train_data", "explainer"),
        compute=_similarity("shuffled"),
    ),
)

#: Every metric by name, in the order of benchmark tables.
METRICS: dict[str, Metric] = {m.name: m for m in _DECLARED}


def available_metrics(per_output: bool = False) -> list[str]:
    """The names of the registered metrics, in the order of benchmark tables.

    Args:
        per_output: only the metrics defined on explanations of every output step
            (what ``benchmark(outputs=...)`` and the callbacks take for taggers,
            forecasters and seq2seq models).

    Example:
        >>> "comprehensiveness" in available_metrics()
        True
        >>> available_metrics(per_output=True)[:3]
        ['faithfulness', 'comprehensiveness', 'sufficiency']
    """
    return [name for name, m in METRICS.items() if not per_output or m.per_output is not None]


def get_metric(name: str) -> Metric:
    """Return the :class:`Metric` declaration called ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"metric must be one of {available_metrics()}, got {name!r}") from None
