"""Example-based explanations: the training examples a sequence model treats as alike.

:class:`NearestExamples` is a ``captum.influence.DataInfluence`` that encodes the
training set once (the pooled representation from ``model.encode`` by default, or any
named tensor-returning layer such as an ``nn.Identity`` tap), keeps the vectors with the
labels, the model's predictions and fingerprints of weights and data in one
:class:`~captum_rnn.influence.ExampleStore`, and answers ``influence(inputs, top_k)`` with
Captum's ``{layer_name: (indices, scores)}``.

Unlike Captum's ``SimilarityInfluence`` (see docs/ARCHITECTURE.md, "Upstream defects") it handles
variable-length sequences through the data set's collate function, never re-reads
activations from disk per query, refuses stale vectors after the weights change, and
adds what a user debugging a model asks next: the neighbours' labels and predictions,
their agreement with the prediction, a calibrated novelty score, Deep k-NN credibility,
MMD-critic prototypes and criticisms, and label-disagreement scores for finding
mislabelled training data.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum.influence import DataInfluence
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from captum_rnn._utils.options import check_int
from captum_rnn.data import PadCollate, pad_collate
from captum_rnn.influence import _credibility, _prototypes
from captum_rnn.influence._credibility import Credibility
from captum_rnn.influence._search import check_metric, check_top_k, make_index
from captum_rnn.influence._store import (
    DataFingerprint,
    ExampleStore,
    StoreWriter,
    model_fingerprint,
)
from captum_rnn.models.protocol import readable_module

__all__ = ["NearestExamples", "Neighbors", "PrototypeEvaluation"]

#: the name under which the default ``model.encode`` representation is stored
POOLED = "pooled"
_POOLINGS = ("mean", "last", "max")
_MISSING = object()
_QUERY_ROWS = 8192  # stored vectors searched as queries at a time
_PARTS = ("output", "input")
_CALLS = ("last", "mean")


@dataclass
class Neighbors:
    """The nearest training examples of a batch of queries, in one layer.

    Attributes:
        layer: the layer searched.
        indices: ``(batch, k)`` indices into the training set, nearest first.
        scores: ``(batch, k)`` similarities (cosine, dot) or distances (euclidean).
        labels: ``(batch, k)`` training labels of the neighbours (``None`` without labels).
        predictions: ``(batch, k)`` the model's predictions for the neighbours.
        query_predictions: ``(batch,)`` the model's predictions for the queries.
        agreement: ``(batch,)`` share of neighbours whose label equals the query's
            prediction (classification only, else ``None``).
        prediction_agreement: ``(batch,)`` share of neighbours the model predicts as the
            query (classification only, else ``None``).
        novelty: ``(batch,)`` calibrated novelty in ``[0, 1]`` after :meth:`NearestExamples.calibrate`.
    """

    layer: str
    indices: Tensor
    scores: Tensor
    labels: Tensor | None
    predictions: Tensor
    query_predictions: Tensor
    agreement: Tensor | None = None
    prediction_agreement: Tensor | None = None
    novelty: Tensor | None = None


@dataclass
class PrototypeEvaluation:
    """How well the nearest-prototype classifier matches the labels and the model.

    Attributes:
        prototype_accuracy: accuracy of labelling each example by its nearest prototype.
        model_accuracy: the model's own accuracy on the same examples.
        agreement: share of examples where the two predict the same class.
        majority_baseline: accuracy of always predicting the most frequent label.
        num_prototypes: prototypes used.
        num_examples: examples evaluated.
    """

    prototype_accuracy: float
    model_accuracy: float
    agreement: float
    majority_baseline: float
    num_prototypes: int
    num_examples: int


@dataclass
class _Calibration:
    k: int
    distances: dict[str, Tensor]
    nonconformity: Tensor | None
    num_classes: int = 0


@contextlib.contextmanager
def _encoding_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the block; every module's mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def _capture_encode(model: nn.Module, captured: dict[str, Tensor]) -> Iterator[None]:
    """Record the pooled output of ``model.encode`` while ``forward`` runs, then restore it."""
    original = model.__dict__.get("encode", _MISSING)
    bound = model.encode

    def encode(*args: Any, **kwargs: Any) -> Any:
        result = bound(*args, **kwargs)
        captured.setdefault(POOLED, _pooled_of(result))
        return result

    model.__dict__["encode"] = encode
    try:
        yield
    finally:
        if original is _MISSING:
            model.__dict__.pop("encode", None)
        else:
            model.__dict__["encode"] = original


def _pooled_of(result: Any) -> Any:
    # model.encode returns (states, mask, pooled) in captum_rnn; a bare tensor is accepted
    if isinstance(result, (tuple, list)) and result:
        return result[-1]
    return result


def _to_device(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, Tensor) else value


def _as_input_tuple(inputs: Any) -> tuple[Tensor, ...]:
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    elif (
        isinstance(inputs, (tuple, list)) and inputs and all(isinstance(x, Tensor) for x in inputs)
    ):
        inputs = tuple(inputs)
    else:
        raise TypeError(
            f"inputs must be a tensor or a tuple of tensors, got {type(inputs).__name__}"
        )
    batch = None
    for i, x in enumerate(inputs):
        if x.dim() == 0:
            raise ValueError(f"inputs[{i}] must have a batch dimension, got a scalar")
        if batch is None:
            batch = x.shape[0]
        elif x.shape[0] != batch:
            raise ValueError(f"inputs[{i}] has batch size {x.shape[0]}, inputs[0] has {batch}")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ValueError(f"inputs[{i}] holds NaN or infinite values")
    if batch == 0:
        raise ValueError("inputs hold no examples (batch size 0)")
    return inputs


def _as_args_tuple(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    return tuple(args) if isinstance(args, tuple) else (args,)


def _rows(value: Any, start: int, stop: int, batch: int) -> Any:
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch:
        return value[start:stop]
    return value


def _has_encode(model: nn.Module) -> bool:
    """True when the model's class defines ``encode`` (no attribute probing)."""
    return any(callable(vars(cls).get("encode")) for cls in type(model).__mro__)


def _split_layer(name: str) -> tuple[str, str]:
    """``"fc"`` / ``"fc:output"`` -> ``("fc", "output")``; ``"fc:input"`` -> ``("fc", "input")``."""
    module, sep, part = name.rpartition(":")
    if not sep:
        return name, "output"
    if part not in _PARTS:
        raise ValueError(
            f"layers: {name!r} ends in {':' + part!r}; use 'name' or 'name:output' for a "
            "module's output and 'name:input' for its (first) input"
        )
    return module, part


def _plain_json(value: Any) -> Any:
    """``value`` as it reads back from the store's JSON (tuples become lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain_json(v) for v in value]
    return value


def _check_call(call: Any) -> str | int:
    if isinstance(call, str) and call in _CALLS:
        return call
    if isinstance(call, (int, np.integer)) and not isinstance(call, bool):
        return int(call)
    raise ValueError(
        f"call must be 'last', 'mean' or an int index of the layer's calls in one forward "
        f"pass (0 = first, -1 = last), got {call!r}"
    )


def _accepts_lengths(model: nn.Module) -> bool:
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "lengths" in parameters


def _check_rows(lengths: Any, what: str, start: int) -> None:
    """Refuse all-padding rows (their vectors would be NaN or meaningless), naming them."""
    if not isinstance(lengths, Tensor) or lengths.dim() != 1:
        return
    empty = (lengths <= 0).nonzero().flatten().tolist()
    if empty:
        rows = [start + i for i in empty]
        raise ValueError(
            f"{what} {rows[0]} is all padding (length 0)"
            + (f", and {len(rows) - 1} more: {rows}" if len(rows) > 1 else "")
            + "; every sequence needs at least one real token"
        )


def _is_regressor(model: nn.Module) -> bool:
    from captum_rnn.models import RNNRegressor

    return isinstance(model, RNNRegressor)


class NearestExamples(DataInfluence):
    """Nearest training examples of a sequence model, with labels, credibility and prototypes.

    The training set is encoded once (lazily at the first query, or by :meth:`fit`) in
    eval mode without autograd, batch by batch through the data set's collate function,
    on the model's device; every module's mode is restored after. The vectors live in
    memory, or memory-mapped under ``store_path`` for large sets.

    Args:
        model: the model; with ``layers=None`` it must have ``encode(x, lengths=None)``
            returning ``(states, mask, pooled)`` (every captum_rnn recurrent model does).
        train_dataset: a map-style data set of ``(sequence, target)`` items.
        layers: ``None`` for the pooled ``model.encode`` representation (stored as
            ``"pooled"``), or the name(s) of submodules: ``"fc"`` (or ``"fc:output"``)
            for a module's output, ``"fc:input"`` for its first input, e.g.
            ``"representation"``, ``["step_states", "representation"]`` or, on a user's
            tutorial model, ``"fc:input"`` (the features its classifier head reads).
            Modules that return tuples (``nn.LSTM``) are refused: tap them with
            ``nn.Identity``. A per-step output ``(batch, time, hidden)`` is pooled over
            the real steps (``(time, batch, hidden)`` for time-major models).
        metric: ``"cosine"`` (default), ``"dot"`` or ``"euclidean"``. Scores are
            similarities (largest first) or distances (smallest first), as in Captum.
        batch_size: examples encoded per forward pass.
        index: ``"exact"`` (chunked matmul + top-k in torch), or the approximate
            ``"faiss"`` / ``"hnsw"`` (optional packages ``faiss-cpu`` / ``hnswlib``).
        collate_fn: builds batches; default :func:`captum_rnn.data.pad_collate` with the
            model's pad id (batches ``(inputs, lengths, targets)``; a pair is read as
            ``(inputs, targets)``).
        sequence_pooling: how per-step layer outputs are pooled: ``"mean"``,
            ``"last"`` or ``"max"`` over the real (unpadded) steps.
        store_path: a directory: write the vectors there as memory-mapped ``.npy``
            files instead of keeping them in memory.
        search_device: where exact search runs; default the model's device (CPU for a
            memory-mapped store).
        chunk_size: stored vectors scored at a time by exact search.
        index_options: extra keyword arguments for the approximate index.
        call: which call of a layer that runs several times in one forward pass (a
            hand-written RNN cell called once per time step) is recorded: ``"last"``
            (default), ``"mean"`` (of all calls' vectors) or an int index (``0`` the
            first call, ``-1`` the last). Every call is recorded; a layer run once is
            the same for all three.
        hints: the model contract's keywords (``pad_id``, ``batch_first``, ``output``,
            ``embedding``, ``num_classes``, ``lengths_arg``, ``mask_arg``; see
            :func:`captum_rnn.adapt`): the model is run through it (its own layout, lengths or mask as its forward takes them).
            Without hints a model the contract cannot read is called as is, with the
            lengths when its forward has a ``lengths`` parameter.

    Example:
        >>> from captum_rnn.data import planted_cues
        >>> from captum_rnn.models import RNNClassifier
        >>> data = planted_cues(64, seed=0)
        >>> model = RNNClassifier(2, vocab_size=len(data.vocab), hidden_size=8).eval()
        >>> nearest = NearestExamples(model, data.to_dataset(), batch_size=32)
        >>> indices, scores = nearest.influence(torch.tensor([[2, 5, 9]]), top_k=3)["pooled"]
        >>> indices.shape, scores.shape
        (torch.Size([1, 3]), torch.Size([1, 3]))
    """

    def __init__(
        self,
        model: nn.Module,
        train_dataset: Dataset,
        layers: str | Sequence[str] | None = None,
        metric: str = "cosine",
        batch_size: int = 256,
        index: str = "exact",
        *,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        sequence_pooling: str = "mean",
        store_path: str | os.PathLike[str] | None = None,
        search_device: str | torch.device | None = None,
        chunk_size: int = 65536,
        index_options: dict[str, Any] | None = None,
        call: str | int = "last",
        **hints: Any,
    ) -> None:
        # a model the contract cannot read (and no hints) is called as is
        model, seq = readable_module(model, **hints)
        if not (hasattr(train_dataset, "__getitem__") and hasattr(train_dataset, "__len__")):
            raise TypeError(
                "train_dataset must be a map-style Dataset with __getitem__ and __len__, "
                f"got {type(train_dataset).__name__}"
            )
        if len(train_dataset) == 0:
            raise ValueError("train_dataset is empty")
        modules = dict(model.named_modules())
        if layers is None:
            if not _has_encode(model):
                raise ValueError(
                    "layers=None uses model.encode, which this model does not have: name "
                    "the layers to encode, e.g. layers=['representation']"
                )
            names = None
        else:
            names = [layers] if isinstance(layers, str) else list(layers)
            if not names or not all(isinstance(n, str) for n in names):
                raise ValueError(f"layers must be a layer name or a list of names, got {layers!r}")
            if len(set(names)) != len(names):
                raise ValueError(f"layers holds duplicates: {names}")
            for full in names:
                name, part = _split_layer(full)
                if name not in modules or name == "":
                    raise ValueError(
                        f"layers: model has no submodule {name!r}; known: "
                        f"{sorted(n for n in modules if n)[:20]}"
                    )
                if part == "output" and isinstance(modules[name], nn.RNNBase):
                    raise ValueError(
                        f"layers: {name!r} is a {type(modules[name]).__name__}, which returns a "
                        "tuple; tap a tensor instead (e.g. an nn.Identity such as "
                        "'step_states' or 'representation', or the next layer's input "
                        "such as 'fc:input')"
                    )
        batch_size = check_int("batch_size", batch_size, 1)
        if index not in ("exact", "faiss", "hnsw"):
            raise ValueError(f"index must be 'exact', 'faiss' or 'hnsw', got {index!r}")
        if sequence_pooling not in _POOLINGS:
            raise ValueError(
                f"sequence_pooling must be one of {_POOLINGS}, got {sequence_pooling!r}"
            )
        chunk_size = check_int("chunk_size", chunk_size, 1)
        self.model = model
        self.train_dataset = train_dataset
        self.layers = names
        self.metric = check_metric(metric)
        self.batch_size = batch_size
        self.index = index
        if collate_fn is None:  # pad as the model pads: its pad id, not always 0
            pad = seq.pad_id if seq is not None and seq.is_token_model else None
            collate_fn = pad_collate if not pad else PadCollate(padding_value=pad)
        self.collate_fn = collate_fn
        self.sequence_pooling = sequence_pooling
        self.store_path = store_path
        self.search_device = search_device
        self.chunk_size = chunk_size
        self.index_options = dict(index_options or {})
        self.call = _check_call(call)
        self.seq = seq
        self._padding_read: bool | None = None  # see _reads_padding
        self._modules = {
            full: (modules[_split_layer(full)[0]], _split_layer(full)[1]) for full in names or ()
        }
        self._pass_lengths = _accepts_lengths(model)
        if seq is not None and seq.output is not None:
            self._regression = seq.output == "regression"
        else:
            self._regression = _is_regressor(model)
        self.store_: ExampleStore | None = None
        self.calibration_: _Calibration | None = None
        self._indexes: dict[str, Any] = {}
        self._prototypes: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def layer_names(self) -> list[str]:
        """The keys of :meth:`influence`'s result."""
        return [POOLED] if self.layers is None else list(self.layers)

    @property
    def store(self) -> ExampleStore:
        """The tensor store (encodes the training set on first access)."""
        if self.store_ is None:
            self.fit()
        return self.store_  # type: ignore[return-value]

    @property
    def is_classifier(self) -> bool:
        """True when the stored predictions are classes (integers)."""
        return not np.issubdtype(self.store.predictions.dtype, np.floating)

    def _device(self) -> torch.device:
        param = next(self.model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def __repr__(self) -> str:
        state = "not encoded" if self.store_ is None else repr(self.store_)
        return (
            f"NearestExamples(layers={self.layer_names}, metric={self.metric!r}, "
            f"index={self.index!r}, {state})"
        )

    # ------------------------------------------------------------------ encoding
    def _run(self, inputs: tuple[Tensor, ...], extra: tuple[Any, ...], lengths: Any) -> Any:
        """Call the model: through the contract when it reads the model, else as is."""
        if (
            self.seq is not None
            and len(inputs) == 1
            and (not extra or (len(extra) == 1 and extra[0] is lengths))
        ):
            return self.seq(inputs[0], lengths)
        args = inputs + extra
        if not extra and lengths is not None and self._pass_lengths:
            args = args + (lengths,)
        return self.model(*args)

    def _forward(
        self,
        inputs: tuple[Tensor, ...],
        extra: tuple[Any, ...],
        lengths: Tensor | None,
        time: int | None,
        real: Tensor | None = None,
    ) -> tuple[dict[str, Tensor], Tensor]:
        """One forward pass: the vectors of every layer ``(batch, dim)`` and the predictions.
        Per-step layers are pooled over the ``real`` steps (``(batch, time)``), else over
        the first ``lengths`` steps.

        Every call of a hooked layer is recorded; ``self.call`` picks the one kept.
        """
        captured: dict[str, Any] = {}
        calls: dict[str, list[Any]] = {name: [] for name in self._modules}
        handles = []

        def hook(name: str, part: str) -> Callable[..., None]:
            def record(module: nn.Module, args: Any, output: Any) -> None:
                if part == "input":
                    value = args[0] if isinstance(args, tuple) and args else None
                else:
                    value = output
                if isinstance(value, Tensor):
                    value = value.detach()
                calls[name].append(value)

            return record

        with contextlib.ExitStack() as stack:
            stack.enter_context(_encoding_mode(self.model))
            try:
                if self.layers is None:
                    stack.enter_context(_capture_encode(self.model, captured))
                for name, (module, part) in self._modules.items():
                    handles.append(module.register_forward_hook(hook(name, part)))
                outputs = self._run(inputs, extra, lengths)
                if self.layers is None and POOLED not in captured:
                    args = inputs + extra
                    if not extra and lengths is not None and self._pass_lengths:
                        args = args + (lengths,)
                    captured[POOLED] = _pooled_of(self.model.encode(*args))
            finally:
                for handle in handles:
                    handle.remove()
        for name, values in calls.items():
            captured[name] = self._select_call(name, values)
        batch = inputs[0].shape[0]
        vectors = {
            name: self._flatten(name, captured.get(name), lengths, time, batch, real)
            for name in self.layer_names
        }
        return vectors, self._predictions(outputs)

    def _select_call(self, name: str, values: list[Any]) -> Any:
        if not values:
            return None
        if self.call == "last":
            return values[-1]
        if self.call == "mean":
            if len(values) == 1 or not all(isinstance(v, Tensor) for v in values):
                return (
                    values[0]
                    if len(values) == 1
                    else next(v for v in values if not isinstance(v, Tensor))
                )
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise ValueError(
                    f"call='mean': layer {name!r} ran {len(values)} times with different "
                    f"shapes {sorted(shapes)}; pick one call with call=<int>"
                )
            return torch.stack([v.float() for v in values]).mean(dim=0)
        index = int(self.call)
        if not -len(values) <= index < len(values):
            raise ValueError(
                f"call={index} is out of range: layer {name!r} ran {len(values)} time(s) in "
                f"the forward pass, so call must be in [-{len(values)}, {len(values)})"
            )
        return values[index]

    def _flatten(
        self,
        name: str,
        value: Any,
        lengths: Tensor | None,
        time: int | None,
        batch: int | None = None,
        real: Tensor | None = None,
    ) -> Tensor:
        if value is None:
            raise RuntimeError(f"layer {name!r} did not run during the forward pass")
        if not isinstance(value, Tensor):
            raise TypeError(
                f"layer {name!r} returned a {type(value).__name__}, not a tensor; tap a tensor "
                "with an nn.Identity (e.g. 'representation') instead"
            )
        value = value.detach()
        if (
            value.dim() == 3
            and self.seq is not None
            and not self.seq.batch_first
            and time is not None
            and value.shape[0] == time
            and value.shape[1] == batch
        ):
            value = value.transpose(0, 1)  # a time-major model's per-step output
        if value.dim() == 3 and time is not None and value.shape[1] == time:
            value = self._pool_steps(value, lengths, real)
        return value.reshape(value.shape[0], -1).float()

    def _pool_steps(
        self, states: Tensor, lengths: Tensor | None, real: Tensor | None = None
    ) -> Tensor:
        batch, time = states.shape[:2]
        steps = torch.arange(time, device=states.device)
        if real is not None:
            mask = real.to(states.device)
        elif lengths is not None:
            mask = steps[None, :] < lengths.to(states.device).long()[:, None]
        else:
            mask = torch.ones(batch, time, dtype=torch.bool, device=states.device)
        if self.sequence_pooling == "mean":
            summed = states.masked_fill(~mask[..., None], 0.0).sum(dim=1)
            return summed / mask.sum(dim=1, keepdim=True).clamp_min(1).to(states.dtype)
        if self.sequence_pooling == "last":  # the last real step, wherever padding stands
            last = (mask * (steps + 1)).amax(dim=1).clamp_min(1) - 1
            return states[torch.arange(batch, device=states.device), last]
        return states.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)

    def _predictions(self, outputs: Any) -> Tensor:
        if isinstance(outputs, (tuple, list)) and outputs:
            outputs = outputs[0]
        if not isinstance(outputs, Tensor):
            raise TypeError(f"the model must return a tensor, got {type(outputs).__name__}")
        outputs = outputs.detach()
        if (
            not self._regression
            and outputs.dim() == 2
            and outputs.shape[1] > 1
            and outputs.is_floating_point()
        ):
            return outputs.argmax(dim=1)
        flat = outputs.reshape(outputs.shape[0], -1).float()
        return flat[:, 0] if flat.shape[1] == 1 else flat

    def _unpack(self, batch: Any) -> tuple[tuple[Tensor, ...], Tensor | None, Tensor | None]:
        from captum_rnn.models.recurrent import RecurrentModel

        inputs, lengths, targets = RecurrentModel.unpack_batch(batch)
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        return inputs, lengths, targets

    def _encode_dataset(
        self, dataset: Dataset, path: str | os.PathLike[str] | None = None
    ) -> ExampleStore:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(
                f"the data set must be map-style with len(), got {type(dataset).__name__}"
            )
        if len(dataset) == 0:
            raise ValueError("the data set is empty")
        device = self._device()
        fingerprint = DataFingerprint()
        writer = StoreWriter(len(dataset), path)
        weights = model_fingerprint(self.model)
        # A private generator: the loader's base seed must not draw from the global RNG.
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=self.collate_fn,
            generator=torch.Generator(),
        )
        start = 0
        for batch in loader:
            inputs, lengths, targets = self._unpack(batch)
            fingerprint.update(inputs, lengths, targets)
            inputs = tuple(_to_device(x, device) for x in inputs)
            if lengths is None:
                lengths = self._query_lengths(inputs, ())
            real = self._checked_real_steps(inputs, lengths, "the data set's item", start)
            run_lengths = None if lengths is None else _to_device(lengths, device)
            vectors, predictions = self._encode_rows(inputs, (), run_lengths, real)
            writer.add(vectors, targets, predictions)
            start += inputs[0].shape[0]
        info = {
            "layers": self.layers,
            "metric": self.metric,
            "batch_size": self.batch_size,
            "sequence_pooling": self.sequence_pooling,
            "call": self.call,
        }
        return writer.finish(
            self.layer_names,
            model_fingerprint=weights,
            data_fingerprint=fingerprint.hexdigest(),
            info=info,
        )

    def fit(self) -> NearestExamples:
        """Encode the training set (again) and build the search indexes.

        Call it after the model's weights changed to refresh a stale store.

        Returns:
            ``self``.
        """
        self._set_store(self._encode_dataset(self.train_dataset, self.store_path))
        return self

    def _set_store(self, store: ExampleStore) -> None:
        if store.layers != self.layer_names:
            raise ValueError(f"the store holds layers {store.layers}, expected {self.layer_names}")
        self.store_ = store
        self.calibration_ = None
        self._prototypes = {}
        self._indexes = {}
        for name in store.layers:
            vectors = store.vectors[name]
            if self.index == "exact":
                device = self.search_device
                if device is None:
                    device = "cpu" if isinstance(vectors, np.memmap) else self._device()
                options = {"chunk_size": self.chunk_size, "device": device}
            else:
                options = {}
            options.update(self.index_options)
            self._indexes[name] = make_index(self.index, vectors, self.metric, **options)

    def _fresh_store(self) -> ExampleStore:
        store = self.store
        store.check_model(self.model)
        return store

    def encode(
        self, inputs: Tensor | tuple[Tensor, ...], additional_forward_args: Any = None
    ) -> tuple[dict[str, Tensor], Tensor]:
        """Encode query inputs as the store encodes the training set.

        Args:
            inputs: a batch as the model's ``forward`` takes it (``(time, batch)`` for a
                time-major model), any batch size.
            additional_forward_args: passed to ``forward`` after ``inputs`` (e.g. the
                lengths of continuous sequences).

        Returns:
            ``({layer: (batch, dim)}, predictions)`` on the model's device.
        """
        inputs = _as_input_tuple(inputs)
        if self.seq is not None and not self.seq.batch_first and inputs[0].dim() >= 2:
            # the model's own (time-major) layout in; batch-first inside, as the
            # training set is collated
            inputs = (self.seq.to_batch_first(inputs[0]), *inputs[1:])
        extra = _as_args_tuple(additional_forward_args)
        device = self._device()
        batch = inputs[0].shape[0]
        parts: list[tuple[dict[str, Tensor], Tensor]] = []
        for start in range(0, batch, self.batch_size):
            stop = start + self.batch_size
            rows = tuple(_to_device(_rows(x, start, stop, batch), device) for x in inputs)
            more = tuple(_to_device(_rows(a, start, stop, batch), device) for a in extra)
            lengths = self._query_lengths(rows, more)
            real = self._checked_real_steps(rows, lengths, "inputs row", start)
            parts.append(self._encode_rows(rows, more, lengths, real))
        vectors = {name: torch.cat([p[0][name] for p in parts]) for name in self.layer_names}
        return vectors, torch.cat([p[1] for p in parts])

    def _encode_rows(
        self,
        inputs: tuple[Tensor, ...],
        extra: tuple[Any, ...],
        lengths: Tensor | None,
        real: Tensor | None,
    ) -> tuple[dict[str, Tensor], Tensor]:
        """``_forward`` on a batch; for a model that reads its padding, each sequence is
        encoded as it is alone (its real steps only, sequences of one length per call), so
        that its vectors do not depend on how it was batched or padded."""
        time = inputs[0].shape[1] if inputs[0].dim() >= 2 else None
        plain = (
            self.seq is None
            or len(inputs) != 1
            or real is None
            or bool(real.all())
            or (extra and not (len(extra) == 1 and extra[0] is lengths))
        )
        if plain or not self._reads_padding(inputs[0], real):
            return self._forward(inputs, extra, lengths, time, real)
        x, counts = inputs[0], real.sum(dim=1)
        vectors: dict[str, list[Tensor | None]] = {
            name: [None] * len(x) for name in self.layer_names
        }
        predictions: list[Tensor | None] = [None] * len(x)
        for n in counts.unique().tolist():
            rows = (counts == n).nonzero().flatten().tolist()
            group = torch.stack([x[i][real[i]] for i in rows])
            n_lengths = torch.full((len(rows),), n, dtype=torch.long, device=x.device)
            got, predicted = self._forward((group,), (), n_lengths, n, None)
            for j, i in enumerate(rows):
                predictions[i] = predicted[j]
                for name in self.layer_names:
                    vectors[name][i] = got[name][j]
        return (
            {name: torch.stack(rows) for name, rows in vectors.items()},  # type: ignore[arg-type]
            torch.stack(predictions),  # type: ignore[arg-type]
        )

    def _reads_padding(self, x: Tensor, real: Tensor) -> bool:
        """Whether padding before or after a sequence changes its vectors (checked once, on
        the first padded row: a model told no lengths reads it, a one-way RNN under a mask
        reads padding in front, a bidirectional one padding behind)."""
        if self._padding_read is None:
            i = int((~real.all(dim=1)).nonzero()[0])
            alone = x[i][real[i]][None]
            n = alone.shape[1]
            fill = self.seq.pad_id if self.seq.is_token_model else 0
            pads = torch.full((1, 3, *alone.shape[2:]), fill, dtype=x.dtype, device=x.device)
            lengths = torch.tensor([n], device=x.device)
            steps = torch.arange(n + 3, device=x.device)[None, :]
            reference, _ = self._forward((alone,), (), lengths, n, None)
            self._padding_read = False
            for padded, mask in (
                (torch.cat([alone, pads], dim=1), steps < n),
                (torch.cat([pads, alone], dim=1), steps >= 3),
            ):
                if self.seq.is_token_model:
                    mask = None  # read off the ids
                got, _ = self._forward((padded,), (), lengths, n + 3, mask)
                if not all(
                    torch.allclose(reference[k], got[k], rtol=1e-4, atol=1e-5)
                    for k in self.layer_names
                ):
                    self._padding_read = True
        return self._padding_read

    def _real_steps(self, inputs: tuple[Tensor, ...], lengths: Any) -> Tensor | None:
        """``(batch, time)``, True at real steps: token ids' padding mask wherever the
        padding stands (left padding too), else the first ``lengths`` steps; ``None``
        when neither says."""
        x = inputs[0]
        seq = self.seq
        if seq is not None and seq.is_token_model and x.dim() == 2 and not x.is_floating_point():
            return seq.padding_mask(x)
        if isinstance(lengths, Tensor) and lengths.dim() == 1 and x.dim() >= 2:
            steps = torch.arange(x.shape[1], device=x.device)
            return steps[None, :] < lengths.to(x.device)[:, None]
        return None

    def _checked_real_steps(
        self, inputs: tuple[Tensor, ...], lengths: Any, what: str, start: int
    ) -> Tensor | None:
        real = self._real_steps(inputs, lengths)
        _check_rows(lengths if real is None else real.sum(dim=1), what, start)
        return real

    def _query_lengths(self, inputs: tuple[Tensor, ...], extra: tuple[Any, ...]) -> Tensor | None:
        batch = inputs[0].shape[0]
        for value in extra:
            if (
                isinstance(value, Tensor)
                and value.dim() == 1
                and value.shape[0] == batch
                and not value.dtype.is_floating_point
            ):
                return value
        x = inputs[0]
        seq = self.seq
        if (
            seq is not None
            and seq.is_token_model
            and x.dim() == 2
            and not x.dtype.is_floating_point
        ):
            return seq.lengths_of(x)
        return None

    # ------------------------------------------------------------------ search
    def _layer(self, layer: str | None) -> str:
        if layer is None:
            return self.layer_names[-1]
        if layer not in self.layer_names:
            raise ValueError(f"layer must be one of {self.layer_names}, got {layer!r}")
        return layer

    def _search(self, layer: str, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        index = self._indexes[layer]
        idx, scores = index.search(queries, k)
        return idx.cpu(), scores.cpu()

    def influence(  # type: ignore[override]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        top_k: int = 5,
        additional_forward_args: Any = None,
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """The ``top_k`` nearest training examples of each input, per layer.

        Args:
            inputs: a batch of any size, as the model's ``forward`` takes it.
            top_k: neighbours per input, at most the training set's size.
            additional_forward_args: passed to ``forward`` after ``inputs``.

        Returns:
            ``{layer_name: (indices, scores)}``, each ``(batch, top_k)`` on the CPU,
            nearest first: the shape of Captum's ``SimilarityInfluence``.

        Raises:
            StaleStoreError: the weights changed since the training set was encoded.
            ValueError: ``top_k`` out of range or malformed inputs.
        """
        store = self._fresh_store()
        top_k = check_top_k(top_k, len(store))
        vectors, _ = self.encode(inputs, additional_forward_args)
        return {name: self._search(name, vectors[name], top_k) for name in store.layers}

    def neighbors(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        top_k: int = 5,
        additional_forward_args: Any = None,
        layer: str | None = None,
    ) -> Neighbors:
        """Nearest training examples with their labels, predictions and agreement.

        Args:
            inputs: a batch, as the model's ``forward`` takes it.
            top_k: neighbours per input.
            additional_forward_args: passed to ``forward`` after ``inputs``.
            layer: which layer to search (default: the last of ``layer_names``).

        Returns:
            A :class:`Neighbors`; ``novelty`` is filled after :meth:`calibrate`.

        Example:
            >>> result = nearest.neighbors(batch, top_k=5)  # doctest: +SKIP
            >>> result.agreement  # share of neighbours labelled as the prediction  # doctest: +SKIP
        """
        store = self._fresh_store()
        layer = self._layer(layer)
        top_k = check_top_k(top_k, len(store))
        vectors, query_predictions = self.encode(inputs, additional_forward_args)
        query_predictions = query_predictions.cpu()
        indices, scores = self._search(layer, vectors[layer], top_k)
        labels = store.labels_tensor()
        neighbor_labels = None if labels is None else labels[indices]
        neighbor_predictions = store.predictions_tensor()[indices]
        agreement = prediction_agreement = None
        if self.is_classifier:
            expected = query_predictions[:, None]
            prediction_agreement = (neighbor_predictions == expected).float().mean(dim=1)
            if neighbor_labels is not None and neighbor_labels.dim() == 2:
                agreement = (neighbor_labels == expected).float().mean(dim=1)
        novelty = None
        if self.calibration_ is not None:
            novelty = self._novelty_from_vectors(vectors, layer)
        return Neighbors(
            layer=layer,
            indices=indices,
            scores=scores,
            labels=neighbor_labels,
            predictions=neighbor_predictions,
            query_predictions=query_predictions,
            agreement=agreement,
            prediction_agreement=prediction_agreement,
            novelty=novelty,
        )

    def _distance(self, scores: Tensor) -> Tensor:
        if self.metric == "cosine":
            return 1.0 - scores
        if self.metric == "dot":
            return -scores
        return scores

    def _search_rows(
        self, layer: str, vectors: np.ndarray | Tensor, k: int
    ) -> tuple[Tensor, Tensor]:
        """Search many stored/encoded vectors as queries, a block of rows at a time."""
        device = self._device() if self.search_device is None else torch.device(self.search_device)
        parts = []
        for start in range(0, len(vectors), _QUERY_ROWS):
            block = torch.as_tensor(np.asarray(vectors[start : start + _QUERY_ROWS]))
            parts.append(self._search(layer, block.to(device), k))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _class_labels(self, store: ExampleStore, what: str) -> Tensor:
        labels = store.labels_tensor()
        if labels is None or labels.dim() != 1 or labels.dtype.is_floating_point:
            raise ValueError(f"{what} needs integer class labels (batch,), the data have none")
        return labels.long()

    def _num_classes(self) -> int:
        labels = self._class_labels(self.store, "this")
        return int(max(int(labels.max()), int(self.store.predictions_tensor().max()))) + 1

    # ------------------------------------------------------------------ calibration
    def calibrate(self, calibration_dataset: Dataset, top_k: int | None = None) -> NearestExamples:
        """Calibrate novelty and Deep k-NN credibility on held-out labelled data.

        Args:
            calibration_dataset: held-out ``(sequence, target)`` items, never used for
                training (Papernot and McDaniel use about 10% of the test distribution).
            top_k: neighbours per layer, default ``min(75, len(train_dataset))`` (the
                paper's k); the same k is used by :meth:`credibility` and :meth:`novelty`.

        Returns:
            ``self``.
        """
        store = self._fresh_store()
        k = min(75, len(store)) if top_k is None else check_top_k(top_k, len(store))
        encoded = self._encode_dataset(calibration_dataset)
        distances: dict[str, Tensor] = {}
        neighbor_labels = []
        train_labels = store.labels_tensor()
        for name in store.layers:
            idx, scores = self._search_rows(name, encoded.vectors[name], k)
            distances[name] = self._distance(scores[:, -1])
            if train_labels is not None:
                neighbor_labels.append(train_labels[idx])
        nonconformity, num_classes = None, 0
        if self.is_classifier and train_labels is not None and train_labels.dim() == 1:
            truth = encoded.labels_tensor()
            if truth is None or truth.dim() != 1 or truth.dtype.is_floating_point:
                raise ValueError("calibration_dataset must hold integer class targets")
            num_classes = max(self._num_classes(), int(truth.max()) + 1)
            alpha = _credibility.knn_nonconformity([x.long() for x in neighbor_labels], num_classes)
            nonconformity = alpha.gather(1, truth.long()[:, None])[:, 0]
        self.calibration_ = _Calibration(k, distances, nonconformity, num_classes)
        return self

    def _calibration(self) -> _Calibration:
        self._fresh_store()
        if self.calibration_ is None:
            raise RuntimeError("call calibrate(calibration_dataset) first")
        return self.calibration_

    def _novelty_from_vectors(self, vectors: dict[str, Tensor], layer: str) -> Tensor:
        calibration = self._calibration()
        _, scores = self._search(layer, vectors[layer], calibration.k)
        return _credibility.novelty_scores(
            self._distance(scores[:, -1]), calibration.distances[layer]
        )

    def novelty(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        additional_forward_args: Any = None,
        layer: str | None = None,
    ) -> Tensor:
        """Calibrated novelty: share of held-out data closer to their k-th training neighbour.

        Args:
            inputs: a batch.
            additional_forward_args: passed to ``forward`` after ``inputs``.
            layer: the layer (default: the last of ``layer_names``).

        Returns:
            ``(batch,)`` scores in ``[0, 1]``; near 1 means unlike anything held out.
        """
        self._calibration()
        vectors, _ = self.encode(inputs, additional_forward_args)
        return self._novelty_from_vectors(vectors, self._layer(layer))

    def credibility(
        self, inputs: Tensor | tuple[Tensor, ...], additional_forward_args: Any = None
    ) -> Credibility:
        """Deep k-NN (Papernot and McDaniel 2018) over every encoded layer.

        Args:
            inputs: a batch.
            additional_forward_args: passed to ``forward`` after ``inputs``.

        Returns:
            A :class:`~captum_rnn.influence.Credibility` with conformal p-values per class,
            the Deep k-NN prediction, its credibility and confidence.
        """
        calibration = self._calibration()
        if calibration.nonconformity is None:
            raise ValueError("credibility needs integer class labels in both data sets")
        store = self.store
        labels = self._class_labels(store, "credibility")
        vectors, _ = self.encode(inputs, additional_forward_args)
        neighbor_labels = [
            labels[self._search(name, vectors[name], calibration.k)[0]] for name in store.layers
        ]
        return _credibility.deep_knn_credibility(
            neighbor_labels, calibration.nonconformity, calibration.num_classes
        )

    # ------------------------------------------------------------------ training-set scores
    def label_disagreement(self, top_k: int = 10, layer: str | None = None) -> Tensor:
        """For every training example, the share of its nearest other examples labelled differently.

        High scores flag training examples whose label disagrees with their
        neighbourhood: candidates for mislabelled data.

        Args:
            top_k: neighbours per example (the example itself is left out).
            layer: the layer (default: the last of ``layer_names``).

        Returns:
            ``(n,)`` float tensor in ``[0, 1]``.
        """
        store = self._fresh_store()
        layer = self._layer(layer)
        labels = self._class_labels(store, "label_disagreement")
        top_k = check_top_k(top_k, len(store) - 1) if len(store) > 1 else check_top_k(top_k, 0)
        idx, _ = self._search_rows(layer, store.vectors[layer], top_k + 1)
        rows = torch.arange(len(store))[:, None]
        is_self = idx == rows
        missing = ~is_self.any(dim=1)
        is_self[missing, -1] = True  # a duplicate outranked the example: drop the last
        others = idx[~is_self].view(len(store), top_k)
        return (labels[others] != labels[:, None]).float().mean(dim=1)

    # ------------------------------------------------------------------ MMD-critic
    def _kernel_space(self, vectors: Any) -> Tensor:
        x = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
        if self.metric == "cosine":
            x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return x

    def prototypes(
        self,
        k_per_class: int = 5,
        layer: str | None = None,
        gamma: float | None = None,
        max_samples: int = 4096,
        seed: int = 0,
    ) -> Tensor:
        """MMD-critic prototypes (Kim, Khanna and Koyejo 2016), chosen per class.

        Vectors are compared with an RBF kernel (on unit vectors for ``metric="cosine"``);
        ``gamma`` defaults to the median heuristic.

        Args:
            k_per_class: prototypes per class (fewer for a class with fewer examples).
            layer: the layer (default: the last of ``layer_names``).
            gamma: RBF kernel parameter.
            max_samples: reference sample size for the data mean (bounds memory and time).
            seed: sampling seed.

        Returns:
            LongTensor of training indices, grouped by class in increasing class order,
            in greedy order within each class.
        """
        store = self._fresh_store()
        layer = self._layer(layer)
        k_per_class = check_int("k_per_class", k_per_class, 1)
        max_samples = check_int("max_samples", max_samples, 1)
        labels = self._class_labels(store, "prototypes")
        x = self._kernel_space(store.vectors[layer])
        gamma = _prototypes.median_gamma(x, seed=seed) if gamma is None else float(gamma)
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        chosen, per_class = [], {}
        for label in torch.unique(labels).tolist():
            members = torch.nonzero(labels == label)[:, 0]
            order = _prototypes.mmd_prototypes(
                x[members], min(k_per_class, len(members)), gamma, max_samples, seed
            )
            per_class[label] = members[order]
            chosen.append(members[order])
        result = torch.cat(chosen)
        self._prototypes[layer] = {
            "gamma": gamma,
            "per_class": per_class,
            "indices": result,
            "max_samples": max_samples,
            "seed": seed,
        }
        return result

    def criticisms(
        self,
        k: int = 5,
        layer: str | None = None,
        regularizer: str = "logdet",
        sign: str = "absolute",
    ) -> Tensor:
        """MMD-critic criticisms: training examples the prototypes represent worst.

        The witness function of each example is computed within its own class (its
        class's data against its class's prototypes); the ``k`` criticisms are then
        chosen greedily over all classes by ``|witness|`` plus a log-determinant
        diversity term. Uses the last :meth:`prototypes` of the layer (computing
        5 per class if there are none).

        Args:
            k: number of criticisms.
            layer: the layer (default: the last of ``layer_names``).
            regularizer: ``"logdet"`` (diverse criticisms) or ``"none"``.
            sign: ``"absolute"`` (Kim et al.'s ``|witness|``: regions the prototypes
                under- or over-represent; when prototypes miss a group, the rest of its
                class is over-represented by as much) or ``"positive"`` (only examples
                unlike any prototype of their class).

        Returns:
            LongTensor ``(k,)`` of training indices, in greedy order.
        """
        store = self._fresh_store()
        layer = self._layer(layer)
        if layer not in self._prototypes:
            self.prototypes(layer=layer)
        state = self._prototypes[layer]
        labels = self._class_labels(store, "criticisms")
        x = self._kernel_space(store.vectors[layer])
        gamma = state["gamma"]
        values = torch.zeros(len(x))
        generator = torch.Generator().manual_seed(state["seed"])
        for label, protos in state["per_class"].items():
            members = torch.nonzero(labels == label)[:, 0]
            reference = members
            if len(members) > state["max_samples"]:
                reference = members[
                    torch.randperm(len(members), generator=generator)[: state["max_samples"]]
                ]
            values[members] = _prototypes.witness(x[members], x[reference], x[protos], gamma)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int (criticisms to choose), got {k!r}")
        return _prototypes.mmd_criticisms(
            x, values, k, gamma, exclude=state["indices"], regularizer=regularizer, sign=sign
        )

    def prototype_accuracy(
        self,
        dataset: Dataset | None = None,
        k_per_class: int = 5,
        layer: str | None = None,
    ) -> PrototypeEvaluation:
        """Accuracy of the nearest-prototype classifier against the model's own.

        Args:
            dataset: labelled ``(sequence, target)`` items to evaluate on (held-out data);
                ``None`` evaluates on the training set.
            k_per_class: prototypes per class (see :meth:`prototypes`).
            layer: the layer (default: the last of ``layer_names``).

        Returns:
            A :class:`PrototypeEvaluation`.
        """
        store = self._fresh_store()
        layer = self._layer(layer)
        protos = self.prototypes(k_per_class, layer)
        train_labels = self._class_labels(store, "prototype_accuracy")
        evaluated = store if dataset is None else self._encode_dataset(dataset)
        truth = self._class_labels(evaluated, "prototype_accuracy")
        model_predictions = evaluated.predictions_tensor().long()
        x_train = self._kernel_space(store.vectors[layer])
        queries = self._kernel_space(evaluated.vectors[layer])
        predicted = _prototypes.nearest_prototype_predict(
            queries, x_train[protos], train_labels[protos], "euclidean"
        )
        counts = torch.bincount(truth)
        return PrototypeEvaluation(
            prototype_accuracy=float((predicted == truth).float().mean()),
            model_accuracy=float((model_predictions == truth).float().mean()),
            agreement=float((predicted == model_predictions).float().mean()),
            majority_baseline=float(counts.max()) / len(truth),
            num_prototypes=len(protos),
            num_examples=len(truth),
        )

    # ------------------------------------------------------------------ disk
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the store to directory ``path`` (``.npy`` files and JSON, no pickle).

        Calibration and prototypes are not saved.
        """
        self.store.save(path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: nn.Module,
        train_dataset: Dataset,
        *,
        mmap: bool = True,
        verify_data: bool = False,
        **kwargs: Any,
    ) -> NearestExamples:
        """Open a saved store for ``model`` and ``train_dataset`` without re-encoding.

        Args:
            path: the directory written by :meth:`save` (or used as ``store_path``).
            model: the model; its weights must be those the store was built with.
            train_dataset: the data set the store was built from.
            mmap: memory-map the vectors instead of reading them into memory.
            verify_data: re-hash ``train_dataset`` (no forward pass) and compare.
            **kwargs: constructor arguments (``layers``, ``metric``, ``batch_size``,
                ``sequence_pooling`` and ``call`` default to the saved ones; a
                ``layers``, ``sequence_pooling`` or ``call`` other than the store's is a
                ``ValueError``: its vectors were encoded with those).

        Raises:
            StaleStoreError: the model's weights differ from the encoder's.
            ValueError: the data differ (with ``verify_data``) or the store is malformed.
        """
        store = ExampleStore.load(path, mmap=mmap)
        for key in ("layers", "metric", "batch_size", "sequence_pooling", "call"):
            if key in store.info:
                kwargs.setdefault(key, store.info[key])
        nearest = cls(model, train_dataset, **kwargs)
        for key in ("layers", "sequence_pooling", "call"):  # what the vectors depend on
            if key in store.info and _plain_json(getattr(nearest, key)) != store.info[key]:
                raise ValueError(
                    f"the store was encoded with {key}={store.info[key]!r}, not "
                    f"{kwargs[key]!r}: pass {key}={store.info[key]!r} or fit a new store"
                )
        store.check_model(model)
        if len(store) != len(train_dataset):
            raise ValueError(
                f"the store holds {len(store)} examples, train_dataset {len(train_dataset)}"
            )
        if verify_data:
            fingerprint = DataFingerprint()
            loader = DataLoader(
                train_dataset,
                batch_size=store.info.get("batch_size", nearest.batch_size),
                shuffle=False,
                collate_fn=nearest.collate_fn,
                generator=torch.Generator(),
            )
            for batch in loader:
                fingerprint.update(*nearest._unpack(batch))
            if fingerprint.hexdigest() != store.data_fingerprint:
                raise ValueError("train_dataset differs from the data the store was built from")
        nearest._set_store(store)
        return nearest
