"""Attribution methods that ``captum_rnn.explain`` can run, registered by subclassing.

Every method works in the space the recurrent layer reads: embedded tokens
``(batch, time, embedding_dim)`` for token models, raw features
``(batch, time, features)`` for continuous models. The model's ``forward`` accepts
that space directly (with ``lengths``), so each method is Captum's own class called on
the model itself; nothing is re-implemented. What this module adds is what Captum
leaves to the caller on sequence models: lengths passed as an additional forward
argument (never interpolated), one feature per time step (per cell of a multivariate
series) for the perturbation methods, an exact zero on padding, and IG's step count raised until its
convergence delta is small.

To add a method, subclass :class:`AttributionMethod` with a ``name``; ``explain``
finds it by that name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from captum.attr import (
    DeepLift,
    FeatureAblation,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    Occlusion,
    Saliency,
    ShapleyValueSampling,
)
from torch import Tensor, nn

from captum_rnn._utils.options import check_float, check_int
from captum_rnn._utils.state import seeded
from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.models.protocol import SequenceModel, adapt

__all__ = [
    "AttributionMethod",
    "CallableMethod",
    "MethodResult",
    "available_methods",
    "check_options",
    "get_method",
    "resolve_features",
    "resolve_method",
]


@dataclass
class MethodResult:
    """What a method returns for a batch.

    Attributes:
        attributions: ``(batch, time, dim)``; exactly 0 at padded steps.
        delta: IG's convergence delta per sequence ``(batch,)``, or ``None``.
        n_steps: integration steps used per sequence ``(batch,)``, or ``None``.
        step_scores: ``(batch, time)`` when the method scores steps itself (the scores
            are then these, exactly, not the sum of ``attributions`` over dims).
        forward_passes: model evaluations (input rows run) per sequence ``(batch,)`` for
            methods that count them (pruned Shapley), or ``None``.
    """

    attributions: Tensor
    delta: Tensor | None = None
    n_steps: Tensor | None = None
    step_scores: Tensor | None = None
    forward_passes: Tensor | None = None


class AttributionMethod:
    """Base class: subclass it with a ``name`` to make a method available to ``explain``.

    Args:
        model: any sequence model (it is seen through :func:`captum_rnn.adapt`; pass a
            ``SequenceModel`` to give hints). Methods call it as ``model(x, lengths, ids)``
            with ``x`` embedded tokens (the embedding layer's output is replaced, the
            model's own forward still runs on ``ids``) or continuous features.
        ids: the token ids ``(batch, time)`` behind embedded inputs (token models).

    Subclasses implement :meth:`attribute` over a padded batch and pass
    :meth:`forward_args` as Captum's ``additional_forward_args``.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: True when the method needs gradients (it then runs inside ``gradient_context``).
    uses_gradients: ClassVar[bool] = True
    #: The options ``attribute`` takes; ``None`` leaves them unchecked. Read off the
    #: signature of ``attribute`` when it names them all (no ``**kwargs``); declare them
    #: when ``attribute`` passes ``**kwargs`` on.
    options: ClassVar[tuple[str, ...] | None] = None
    _registry: ClassVar[dict[str, type[AttributionMethod]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "options" not in cls.__dict__ and "attribute" in cls.__dict__:
            params = list(inspect.signature(cls.attribute).parameters.values())[5:]
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                cls.options = tuple(p.name for p in params)
        if cls.name:
            for key in (cls.name, *cls.aliases):
                AttributionMethod._registry[key] = cls

    def __init__(self, model: nn.Module, ids: Tensor | None = None) -> None:
        self.model: SequenceModel = adapt(model)
        if self.model.is_token_model and ids is None:
            raise ValueError("a token model's method needs ids= (the token ids of the inputs)")
        self.ids = ids if self.model.is_token_model else None

    def forward_args(self, lengths: Tensor, rows: Any = None, steps: Any = None) -> tuple:
        """Captum's ``additional_forward_args`` for some rows (and steps) of the batch."""
        if rows is None:
            return (lengths, self.ids)
        ids = None if self.ids is None else self.ids[rows]
        if ids is not None and steps is not None:
            ids = ids[:, steps]
        return (lengths[rows], ids)

    def reads_padding(self, inputs: Tensor, lengths: Tensor, target: Tensor) -> Tensor:
        """``(batch,)`` whether each sequence's explained output changes when its padding is
        cut out (padding fed to a recurrent layer as content, positions that move with
        left padding): such a sequence is perturbed in place, not cut to its real steps.
        One forward pass for the batch and one per distinct length."""
        real = self.real_steps(lengths, inputs.shape[1])
        counts = real.sum(dim=1)
        reads = torch.zeros(inputs.shape[0], dtype=torch.bool, device=inputs.device)
        padded = (counts < inputs.shape[1]).nonzero()[:, 0]
        if len(padded) == 0:
            return reads
        column = target.reshape(-1, 1).to(inputs.device)
        with torch.no_grad():
            full = self.model(inputs[padded], *self.forward_args(lengths, padded))
            full = full.gather(1, column[padded])
            for n in counts[padded].unique().tolist():
                rows = padded[counts[padded] == n]
                keep = real[rows].nonzero()[:, 1].view(len(rows), n)
                cut = inputs[rows].gather(1, keep[..., None].expand(-1, -1, inputs.shape[2]))
                length, ids = self.forward_args(lengths, rows)
                out = self.model(cut, length, None if ids is None else ids.gather(1, keep))
                if int(column[rows].max()) >= out.shape[-1]:
                    reads[rows] = True
                    continue
                same = torch.isclose(out.gather(1, column[rows]), full[counts[padded] == n],
                                     rtol=1e-4, atol=1e-5)  # fmt: skip
                reads[rows] = ~same[:, 0]
        return reads

    def real_steps(self, lengths: Tensor, time: int) -> Tensor:
        """``(batch, time)`` True at real steps: not padding, wherever it stands."""
        if self.ids is not None:
            return self.model.padding_mask(self.ids)
        return torch.arange(time, device=lengths.device)[None, :] < lengths[:, None]

    def attribute(
        self, inputs: Tensor, baselines: Tensor, target: Tensor, lengths: Tensor, **kwargs: Any
    ) -> MethodResult:
        """Attribute ``target`` to every step of ``inputs``.

        Args:
            inputs: ``(batch, time, dim)`` embedded tokens or features.
            baselines: same shape: the reference input.
            target: ``(batch,)`` output index per sequence.
            lengths: ``(batch,)`` true lengths.
            kwargs: method options (``n_steps`` and so on).

        Returns:
            A :class:`MethodResult`.
        """
        raise NotImplementedError


class CallableMethod:
    """A user's explainer function run like a registered method (not registered).

    ``fn(model, inputs, lengths, target)`` gets the user's model, the inputs in the
    model's own layout (token ids, or features), lengths ``(batch,)`` and one target per
    sequence, and returns attributions ``(batch, time)`` or ``(batch, time, features)``
    (model layout); options are passed through.
    """

    uses_gradients = True
    options = None

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, model: nn.Module, ids: Tensor | None = None) -> CallableMethod:
        self.model: SequenceModel = adapt(model)
        self.ids = ids
        return self

    def attribute(self, inputs, baselines, target, lengths, **kwargs):
        seq = self.model
        raw = self.ids if seq.is_token_model else inputs
        own = seq.to_native(raw)
        result = self.fn(seq.module, own, lengths, target, **kwargs)
        if isinstance(result, tuple):
            result = result[0]
        result = torch.as_tensor(result).detach().to(inputs.device)
        batch, time = inputs.shape[0], inputs.shape[1]
        if result.dim() in (2, 3):  # attributions in the model's own layout
            native = seq.to_batch_first(result)
            transposed = not seq.batch_first or (seq.channels_first and result.dim() == 3)
            if native.shape[:2] == (batch, time) and (
                transposed or result.shape[:2] != (batch, time)
            ):
                result = native
        if result.dim() == 3 and result.shape[:2] == (batch, time):
            result = result.sum(dim=-1) if seq.is_token_model else result
        if result.dim() == 2 and result.shape == (batch, time):
            # one score per step, kept exact; spread over the step's dims for the cells
            spread = (result[..., None] / inputs.shape[-1]).expand_as(inputs)
            return MethodResult(spread.to(inputs.dtype).clone(), step_scores=result.double())
        if result.shape != inputs.shape:
            raise ValueError(
                f"explainer {self.name!r} returned shape {tuple(result.shape)}; expected "
                f"(batch, time) = {(batch, time)} or (batch, time, features)"
            )
        return MethodResult(result.to(inputs.dtype).clone())


def resolve_method(method: Any) -> Any:
    """A registered method class by name, or a :class:`CallableMethod` for a function."""
    if callable(method) and not isinstance(method, (str, type)):
        return CallableMethod(method)
    return get_method(method)


def check_options(method: type[AttributionMethod], kwargs: dict[str, Any]) -> None:
    """Refuse options ``method`` does not take, naming them and the ones it does.

    Raises:
        TypeError: for an unknown option.
    """
    if method.options is None:
        return
    unknown = sorted(set(kwargs) - set(method.options))
    if unknown:
        raise TypeError(
            f"method {method.name!r} takes no option {', '.join(map(repr, unknown))}; "
            f"its options: {list(method.options) or 'none'}"
        )


def available_methods() -> list[str]:
    """Names of the registered methods (aliases included), sorted."""
    return sorted(AttributionMethod._registry)


def get_method(name: str) -> type[AttributionMethod]:
    """Return the method class registered as ``name``.

    Raises:
        ValueError: when no method has that name; the message lists the known ones.
    """
    try:
        return AttributionMethod._registry[name]
    except KeyError:
        raise ValueError(f"method must be one of {available_methods()}, got {name!r}") from None


#: Default bytes of activations one forward+backward may hold (see ``activation_bytes``).
DEFAULT_MEMORY_BUDGET = 256 * 2**20


def activation_bytes(model: SequenceModel, inputs: Tensor) -> int:
    """Estimate the bytes one sequence holds for backward in one forward pass.

    Counts, per time step, the input width and the outputs of the model's recurrent layers
    (gates, cell and hidden state per direction and layer) and linear layers, twice (the
    values and their gradients). An estimate on the safe side, used to chunk work.
    """
    width = inputs.shape[-1]
    for module in model.module.modules():
        if isinstance(module, nn.RNNBase):
            gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1) + 2
            directions = 2 if module.bidirectional else 1
            width += module.hidden_size * gates * directions * module.num_layers
        elif isinstance(module, nn.Linear):
            width += module.out_features
    return max(1, 2 * inputs.shape[1] * width * inputs.element_size())


class IntegratedGradientsMethod(AttributionMethod):
    """Captum's ``IntegratedGradients`` in embedding space, with adaptive step count.

    Options:
        n_steps: initial number of steps (default 50).
        max_steps: upper bound when raising the steps (default 400).
        rtol, atol: a sequence has converged when
            ``|delta| <= rtol * |F(x) - F(baseline)| + atol`` (defaults 0.05 and 1e-3).
        method: Captum's integration rule (default ``"gausslegendre"``).
        internal_batch_size: sequences x steps per forward pass; by default the most that
            fits ``memory_budget``.
        memory_budget: bytes the activations of one forward+backward may take (default
            256 MiB, estimated from the input and the model's recurrent and linear layers).
            The batch and the steps are cut into chunks to stay under it, so memory does
            not grow with the batch; small inputs run in one pass as before.
    """

    name = "integrated_gradients"
    aliases = ("ig",)

    def attribute(
        self,
        inputs: Tensor,
        baselines: Tensor,
        target: Tensor,
        lengths: Tensor,
        n_steps: int = 50,
        max_steps: int = 400,
        rtol: float = 0.05,
        atol: float = 1e-3,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> MethodResult:
        n_steps = check_int("n_steps", n_steps, 2)
        max_steps = check_int("max_steps", max_steps, n_steps)
        rtol, atol = check_float("rtol", rtol, 0.0), check_float("atol", atol, 0.0)
        if internal_batch_size is None:
            per_example = activation_bytes(self.model, inputs)
            budget = check_int("memory_budget", memory_budget, 1)
            internal_batch_size = max(1, budget // per_example)
        internal_batch_size = check_int("internal_batch_size", internal_batch_size, 1)
        ig = IntegratedGradients(self.model)
        batch = inputs.shape[0]
        attributions = torch.zeros_like(inputs)
        delta = torch.zeros(batch, dtype=inputs.dtype, device=inputs.device)
        used = torch.zeros(batch, dtype=torch.long, device=inputs.device)
        todo = torch.arange(batch, device=inputs.device)
        steps = n_steps
        while True:
            # Sequences per Captum call: with the steps, at most internal_batch_size rows.
            chunk = max(1, internal_batch_size // steps)
            for start in range(0, len(todo), chunk):
                rows = todo[start : start + chunk]
                attr, d = ig.attribute(
                    inputs[rows],
                    baselines=baselines[rows],
                    target=target[rows],
                    additional_forward_args=self.forward_args(lengths, rows),
                    n_steps=steps,
                    method=method,
                    internal_batch_size=max(internal_batch_size, len(rows)),
                    return_convergence_delta=True,
                )
                attributions[rows] = attr.detach()
                delta[rows] = d.detach().to(delta.dtype)
                used[rows] = steps
            # Completeness: sum(attr) - delta = F(x) - F(baseline).
            difference = attributions[todo].sum(dim=(1, 2)) - delta[todo]
            converged = delta[todo].abs() <= rtol * difference.abs() + atol
            if bool(converged.all()) or steps >= max_steps:
                break
            todo = todo[~converged]
            steps = min(steps * 2, max_steps)
        return MethodResult(attributions, delta, used)


def _leaf(inputs: Tensor) -> Tensor:
    """A fresh leaf that requires grad: Captum then neither warns nor touches ours."""
    return inputs.detach().requires_grad_()


class _OnePassGradientMethod(AttributionMethod):
    """A Captum gradient method called once on the whole batch, as it is."""

    options = ()
    #: the Captum class and the fixed keywords it is called with
    captum_class: ClassVar[type] = Saliency
    captum_options: ClassVar[dict[str, Any]] = {}
    #: whether the method is relative to the baselines (otherwise to zero)
    uses_baselines: ClassVar[bool] = False

    def attribute(self, inputs, baselines, target, lengths, **kwargs):
        if self.uses_baselines:
            kwargs = {"baselines": baselines, **kwargs}
        attr = self.captum_class(self.model).attribute(
            _leaf(inputs),
            target=target,
            additional_forward_args=self.forward_args(lengths),
            **self.captum_options,
            **kwargs,
        )
        return MethodResult(attr.detach())


class SaliencyMethod(_OnePassGradientMethod):
    """Captum's ``Saliency``: absolute gradient per input dimension."""

    name = "saliency"
    captum_class = Saliency
    captum_options = {"abs": True}


class InputXGradientMethod(_OnePassGradientMethod):
    """Captum's ``InputXGradient`` (relative to zero, not to the baseline)."""

    name = "input_x_gradient"
    captum_class = InputXGradient


class DeepLiftMethod(_OnePassGradientMethod):
    """Captum's ``DeepLift``. Inside ``nn.LSTM``/``nn.GRU`` the nonlinearities are not
    modules, so there DeepLift's rescale rule reduces to gradient x (input - baseline)."""

    name = "deeplift"
    captum_class = DeepLift
    uses_baselines = True


class GradientShapMethod(AttributionMethod):
    """Captum's ``GradientShap`` with the baseline and Gaussian noise around it, one
    sequence at a time on its real steps (cut as :class:`_PerStepPerturbation` cuts them),
    each with the same seed: a sequence's draws do not depend on its batch or padding.

    Options: ``n_samples`` (default 20), ``stdevs`` (default 0.09 of the mean absolute
    input over the sequence's real steps).
    """

    name = "gradient_shap"
    options = ("n_samples", "stdevs")

    def attribute(self, inputs, baselines, target, lengths, n_samples=20, stdevs=None, **kwargs):
        n_samples = check_int("n_samples", n_samples, 1)
        if stdevs is not None:
            stdevs = check_float("stdevs", stdevs, 0.0)
        attributions = torch.zeros_like(inputs)
        real = self.real_steps(lengths, inputs.shape[1])
        reads = self.reads_padding(inputs, lengths, target)
        for i in range(inputs.shape[0]):
            keep, row = real[i].nonzero()[:, 0], slice(i, i + 1)
            if reads[i]:  # the model reads its padding: the row as given
                x, base, args = inputs[row], baselines[row], self.forward_args(lengths, row)
            else:
                x, base = inputs[row][:, keep], baselines[row][:, keep]
                args = self.forward_args(lengths, row, keep)
            noise = stdevs
            if noise is None:
                noise = 0.09 * float(inputs[i, keep].detach().abs().mean().clamp_min(1e-6))
            with seeded(0, inputs.device):
                found = GradientShap(self.model).attribute(
                    x,
                    baselines=torch.cat([base, torch.zeros_like(base)]),
                    target=target[row],
                    additional_forward_args=args,
                    n_samples=n_samples,
                    stdevs=noise,
                    **kwargs,
                )
            found = found[0].detach()
            attributions[i, keep] = (found[keep] if reads[i] else found).to(attributions.dtype)
        return MethodResult(attributions)


def resolve_features(features: str | None, token_model: bool, dim: int) -> str:
    """The perturbation methods' feature grouping: ``features`` checked, or its default.

    Args:
        features: ``"step"``, ``"cell"`` or ``None`` (the default for the input).
        token_model: whether the input is embedded tokens.
        dim: features (or embedding dims) per step.

    Returns:
        ``"cell"`` or ``"step"``: ``None`` is ``"cell"`` for continuous input with more
        than one feature and ``"step"`` otherwise.

    Example:
        >>> resolve_features(None, token_model=False, dim=3)
        'cell'
    """
    if features is None:
        return "cell" if not token_model and dim > 1 else "step"
    if features not in ("step", "cell"):
        raise ValueError(
            f"features must be 'step' (one feature per time step) or 'cell' (one per time "
            f"step and input feature), got {features!r}"
        )
    return features


class _PerStepPerturbation(AttributionMethod):
    """Runs a Captum perturbation method one sequence at a time, on its real steps only.

    A sequence is cut to its real steps when the model's output does not change by the
    cut; a model that reads the padding (a recurrent layer fed the padding as content, a
    transformer whose positions move with left padding) is perturbed on the sequence as
    given, its padding held fixed, so that the explained output is the one it reports.

    Option ``features``: ``"cell"`` makes one feature per time step and input feature;
    ``"step"`` makes one feature per time step (removing a step replaces it by its
    baseline). The default (``None``) is ``"cell"`` for continuous input with more than
    one feature, where a step's features must be told apart (per step they all share one
    score, so on multivariate ground truth the method scores exactly chance), and
    ``"step"`` for token input (an embedding's dims are not features a user reads) and
    one-feature series (where both are the same). Captum gives every element of a
    feature group the group's whole score; with ``"step"`` we spread it evenly over the
    step's ``dim`` elements so that summing over them gives the step's score once.
    """

    uses_gradients = False

    def _one(
        self,
        x: Tensor,
        baseline: Tensor,
        target: Tensor,
        args: tuple,
        per_cell: bool,
        real: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Captum's attribution of one row ``x`` ``(1, time, dim)``; ``real`` ``(time,)``
        marks its real steps when it keeps its padding (see :meth:`_feature_mask`)."""
        raise NotImplementedError

    def attribute(self, inputs, baselines, target, lengths, features=None, **kwargs):
        features = resolve_features(features, self.model.is_token_model, inputs.shape[2])
        if "feature_mask" in kwargs:
            raise TypeError(
                "feature_mask is built by captum-rnn: pass features='step' (one feature per "
                "time step) or features='cell' (one per time step and input feature)"
            )
        for option in ("window", "n_samples", "perturbations_per_eval"):
            if option in kwargs:
                kwargs[option] = check_int(option, kwargs[option], 1)
        if kwargs.get("alpha") is not None:
            kwargs["alpha"] = check_float("alpha", kwargs["alpha"], 0.0)
        per_cell = features == "cell"
        spread = 1 if per_cell else inputs.shape[2]
        attributions = torch.zeros_like(inputs)
        real = self.real_steps(lengths, inputs.shape[1])
        reads = self.reads_padding(inputs, lengths, target)
        for i in range(inputs.shape[0]):
            # only the real steps are perturbed, wherever the padding stands (left, right or
            # inside); the row is cut to them unless the model's output reads its padding
            keep = real[i].nonzero()[:, 0]
            row = slice(i, i + 1)
            if not reads[i]:
                x, base, held = inputs[row][:, keep], baselines[row][:, keep], None
                args = self.forward_args(lengths, row, keep)
            else:  # in place: the padding stays as given (its baseline is itself)
                x, held, args = inputs[row], real[i], self.forward_args(lengths, row)
                base = torch.where(held[None, :, None], baselines[row], x)
            found = self._one(x, base, target[row], args, per_cell, real=held, **kwargs)
            found = found[0].detach()
            attributions[i, keep] = ((found if held is None else found[keep]) / spread).to(
                attributions.dtype
            )
        return MethodResult(attributions)

    @staticmethod
    def _feature_mask(x: Tensor, per_cell: bool = False, real: Tensor | None = None) -> Tensor:
        """One feature per step (or per cell); with ``real`` ``(time,)`` the padded steps
        join a real step's feature (the nearest one before them, else the first), so a
        row kept whole has as many features as its real steps, and perturbing a feature
        leaves the padding as it is (its baseline is itself)."""
        time, dim = x.shape[1], x.shape[2]
        steps = torch.arange(time, device=x.device)
        if real is not None:
            steps = (real.long().cumsum(0) - 1).clamp_min(0)
        if per_cell:
            cells = steps[:, None] * dim + torch.arange(dim, device=x.device)
            return cells.reshape(1, time, dim)
        return steps[None, :, None].expand(1, time, dim)


class FeatureAblationMethod(_PerStepPerturbation):
    """Captum's ``FeatureAblation`` per cell of continuous input, per time step of token
    input (``features=`` chooses)."""

    name = "feature_ablation"
    options = ("features", "perturbations_per_eval")

    def _one(self, x, baseline, target, args, per_cell, real=None, **kwargs):
        return FeatureAblation(self.model).attribute(
            x,
            baselines=baseline,
            target=target,
            additional_forward_args=args,
            feature_mask=self._feature_mask(x, per_cell, real),
            perturbations_per_eval=kwargs.pop("perturbations_per_eval", 32),
            **kwargs,
        )


class OcclusionMethod(_PerStepPerturbation):
    """Captum's ``Occlusion`` with a window of ``window`` steps (default 1) and stride 1."""

    name = "occlusion"
    options = ("features", "window", "perturbations_per_eval")

    def _one(self, x, baseline, target, args, per_cell, real=None, window: int = 1, **kwargs):
        window = min(int(window), x.shape[1])
        width = 1 if per_cell else x.shape[2]
        return Occlusion(self.model).attribute(
            x,
            sliding_window_shapes=(window, width),
            strides=(1, width),
            baselines=baseline,
            target=target,
            additional_forward_args=args,
            perturbations_per_eval=kwargs.pop("perturbations_per_eval", 32),
            **kwargs,
        )


class ShapleyValueSamplingMethod(_PerStepPerturbation):
    """Captum's ``ShapleyValueSampling`` over time steps (per cell of multivariate series):
    each step's mean marginal contribution over random orderings, seeded.

    Options: ``n_samples`` (orderings, default 25), ``perturbations_per_eval``.
    """

    name = "shapley_value_sampling"
    options = ("features", "n_samples", "perturbations_per_eval")

    def _one(self, x, baseline, target, args, per_cell, real=None, n_samples=25, **kwargs):
        with seeded(0, x.device):
            return ShapleyValueSampling(self.model).attribute(
                x,
                baselines=baseline,
                target=target,
                additional_forward_args=args,
                # Captum views the mask: a contiguous copy, not the expanded one
                feature_mask=self._feature_mask(x, per_cell, real).contiguous(),
                n_samples=n_samples,
                perturbations_per_eval=kwargs.pop("perturbations_per_eval", 32),
                **kwargs,
            )


class _SurrogateMethod(_PerStepPerturbation):
    """A Captum surrogate-model method (Lime family) over time steps, fitted by closed-form
    weighted ridge regression, with seeded sampling."""

    default_alpha: ClassVar[float] = 1e-3

    def _explainer(self, alpha: float) -> Lime:
        raise NotImplementedError

    def _one(
        self, x, baseline, target, args, per_cell, real=None, n_samples=200, alpha=None, **kwargs
    ):
        explainer = self._explainer(self.default_alpha if alpha is None else alpha)
        with seeded(0, x.device):
            return explainer.attribute(
                x,
                baselines=baseline,
                target=target,
                additional_forward_args=args,
                feature_mask=self._feature_mask(x, per_cell, real),
                n_samples=n_samples,
                perturbations_per_eval=kwargs.pop("perturbations_per_eval", 50),
                **kwargs,
            )


class LimeMethod(_SurrogateMethod):
    """Captum's ``Lime`` over time steps.

    Options: ``n_samples`` (default 200), ``alpha`` (ridge penalty, default 1e-3).
    """

    name = "lime"
    options = ("features", "n_samples", "alpha", "perturbations_per_eval")

    def _explainer(self, alpha: float) -> Lime:
        return Lime(self.model, interpretable_model=WeightedRidge(alpha=alpha))


class KernelShapMethod(_SurrogateMethod):
    """Captum's ``KernelShap`` over time steps (its Shapley kernel, least squares).

    Options: ``n_samples`` (default 200).
    """

    name = "kernel_shap"
    options = ("features", "n_samples", "alpha", "perturbations_per_eval")
    default_alpha = 0.0

    def _explainer(self, alpha: float) -> Lime:
        shap = KernelShap(self.model)
        shap.interpretable_model = WeightedRidge(alpha=alpha)
        return shap
