"""The tensor store behind :class:`NearestExamples`: vectors, labels, predictions, fingerprints.

A store holds, for every training example, one vector per encoded layer, its label and
the model's prediction, together with a fingerprint of the model weights and of the
data it was built from. It lives in memory (numpy arrays) or on disk as plain ``.npy``
files plus a JSON header, memory-mapped when loaded: nothing is ever unpickled.

Rows are written into preallocated arrays as batches arrive, so building a store never
holds more than the final arrays plus one batch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_rnn._utils.files import atomic_save_npy, atomic_write_text
from captum_rnn._utils.options import store_arguments

__all__ = [
    "DataFingerprint",
    "ExampleStore",
    "StaleStoreError",
    "StoreWriter",
    "model_fingerprint",
]

_FORMAT = "captum_rnn.ExampleStore"
_VERSION = 1
_HEADER = "store.json"


class StaleStoreError(RuntimeError):
    """The model's weights changed since the store was built: its vectors are stale."""


def _tensor_bytes(tensor: Tensor) -> bytes:
    flat = tensor.detach().reshape(-1).contiguous().cpu()
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def model_fingerprint(model: nn.Module) -> str:
    """Hash of every parameter and buffer of ``model`` (names, shapes, dtypes, values).

    Args:
        model: any module.

    Returns:
        A hex digest that changes whenever a weight or buffer changes.

    Example:
        >>> m = nn.Linear(2, 1)
        >>> before = model_fingerprint(m)
        >>> with torch.no_grad():
        ...     m.bias += 1
        >>> model_fingerprint(m) == before
        False
    """
    digest = hashlib.blake2b(digest_size=16)
    tensors = list(model.named_parameters(remove_duplicate=False))
    tensors += list(model.named_buffers(remove_duplicate=False))
    for name, tensor in tensors:
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


class DataFingerprint:
    """Incremental hash of the batches a store was built from (inputs, lengths, targets)."""

    def __init__(self) -> None:
        self._digest = hashlib.blake2b(digest_size=16)

    def update(self, *values: Any) -> None:
        """Hash tensors (and their shapes/dtypes); ``None`` is hashed as a marker."""
        for value in values:
            if isinstance(value, Tensor):
                self._digest.update(f"{value.dtype}|{tuple(value.shape)}|".encode())
                self._digest.update(_tensor_bytes(value))
            elif isinstance(value, (tuple, list)):
                self.update(*value)
            else:
                self._digest.update(f"<{type(value).__name__}>".encode())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _numpy(value: Tensor) -> np.ndarray:
    value = value.detach().cpu()
    if value.dtype == torch.bfloat16 or value.dtype == torch.float16:
        value = value.float()
    return value.numpy()


class StoreWriter:
    """Fill preallocated (optionally memory-mapped) arrays batch by batch.

    Args:
        num_examples: total rows.
        path: a directory for memory-mapped ``.npy`` files, or ``None`` for memory.
    """

    def __init__(self, num_examples: int, path: str | os.PathLike[str] | None = None) -> None:
        self.num_examples = int(num_examples)
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self.arrays: dict[str, np.ndarray] = {}
        self.files: dict[str, str] = {}
        self.row = 0

    def _allocate(self, key: str, file: str, value: np.ndarray) -> np.ndarray:
        shape = (self.num_examples, *value.shape[1:])
        if self.path is None:
            array = np.empty(shape, dtype=value.dtype)
        else:
            target = self.path / file
            if target.is_symlink():
                target.unlink()  # write a file of our own, not through the link
            array = np.lib.format.open_memmap(target, mode="w+", dtype=value.dtype, shape=shape)
        self.arrays[key] = array
        self.files[key] = file
        return array

    def add(self, vectors: dict[str, Tensor], labels: Tensor | None, predictions: Tensor) -> None:
        """Append one batch: ``vectors[layer]`` ``(batch, dim)``, labels, predictions."""
        batch = int(predictions.shape[0])
        if self.row + batch > self.num_examples:
            raise ValueError(
                f"the data set yielded more than its len() = {self.num_examples} examples"
            )
        items: list[tuple[str, str, Tensor | None]] = [
            (f"vectors/{name}", f"vectors_{i}.npy", value)
            for i, (name, value) in enumerate(vectors.items())
        ]
        items += [("labels", "labels.npy", labels), ("predictions", "predictions.npy", predictions)]
        for key, file, value in items:
            if value is None:
                continue
            data = _numpy(value)
            array = self.arrays.get(key)
            if array is None:
                array = self._allocate(key, file, data)
            if data.shape[1:] != array.shape[1:]:
                raise ValueError(
                    f"{key} has shape {data.shape[1:]} per example in this batch but "
                    f"{array.shape[1:]} in earlier ones; layer outputs must have a fixed size"
                )
            array[self.row : self.row + batch] = data
        self.row += batch

    def finish(self, layers: list[str], **info: Any) -> ExampleStore:
        """Return the filled store (and write its header when memory-mapped)."""
        if self.row != self.num_examples:
            raise ValueError(
                f"the data set yielded {self.row} examples but its len() is {self.num_examples}"
            )
        vectors = {name: self.arrays[f"vectors/{name}"] for name in layers}
        store = ExampleStore(vectors, self.arrays.get("labels"), self.arrays["predictions"], **info)
        if self.path is not None:
            for array in self.arrays.values():
                if isinstance(array, np.memmap):
                    array.flush()
            store._write_header(self.path, self.files)
        return store


def _maps(array: Any, target: Path) -> bool:
    """Whether ``array`` is a memory map of the regular file ``target`` (not of a link)."""
    if not isinstance(array, np.memmap) or array.filename is None or target.is_symlink():
        return False
    try:
        return os.path.samefile(array.filename, target)
    except OSError:
        return False


def _check_rows(
    vectors: dict[str, np.ndarray], labels: np.ndarray | None, predictions: np.ndarray
) -> None:
    """One row per example in every array, and at least one layer."""
    if not vectors:
        raise ValueError("vectors must hold at least one layer")
    n = int(predictions.shape[0])
    if labels is not None and int(labels.shape[0]) != n:
        raise ValueError(f"labels have {labels.shape[0]} rows, predictions {n}")
    for name, v in vectors.items():
        if int(v.shape[0]) != n or v.ndim != 2:
            raise ValueError(f"vectors[{name!r}] must be ({n}, dim), got {tuple(v.shape)}")


class ExampleStore:
    """Per-example vectors (one array per layer), labels, predictions and fingerprints.

    Args:
        vectors: layer name -> ``(n, dim)`` float array.
        labels: ``(n, ...)`` targets of the examples, or ``None``.
        predictions: ``(n,)`` predicted classes or ``(n, outputs)`` regression outputs.
        model_fingerprint: :func:`model_fingerprint` of the model that encoded them.
        data_fingerprint: hash of the batches they were encoded from.
        info: free JSON-able metadata (batch size, metric, ...).

    Example:
        >>> store = ExampleStore({"pooled": np.zeros((3, 2), np.float32)},
        ...                      np.array([0, 1, 1]), np.array([0, 1, 0]), "m", "d")
        >>> len(store), store.layers
        (3, ['pooled'])
    """

    def __init__(
        self,
        vectors: dict[str, np.ndarray],
        labels: np.ndarray | None,
        predictions: np.ndarray,
        model_fingerprint: str,
        data_fingerprint: str,
        info: dict[str, Any] | None = None,
    ) -> None:
        _check_rows(vectors, labels, predictions)
        store_arguments(self, locals(), skip=("vectors", "info"))
        self.vectors = dict(vectors)
        self.info = dict(info or {})

    def __len__(self) -> int:
        return int(self.predictions.shape[0])

    def __repr__(self) -> str:
        dims = {name: int(v.shape[1]) for name, v in self.vectors.items()}
        mapped = any(isinstance(v, np.memmap) for v in self.vectors.values())
        return f"ExampleStore(n={len(self)}, layers={dims}, memory_mapped={mapped})"

    @property
    def layers(self) -> list[str]:
        """The encoded layer names, in order."""
        return list(self.vectors)

    @property
    def vector_nbytes(self) -> int:
        """Bytes of the vectors alone."""
        return int(sum(v.nbytes for v in self.vectors.values()))

    @property
    def nbytes(self) -> int:
        """Bytes of everything the store holds (vectors, labels, predictions)."""
        extra = self.predictions.nbytes + (0 if self.labels is None else self.labels.nbytes)
        return self.vector_nbytes + int(extra)

    def labels_tensor(self) -> Tensor | None:
        """The labels as a tensor (zero-copy for in-memory stores)."""
        return None if self.labels is None else torch.as_tensor(np.asarray(self.labels))

    def predictions_tensor(self) -> Tensor:
        """The predictions as a tensor."""
        return torch.as_tensor(np.asarray(self.predictions))

    def check_model(self, model: nn.Module) -> None:
        """Raise :class:`StaleStoreError` when ``model``'s weights differ from the encoder's."""
        if model_fingerprint(model) != self.model_fingerprint:
            raise StaleStoreError(
                "the model's weights changed since the training set was encoded: the stored "
                "vectors are stale. Re-encode with NearestExamples.fit() (or build a new "
                "NearestExamples) before asking for neighbours."
            )

    # ------------------------------------------------------------------ disk
    def _write_header(self, path: Path, files: dict[str, str]) -> None:
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "num_examples": len(self),
            "layers": self.layers,
            "files": files,
            "model_fingerprint": self.model_fingerprint,
            "data_fingerprint": self.data_fingerprint,
            "info": self.info,
        }
        atomic_write_text(path / _HEADER, json.dumps(header, indent=1))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the store to directory ``path`` as ``.npy`` files and ``store.json``.

        Each file is written to a temporary file and moved into place: a symbolic link
        at a file's name is replaced, never written through.

        Args:
            path: a directory (created if missing).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        arrays: list[tuple[str, str, np.ndarray | None]] = [
            (f"vectors/{name}", f"vectors_{i}.npy", v)
            for i, (name, v) in enumerate(self.vectors.items())
        ]
        arrays += [
            ("labels", "labels.npy", self.labels),
            ("predictions", "predictions.npy", self.predictions),
        ]
        for key, file, array in arrays:
            if array is None:
                continue
            target = path / file
            if _maps(array, target):
                array.flush()
            else:
                atomic_save_npy(target, array)
            files[key] = file
        self._write_header(path, files)

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True) -> ExampleStore:
        """Read a store written by :meth:`save` (never unpickles).

        Args:
            path: the directory.
            mmap: memory-map the arrays (read-only) instead of reading them into memory.

        Returns:
            The store.

        Raises:
            ValueError: when the directory does not hold a store or it is inconsistent.
        """
        path = Path(path)
        header_file = path / _HEADER
        if not header_file.is_file():
            raise ValueError(f"path {str(path)!r} holds no {_HEADER}: not a saved ExampleStore")
        try:
            header = json.loads(header_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{header_file} is not valid JSON: {err}") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError(f"{header_file} does not describe an ExampleStore")
        if header.get("version") != _VERSION:
            raise ValueError(f"unsupported ExampleStore version {header.get('version')!r}")
        files = header["files"]

        def read(key: str) -> np.ndarray | None:
            if key not in files:
                return None
            name = Path(files[key]).name  # never leave the directory
            return np.load(path / name, mmap_mode="r" if mmap else None, allow_pickle=False)

        vectors = {name: read(f"vectors/{name}") for name in header["layers"]}
        if any(v is None for v in vectors.values()):
            raise ValueError(f"{header_file} lists a layer without a vector file")
        predictions = read("predictions")
        if predictions is None:
            raise ValueError(f"{header_file} lists no predictions file")
        store = cls(
            vectors,  # type: ignore[arg-type]
            read("labels"),
            predictions,
            header["model_fingerprint"],
            header["data_fingerprint"],
            header.get("info", {}),
        )
        if len(store) != header["num_examples"]:
            raise ValueError(
                f"{header_file} says {header['num_examples']} examples, files hold {len(store)}"
            )
        return store
