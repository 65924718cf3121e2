"""Variable-length sequence datasets and the padding collate functions.

A batch is always the triple ``(inputs, lengths, targets)``:

- ``inputs``: token ids ``(batch, time)`` (long) or features ``(batch, time, features)``
  (float), right-padded, batch first;
- ``lengths``: the true lengths, a LongTensor ``(batch,)``;
- ``targets``: the stacked targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["PadCollate", "SequenceDataset", "pad_collate"]


def _to_sequence_tensor(seq: Any, name: str) -> torch.Tensor:
    """Convert one sequence to a 1-D LongTensor (ids) or a 2-D float tensor."""
    if isinstance(seq, torch.Tensor):
        tensor = seq.detach()
    elif isinstance(seq, np.ndarray):
        if seq.dtype.kind in "iub":
            tensor = torch.from_numpy(np.asarray(seq, dtype=np.int64))
        elif seq.dtype.kind == "f":
            tensor = torch.from_numpy(np.asarray(seq, dtype=np.float32))
        else:
            raise TypeError(f"{name} has unsupported numpy dtype {seq.dtype}")
    elif isinstance(seq, (list, tuple)):
        try:
            array = np.asarray(seq)
        except ValueError as err:
            raise ValueError(f"{name} is ragged: {err}") from None
        if array.size == 0:
            raise ValueError(f"{name} is empty; every sequence needs at least one step")
        return _to_sequence_tensor(array, name)
    else:
        raise TypeError(f"{name} must be a tensor, numpy array or list, got {type(seq).__name__}")
    if tensor.dim() == 1:
        if tensor.is_floating_point() or tensor.is_complex():
            raise TypeError(
                f"{name} is 1-D with dtype {tensor.dtype}: 1-D sequences must be integer "
                "token ids; continuous sequences must be 2-D (time, features)"
            )
        tensor = tensor.long()
        if tensor.numel() and int(tensor.min()) < 0:
            raise ValueError(f"{name} holds negative token ids")
    elif tensor.dim() == 2:
        if not tensor.is_floating_point():
            raise TypeError(
                f"{name} is 2-D with dtype {tensor.dtype}: continuous sequences "
                "(time, features) must be floating point"
            )
        if tensor.shape[1] == 0:
            raise ValueError(f"{name} has zero features")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
    else:
        raise ValueError(
            f"{name} must be 1-D token ids or 2-D (time, features), got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty; every sequence needs at least one step")
    return tensor


def _to_targets(targets: Any, n: int) -> torch.Tensor:
    if isinstance(targets, torch.Tensor):
        out = targets.detach()
    elif isinstance(targets, np.ndarray):
        out = torch.as_tensor(targets)
    else:
        if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
            raise TypeError(f"targets must be a sequence or tensor, got {type(targets).__name__}")
        items = list(targets)
        if items and all(isinstance(t, torch.Tensor) for t in items):
            try:
                out = torch.stack([t.detach() for t in items])
            except RuntimeError as err:
                raise ValueError(f"targets have different shapes: {err}") from None
        else:
            try:
                out = torch.as_tensor(np.asarray(items))
            except (TypeError, ValueError, RuntimeError) as err:
                raise TypeError(f"targets must be numbers or tensors: {err}") from None
    if out.dim() == 0:
        raise ValueError("targets must have one entry per sequence, got a scalar")
    if out.is_complex():
        raise TypeError("targets must be real numbers")
    if not out.is_floating_point():
        out = out.long()  # bool and integer classes
    else:
        if out.dtype == torch.float64:
            out = out.float()
        if not bool(torch.isfinite(out).all()):
            raise ValueError("targets hold NaN or infinite values")
    if out.shape[0] != n:
        raise ValueError(f"sequences and targets differ in length: {n} != {out.shape[0]}")
    return out


class SequenceDataset(Dataset):
    """A map-style dataset of variable-length sequences and their targets.

    Args:
        sequences: token-id sequences (1-D integer tensors, lists or arrays) or
            continuous sequences (2-D ``(time, features)`` float tensors, nested lists
            or arrays). Lists and arrays are converted (ids to ``int64``, features
            to ``float32``); all sequences must be of one kind.
        targets: one target per sequence: ints (classes), floats (regression),
            or tensors of a common shape.

    Raises:
        ValueError: on a length mismatch, an empty sequence, NaN features, mixed
            kinds or feature counts (the message names ``sequences[i]``).

    Example:
        >>> ds = SequenceDataset([[2, 3, 4], [5]], [1, 0])
        >>> ds[1]
        (tensor([5]), tensor(0))
    """

    def __init__(self, sequences: Sequence[Any], targets: Sequence[Any] | torch.Tensor) -> None:
        if isinstance(sequences, torch.Tensor) or not isinstance(sequences, Sequence):
            raise TypeError(
                "sequences must be a list of per-sequence tensors/lists, "
                f"got {type(sequences).__name__}"
            )
        self.sequences: list[torch.Tensor] = [
            _to_sequence_tensor(s, f"sequences[{i}]") for i, s in enumerate(sequences)
        ]
        self.targets: torch.Tensor = _to_targets(targets, len(self.sequences))
        if self.sequences:
            first = self.sequences[0]
            for i, s in enumerate(self.sequences):
                if s.dim() != first.dim():
                    raise ValueError(
                        f"sequences[{i}] is {s.dim()}-D but sequences[0] is {first.dim()}-D; "
                        "do not mix token ids and continuous features"
                    )
                if s.dim() == 2 and s.shape[1] != first.shape[1]:
                    raise ValueError(
                        f"sequences[{i}] has {s.shape[1]} features but sequences[0] has "
                        f"{first.shape[1]}"
                    )

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sequences[index], self.targets[index]

    @property
    def lengths(self) -> torch.Tensor:
        """The sequence lengths, a LongTensor ``(len(self),)``."""
        return torch.tensor([s.shape[0] for s in self.sequences], dtype=torch.long)

    @property
    def is_continuous(self) -> bool:
        """True for ``(time, features)`` sequences, False for token ids."""
        return bool(self.sequences) and self.sequences[0].dim() == 2


def _collate(
    batch: Sequence[Any], padding_value: float, pad_to: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if len(batch) == 0:
        raise ValueError("batch is empty")
    sequences, targets = [], []
    for i, item in enumerate(batch):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"batch[{i}] must be a (sequence, target) pair")
        seq, target = item
        seq = seq if isinstance(seq, torch.Tensor) else torch.as_tensor(np.asarray(seq))
        if seq.dim() not in (1, 2) or seq.shape[0] == 0:
            raise ValueError(
                f"batch[{i}] sequence must be non-empty 1-D ids or 2-D (time, features), "
                f"got shape {tuple(seq.shape)}"
            )
        sequences.append(seq)
        targets.append(target if isinstance(target, torch.Tensor) else torch.as_tensor(target))
    first = sequences[0]
    for i, s in enumerate(sequences):
        if s.dim() != first.dim() or s.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"batch[{i}] sequence has shape {tuple(s.shape)}, incompatible with "
                f"batch[0] shape {tuple(first.shape)}"
            )
    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.long)
    longest = int(lengths.max())
    if pad_to is not None and longest > pad_to:
        index = int(lengths.argmax())
        raise ValueError(f"batch[{index}] has length {longest}, longer than pad_to={pad_to}")
    width = longest if pad_to is None else pad_to
    dtype = first.dtype
    for s in sequences[1:]:
        dtype = torch.promote_types(dtype, s.dtype)
    inputs = torch.full(
        (len(sequences), width, *first.shape[1:]), padding_value, dtype=dtype, device=first.device
    )
    for row, s in enumerate(sequences):
        inputs[row, : s.shape[0]] = s
    try:
        stacked = torch.stack(targets)
    except RuntimeError as err:
        raise ValueError(f"targets in the batch have different shapes: {err}") from None
    return inputs, lengths, stacked


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, Any]], padding_value: float = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad ``(sequence, target)`` items to the longest sequence in the batch.

    Args:
        batch: items as returned by :class:`SequenceDataset`.
        padding_value: the value written at padded positions (0 is the pad id).

    Returns:
        ``(inputs, lengths, targets)``: inputs ``(batch, time)`` or
        ``(batch, time, features)``, lengths a LongTensor ``(batch,)``, targets
        stacked along a new first dimension.

    Example:
        >>> inputs, lengths, targets = pad_collate([(torch.tensor([2, 3]), 1),
        ...                                         (torch.tensor([4]), 0)])
        >>> inputs.tolist(), lengths.tolist(), targets.tolist()
        ([[2, 3], [4, 0]], [2, 1], [1, 0])
    """
    return _collate(batch, padding_value, None)


class PadCollate:
    """:func:`pad_collate` as a configurable callable, usable as a ``collate_fn``.

    Args:
        padding_value: the value written at padded positions.
        pad_to: pad every batch to exactly this length instead of its longest
            sequence (useful to check that padding does not change explanations).

    Raises:
        ValueError: when called on a batch with a sequence longer than ``pad_to``.

    Example:
        >>> inputs, lengths, _ = PadCollate(pad_to=4)([(torch.tensor([2, 3]), 1)])
        >>> inputs.tolist(), lengths.tolist()
        ([[2, 3, 0, 0]], [2])
    """

    def __init__(self, padding_value: float = 0, pad_to: int | None = None) -> None:
        if pad_to is not None and (
            isinstance(pad_to, bool) or not isinstance(pad_to, int) or pad_to < 1
        ):
            raise ValueError(f"pad_to must be None or an int >= 1, got {pad_to!r}")
        self.padding_value = padding_value
        self.pad_to = pad_to

    def __call__(
        self, batch: Sequence[tuple[torch.Tensor, Any]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _collate(batch, self.padding_value, self.pad_to)

    def __repr__(self) -> str:
        return f"PadCollate(padding_value={self.padding_value!r}, pad_to={self.pad_to!r})"
