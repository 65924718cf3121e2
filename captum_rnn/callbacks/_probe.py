"""The fixed probe set a callback explains: resolved once from what the user gave.

``samples`` may be sequences (strings with a vocabulary, lists of token ids, 1-D id
tensors, 2-D ``(time, features)`` tensors), a padded batch (a tensor or an
``(inputs, lengths, targets)`` tuple as ``pad_collate`` returns), a ``DataLoader``, a
map-style ``Dataset``, or indices into the validation set (a ``range`` or a flat list
of ints; wrap a single id sequence in a list to explain it instead).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "Probe",
    "default_batch_to_inputs",
    "is_index_spec",
    "resolve_probe",
    "unpack_batch",
]


@dataclass
class Probe:
    """A padded probe batch on the CPU.

    Attributes:
        inputs: token ids ``(n, time)`` or features ``(n, time, features)``.
        lengths: true lengths ``(n,)``.
        labels: true labels when known (one per sequence), else ``None``.
        indices: dataset indices when the probe was given as indices.
    """

    inputs: Tensor
    lengths: Tensor
    labels: list[Any] | None = None
    indices: list[int] | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def is_index_spec(samples: Any) -> bool:
    """True when ``samples`` reads as indices into a data set (a range or flat ints)."""
    if isinstance(samples, range):
        return True
    return (
        isinstance(samples, (list, tuple)) and len(samples) > 0 and all(_is_int(s) for s in samples)
    )


#: Dict keys read as the inputs, the lengths and the labels of a batch or an item.
INPUT_KEYS = (
    "inputs",
    "input",
    "input_ids",
    "ids",
    "x",
    "features",
    "text",
    "tokens",
    "src",
    "sequence",
    "sequences",
    "data",
)
LENGTH_KEYS = ("lengths", "length", "text_lengths", "seq_len", "seq_lens", "lens", "src_len")
LABEL_KEYS = ("targets", "target", "labels", "label", "y", "class", "classes")


def _first_key(batch: Mapping, keys: Sequence[str]) -> Any:
    return next((batch[k] for k in keys if k in batch), None)


def default_batch_to_inputs(batch: Any) -> tuple[Any, Any, Any]:
    """Split a batch into ``(inputs, lengths or None, labels or None)``.

    Understands a bare tensor, ``(inputs,)``, ``(inputs, labels)``, ``(inputs, lengths,
    labels)`` and dicts with common keys (:data:`INPUT_KEYS`, :data:`LENGTH_KEYS`,
    :data:`LABEL_KEYS`).

    Raises:
        ValueError: for any other batch, naming ``batch_to_inputs=``.
    """
    if isinstance(batch, Tensor):
        return batch, None, None
    if isinstance(batch, Mapping):
        inputs = _first_key(batch, INPUT_KEYS)
        if inputs is not None:
            return inputs, _first_key(batch, LENGTH_KEYS), _first_key(batch, LABEL_KEYS)
    elif isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        if len(batch) == 2:
            return batch[0], None, batch[1]
        return batch[0], None, None
    keys = f" with keys {sorted(map(str, batch))}" if isinstance(batch, Mapping) else ""
    raise ValueError(
        f"cannot read a batch of type {type(batch).__name__}{keys}: pass "
        "batch_to_inputs=callable(batch) -> (inputs, lengths or None, labels or None)"
    )


def unpack_batch(batch: Any, batch_to_inputs: Any = None) -> tuple[Tensor, Any, Any]:
    """``(inputs, lengths, labels)`` of ``batch`` by ``batch_to_inputs`` or the default."""
    split = batch_to_inputs or default_batch_to_inputs
    got = split(batch)
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise ValueError(
            "batch_to_inputs must return (inputs, lengths or None, labels or None), "
            f"got {type(got).__name__}"
        )
    return got[0], got[1], got[2]


def _split_item(item: Any) -> tuple[Any, Any]:
    """A dataset item or list element: ``(sequence, label)`` or a bare sequence."""
    if isinstance(item, Mapping):
        inputs = _first_key(item, INPUT_KEYS)
        if inputs is None:
            raise ValueError(
                f"cannot find the sequence in a dataset item with keys {sorted(map(str, item))}: "
                f"name it one of {list(INPUT_KEYS)}"
            )
        return inputs, _first_key(item, LABEL_KEYS)
    if isinstance(item, tuple) and len(item) == 2 and not _is_int(item[0]):
        return item[0], item[1]
    return item, None


def _sequence(item: Any, vocab: Any, name: str) -> Tensor:
    if isinstance(item, str):
        if vocab is None:
            raise TypeError(f"{name} is a string: pass vocab= to turn it into token ids")
        item = vocab.encode(item)
    seq = torch.as_tensor(item)
    if seq.dim() not in (1, 2) or seq.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D id sequence or 2-D (time, features), "
            f"got shape {tuple(seq.shape)}"
        )
    if seq.dim() == 1 and seq.dtype.is_floating_point:
        raise TypeError(f"{name} is 1-D floats: token ids must be integers")
    return seq.detach().cpu()


def _pad(sequences: list[Tensor], padding_idx: int) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.long)
    value = padding_idx if sequences[0].dim() == 1 else 0.0
    return pad_sequence(sequences, batch_first=True, padding_value=value), lengths


def _from_batch(
    batch: Any, padding_idx: int, limit: int, batch_to_inputs: Any = None, batch_first: bool = True
) -> tuple[list[Tensor], list[Any] | None]:
    inputs, lengths, targets = unpack_batch(batch, batch_to_inputs)
    inputs = torch.as_tensor(inputs).detach().cpu()
    if not batch_first and inputs.dim() >= 2:
        inputs = inputs.transpose(0, 1)  # the model's time-major layout -> batch-first
    if inputs.dim() == 1:
        inputs = inputs.unsqueeze(0)
    if lengths is None:
        if inputs.dtype.is_floating_point:
            lengths = torch.full((inputs.shape[0],), inputs.shape[1], dtype=torch.long)
        else:
            real = (inputs != padding_idx).long() * torch.arange(1, inputs.shape[1] + 1)
            lengths = real.amax(dim=1).clamp_min(1)
    lengths = torch.as_tensor(lengths).cpu()
    count = min(limit, inputs.shape[0])
    sequences = [inputs[i, : int(lengths[i])] for i in range(count)]
    labels = None if targets is None else [_label(targets[i]) for i in range(count)]
    return sequences, labels


def _is_batch(samples: Any) -> bool:
    """A tensor, a dict with ``inputs``, or an ``(inputs, [lengths,] targets)`` tuple."""
    if isinstance(samples, Tensor):
        return True
    if isinstance(samples, Mapping):
        return any(k in samples for k in INPUT_KEYS)
    if isinstance(samples, tuple) and len(samples) in (2, 3) and isinstance(samples[0], Tensor):
        first = samples[0]
        return first.dim() == 3 or (first.dim() == 2 and not first.dtype.is_floating_point)
    return False


def _label(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def _stage_dataset(trainer: Any, stage: str) -> Any:
    attribute = "test_dataloaders" if stage == "test" else "val_dataloaders"
    loaders = getattr(trainer, attribute, None)
    if isinstance(loaders, Sequence) and not isinstance(loaders, DataLoader):
        loaders = loaders[0] if len(loaders) else None
    dataset = getattr(loaders, "dataset", None)
    if dataset is None:
        which = "test" if stage == "test" else "validation"
        raise ValueError(
            f"samples are indices into the {which} set, but the trainer has no {which} "
            "DataLoader over a map-style dataset; pass the sequences or a DataLoader instead"
        )
    return dataset


def resolve_probe(
    samples: Any,
    *,
    max_samples: int,
    padding_idx: int = 0,
    vocab: Any = None,
    trainer: Any = None,
    stage: str = "validate",
    batch_to_inputs: Any = None,
    batch_first: bool = True,
) -> Probe:
    """Turn ``samples`` into a padded :class:`Probe` of at most ``max_samples`` sequences.

    Args:
        samples: see the module docstring.
        max_samples: keep at most this many sequences.
        padding_idx: the padding id for token sequences.
        vocab: encodes string samples.
        trainer: needed when ``samples`` are indices (to find the validation/test set).
        stage: ``"validate"`` or ``"test"``: which set indices refer to.
        batch_to_inputs: splits a batch (a given one, or the loader's) into
            ``(inputs, lengths or None, labels or None)``; default
            :func:`default_batch_to_inputs`.
        batch_first: the layout of batches (``False``: time-major, as the model reads them).

    Returns:
        A :class:`Probe` on the CPU.

    Raises:
        TypeError/ValueError: naming ``samples`` when it cannot be read.
    """
    sequences: list[Tensor] = []
    labels: list[Any] | None = []
    indices = None
    if is_index_spec(samples):
        dataset = _stage_dataset(trainer, stage)
        indices = [operator.index(i) for i in samples][:max_samples]
        size = len(dataset)
        for i in indices:
            if not -size <= i < size:
                raise ValueError(f"samples index {i} is outside the data set of {size} items")
        for i in indices:
            seq, label = _split_item(dataset[i])
            sequences.append(_sequence(seq, vocab, f"dataset[{i}]"))
            labels.append(_label(label))
    elif isinstance(samples, str):
        sequences.append(_sequence(samples, vocab, "samples"))
    elif _is_batch(samples) or (batch_to_inputs is not None and isinstance(samples, Mapping)):
        sequences, labels = _from_batch(
            samples, padding_idx, max_samples, batch_to_inputs, batch_first
        )
    elif isinstance(samples, DataLoader):
        for batch in samples:
            got, got_labels = _from_batch(
                batch, padding_idx, max_samples - len(sequences), batch_to_inputs, batch_first
            )
            sequences.extend(got)
            if labels is not None and got_labels is not None:
                labels.extend(got_labels)
            else:
                labels = None
            if len(sequences) >= max_samples:
                break
    elif isinstance(samples, Dataset) and hasattr(samples, "__len__"):
        for i in range(min(max_samples, len(samples))):
            seq, label = _split_item(samples[i])
            sequences.append(_sequence(seq, vocab, f"samples[{i}]"))
            labels.append(_label(label))
    elif isinstance(samples, Sequence):
        for i, item in enumerate(list(samples)[:max_samples]):
            seq, label = _split_item(item)
            sequences.append(_sequence(seq, vocab, f"samples[{i}]"))
            labels.append(_label(label))
    else:
        raise TypeError(
            "samples must be sequences, a padded batch, a DataLoader, a Dataset or indices "
            f"into the validation set, got {type(samples).__name__}"
        )
    if not sequences:
        raise ValueError("samples is empty: give at least one sequence to explain")
    kinds = {s.dim() for s in sequences}
    if len(kinds) != 1:
        raise ValueError("samples mix token ids and continuous sequences")
    if labels is not None and all(label is None for label in labels):
        labels = None
    inputs, lengths = _pad(sequences, padding_idx)
    return Probe(inputs, lengths, labels, indices)
