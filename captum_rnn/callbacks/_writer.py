"""``ExplanationWriter`` and ``read_explanations``: explain whole data sets with ``trainer.predict``.

Every rank writes one NPZ shard per batch (``write_interval="batch"``) or per
dataloader (``"epoch"``), named by dataloader, rank and batch, holding the dataset
index of each sequence beside its arrays. Shards are plain NumPy arrays written with
``np.savez`` and read with ``allow_pickle=False``: nothing is ever unpickled.
``meta.json`` records the method and settings; ``vocab.json`` the vocabulary when
one was given. :func:`read_explanations` merges the shards back in dataset order.

Nothing is silent and nothing is lost:

* every file is written to a temporary file beside it and moved into place, so a
  crash never leaves half a file and a symbolic link at a target is replaced, never
  written through;
* beside each shard, a record (``explanations-....json``) holds its dataset indices,
  array shapes and dtypes, size and checksum; at the end each rank replaces them with
  one ``manifest-rankNNN.json`` (``"status": "done"``, its world size and every shard).
  A rank that has not finished leaves ``"status": "running"`` and the number of
  batches it expected;
* :func:`read_explanations` checks the folder against these records (missing shards,
  unfinished ranks, a world-size mismatch) and checks each shard's array headers
  against its record before reading any data;
* running ``trainer.predict`` again with the same writer on an unfinished folder
  completes it: batches whose shards are intact are not explained again.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from captum_rnn._utils.files import atomic_path, atomic_write_bytes, atomic_write_text, npz_headers
from captum_rnn._utils.jsonio import load_json
from captum_rnn.callbacks._explainers import check_methods
from captum_rnn.callbacks._explaining_module import explain_batch
from captum_rnn.explanation import Explanation, Explanations

__all__ = ["ExplanationWriter", "read_explanations"]

_FORMAT = "captum_rnn.ExplanationShards/1"
_MANIFEST_FORMAT = "captum_rnn.ExplanationManifest/1"
_SHARD = re.compile(r"^explanations-dl(\d+)-rank(\d+)-(batch|epoch)(\d+)\.npz$")
_RECORD = re.compile(r"^explanations-dl(\d+)-rank(\d+)-(batch|epoch)(\d+)\.json$")
_MANIFEST = re.compile(r"^manifest-rank(\d+)\.json$")
# Temporary files of atomic writes (``.<name>.<random>.tmp``) a killed run left behind.
_TEMP = re.compile(r"^\.(explanations-|manifest-rank|meta\.json\.|vocab\.json\.).*\.tmp$")
_REQUIRED = ("index", "lengths", "scores")
# meta.json fields that must agree for a second run to complete an unfinished folder.
_RUN_KEYS = (
    "method",
    "target",
    "method_kwargs",
    "class_names",
    "world_size",
    "write_interval",
    "model_fingerprint",
)
_DESCRIPTION = "Explaining"
_BAR_CLASSES: dict[type, type] = {}


def _explaining_bar_class(cls: type) -> type:
    """A subclass of a progress bar class whose predict description reads "Explaining"."""
    if cls not in _BAR_CLASSES:
        _BAR_CLASSES[cls] = type(
            cls.__name__,
            (cls,),
            {
                "predict_description": property(lambda self: _DESCRIPTION),
                "__module__": cls.__module__,
            },
        )
    return _BAR_CLASSES[cls]


def _canonical(name: str) -> str:
    """The registry's own name for an alias (``"ig"`` -> ``"integrated_gradients"``)."""
    from captum_rnn.attr import available_methods, get_method

    return get_method(name).name if name in available_methods() else name


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


# ------------------------------------------------------------------ records
def _hash_into(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(value.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    elif isinstance(value, np.ndarray) and not value.dtype.hasobject:
        digest.update(f"A{value.dtype.str}{value.shape}|".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}|".encode())
        for key in sorted(value, key=str):
            digest.update(f"{key!s}=".encode())
            _hash_into(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}|".encode())
        for item in value:
            _hash_into(digest, item)
    else:
        digest.update(f"V{value!r}|".encode())


def _fingerprint(value: Any) -> str:
    """Hash of tensors, arrays and containers of them (a batch, a state dict)."""
    digest = hashlib.blake2b(digest_size=16)
    _hash_into(digest, value)
    return digest.hexdigest()


def _checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _shard_name(dataloader_idx: int, rank: int, kind: str, number: int) -> str:
    return f"explanations-dl{dataloader_idx}-rank{rank:03d}-{kind}{number:07d}.npz"


def _record_name(shard: str) -> str:
    return shard[: -len(".npz")] + ".json"


def _manifest_name(rank: int) -> str:
    return f"manifest-rank{rank:03d}.json"


def _ranges(numbers: Iterable[int], limit: int = 12) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (at most ``limit`` ranges)."""
    spans: list[list[int]] = []
    for value in sorted(set(numbers)):
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in spans]
    if len(parts) > limit:
        parts = parts[:limit] + [f"... ({len(parts) - limit} more ranges)"]
    return ", ".join(parts)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_plain_dtype(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 16:
        return False
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError):
        return False
    return dtype.fields is None and not dtype.hasobject


def _field(doc: Any, key: str, file: Any, field: str, check: Any, what: str) -> Any:
    """``doc[key]`` when it passes ``check``; else a ``ValueError`` naming file and field."""
    if not isinstance(doc, dict):
        parent = field.rpartition(".")[0] or "(document)"
        raise ValueError(f"{file}: field {parent!r} must be a JSON object, got {_short(doc)}")
    if key not in doc:
        raise ValueError(f"{file}: field {field!r} is missing")
    value = doc[key]
    if not check(value):
        raise ValueError(f"{file}: field {field!r} must be {what}, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class _ShardRecord:
    """What the writer recorded about one shard."""

    file: str
    dataloader_idx: int
    rank: int
    kind: str
    number: int
    indices: tuple[int, ...]
    arrays: dict[str, tuple[tuple[int, ...], str]]  # name -> (shape, dtype.str)
    nbytes: int
    checksum: str
    batch_fingerprint: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "dataloader_idx": self.dataloader_idx,
            "rank": self.rank,
            "kind": self.kind,
            "number": self.number,
            "indices": list(self.indices),
            "arrays": {k: {"shape": list(s), "dtype": d} for k, (s, d) in self.arrays.items()},
            "bytes": self.nbytes,
            "blake2b": self.checksum,
            "batch_fingerprint": self.batch_fingerprint,
        }

    @classmethod
    def from_json(cls, doc: Any, file: Any, prefix: str = "") -> _ShardRecord:
        """Type-check a record; ``ValueError`` naming ``file`` and the field otherwise."""

        def get(key: str, check: Any, what: str, parent: Any = doc, where: str = "") -> Any:
            return _field(parent, key, file, f"{prefix}{where}{key}", check, what)

        name = get("file", lambda v: isinstance(v, str) and _SHARD.match(v), "a shard file name")
        dataloader_idx = get("dataloader_idx", _is_count, "an int >= 0")
        rank = get("rank", _is_count, "an int >= 0")
        kind = get("kind", lambda v: v in ("batch", "epoch"), "'batch' or 'epoch'")
        number = get("number", _is_count, "an int >= 0")
        expected = _shard_name(dataloader_idx, rank, kind, number)
        if name != expected:
            raise ValueError(
                f"{file}: field {prefix + 'file'!r} must be {expected!r}, got {name!r}"
            )
        indices = get(
            "indices",
            lambda v: isinstance(v, list) and all(_is_count(i) for i in v),
            "a list of ints >= 0",
        )
        rows = len(indices)
        specs = get("arrays", lambda v: isinstance(v, dict), "a JSON object")
        arrays: dict[str, tuple[tuple[int, ...], str]] = {}
        for key, spec in specs.items():
            where = f"arrays.{key}."
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                raise ValueError(
                    f"{file}: field {prefix + 'arrays'!r} names an invalid array {_short(key)}"
                )
            shape = get(
                "shape",
                lambda v: isinstance(v, list) and v and v[0] == rows and all(map(_is_count, v)),
                f"a list of ints >= 0 starting with the {rows} rows",
                spec,
                where,
            )
            dtype = get("dtype", _is_plain_dtype, "a NumPy dtype without objects", spec, where)
            arrays[key] = (tuple(shape), np.dtype(dtype).str)
        missing = [k for k in _REQUIRED if k not in arrays]
        if missing:
            raise ValueError(f"{file}: field {prefix + 'arrays'!r} lacks {missing}")
        if len(arrays["index"][0]) != 1:
            raise ValueError(f"{file}: field {prefix + 'arrays.index.shape'!r} must be [{rows}]")
        return cls(
            file=name,
            dataloader_idx=dataloader_idx,
            rank=rank,
            kind=kind,
            number=number,
            indices=tuple(indices),
            arrays=arrays,
            nbytes=get("bytes", _is_count, "an int >= 0"),
            checksum=get(
                "blake2b",
                lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{32}", v),
                "a 32-digit hex digest",
            ),
            batch_fingerprint=get(
                "batch_fingerprint", lambda v: v is None or isinstance(v, str), "a string or null"
            ),
        )

    def describe(self) -> str:
        where = f"batch {self.number}" if self.kind == "batch" else "epoch shard"
        return f"rank {self.rank} {where} (indices {_ranges(self.indices, limit=4)})"


@dataclass(frozen=True)
class _Manifest:
    """One rank's ``manifest-rankNNN.json``."""

    rank: int
    world_size: int
    status: str
    write_interval: str
    batches: dict[int, int | None]  # dataloader -> batches (None: unknown length)
    shards: dict[int, list[_ShardRecord]]  # complete with status "done"


def _read_manifest(path: Path) -> _Manifest:
    """Read and type-check a manifest; ``ValueError`` naming the file and field otherwise."""
    doc = load_json(path, "explanation manifest", lambda data: data)
    match = _MANIFEST.match(path.name)
    rank_of_name = int(match.group(1)) if match else None

    def get(key: str, check: Any, what: str, parent: Any = doc, where: str = "") -> Any:
        return _field(parent, key, path, where + key, check, what)

    get("format", lambda v: v == _MANIFEST_FORMAT, repr(_MANIFEST_FORMAT))
    rank = get("rank", lambda v: _is_count(v) and v == rank_of_name, f"{rank_of_name} (its name)")
    world_size = get("world_size", lambda v: _is_count(v) and v >= 1, "an int >= 1")
    status = get("status", lambda v: v in ("running", "done"), "'running' or 'done'")
    interval = get("write_interval", lambda v: v in ("batch", "epoch"), "'batch' or 'epoch'")
    loaders = get("dataloaders", lambda v: isinstance(v, dict), "a JSON object")
    batches: dict[int, int | None] = {}
    shards: dict[int, list[_ShardRecord]] = {}
    for key, entry in loaders.items():
        if not re.fullmatch(r"\d{1,6}", key):
            raise ValueError(
                f"{path}: field 'dataloaders' has a key {_short(key)} that is no index"
            )
        dl, where = int(key), f"dataloaders.{key}."
        batches[dl] = get(
            "batches", lambda v: v is None or _is_count(v), "an int >= 0 or null", entry, where
        )
        listed = get("shards", lambda v: isinstance(v, list), "a list", entry, where)
        records = [
            _ShardRecord.from_json(item, path, f"{where}shards.{i}.")
            for i, item in enumerate(listed)
        ]
        for i, record in enumerate(records):
            if record.rank != rank or record.dataloader_idx != dl or record.kind != interval:
                raise ValueError(
                    f"{path}: field {where}shards.{i} records {record.file}, which is not "
                    f"rank {rank}'s {interval} shard of dataloader {dl}"
                )
        shards[dl] = records
    return _Manifest(rank, world_size, status, interval, batches, shards)


def _read_record(path: Path) -> _ShardRecord:
    record = _ShardRecord.from_json(load_json(path, "explanation shard record", lambda d: d), path)
    if _record_name(record.file) != path.name:
        raise ValueError(f"{path}: field 'file' must name its own shard, got {record.file!r}")
    return record


def _check_headers(path: Path, source: Path | bytes, record: _ShardRecord | None) -> dict[str, Any]:
    """Check a shard's ``.npy`` headers against its record; no array data is read.

    A shard whose members claim other shapes or dtypes than the record, or are
    compressed (the writer never compresses), is refused before anything is
    decompressed.
    """
    headers = npz_headers(source, name=str(path))
    if record is not None:
        for key in sorted(headers.keys() | record.arrays.keys()):
            if key not in headers or key not in record.arrays:
                where = "the shard" if key in headers else "the manifest"
                raise ValueError(f"{path}: field {key!r} appears only in {where}")
            shape, dtype = record.arrays[key]
            header = headers[key]
            if header.shape != shape or header.dtype.str != dtype:
                raise ValueError(
                    f"{path}: field {key!r} has shape {header.shape} and dtype "
                    f"{header.dtype.str} in the file but {shape} and {dtype} in the manifest"
                )
    compressed = sorted(k for k, h in headers.items() if h.compressed)
    if compressed:
        raise ValueError(
            f"{path}: field(s) {compressed} are compressed; ExplanationWriter writes shards "
            "uncompressed, so this file was not written by it"
        )
    rows = {h.shape[0] if h.shape else None for h in headers.values()}
    if len(rows) > 1:
        raise ValueError(
            f"{path}: its arrays disagree on the number of rows {sorted(map(str, rows))}"
        )
    return headers


def _check_shard(path: Path, data: bytes, record: _ShardRecord | None) -> None:
    """:func:`_check_headers`, then the size and checksum the record holds."""
    _check_headers(path, data, record)
    if record is not None:
        if len(data) != record.nbytes:
            raise ValueError(
                f"{path}: field 'bytes' of the manifest says {record.nbytes} bytes, "
                f"the file has {len(data)}"
            )
        if _checksum(data) != record.checksum:
            raise ValueError(f"{path}: the file differs from the manifest's checksum 'blake2b'")


def _shard_intact(folder: Path, record: _ShardRecord) -> bool:
    """Whether the shard is present (not a link) and matches its record byte for byte."""
    path = folder / record.file
    try:
        if path.is_symlink() or path.stat().st_size != record.nbytes:
            return False
        _check_shard(path, path.read_bytes(), record)
    except (OSError, ValueError):
        return False
    return True


class _Reused:
    """``predict_step``'s stand-in result for a batch whose shard is already written."""

    def __repr__(self) -> str:
        return "<batch already explained in an earlier run>"


_REUSED = _Reused()
_UNSET = object()


class ExplanationWriter(BasePredictionWriter):
    """Write the explanation of every sequence ``trainer.predict`` sees, one shard per rank and batch.

    Use it with :class:`ExplainingModule` (the module explains, the writer writes), or
    directly with a captum-rnn model: then the writer explains each batch itself with
    ``method``. Pass ``return_predictions=False`` to ``trainer.predict`` so memory stays
    flat however large the data set. Under DDP every rank writes its own shards and each
    dataset index is written exactly once; :func:`read_explanations` merges them.
    Lightning's progress bar reads "Explaining" while it runs.

    Files are written atomically (a temporary file moved into place) and never through
    a symbolic link. Each shard is recorded (indices, shapes, dtypes, checksum) and each
    rank writes ``manifest-rankNNN.json`` when it finishes, so :func:`read_explanations`
    can tell a complete folder from an unfinished one. When a run stops early (a crash,
    a full disk), running ``trainer.predict`` again with the same settings, model and
    data on the same folder completes it: batches whose shards are intact are skipped
    (with ``return_predictions=False`` an ``ExplainingModule`` does not even explain
    them again) and the rest are written.

    Args:
        output_dir: folder for the shards, ``meta.json`` and ``vocab.json``.
        method: the method name when the module is a plain model (default integrated
            gradients); with an ``ExplainingModule`` it must be ``None`` or the module's.
        write_interval: ``"batch"`` (one shard per batch; flat memory) or ``"epoch"``
            (one shard per rank and dataloader, written at the end).
        target: ``None``, an int or ``"label"`` (plain models only).
        overwrite: remove earlier shards in ``output_dir`` first; otherwise a folder
            holding a complete run, or shards of another run (other method, settings,
            weights or world size), is refused, and an unfinished run of the same
            settings is completed.
        vocab: a vocabulary saved beside the shards (plain models only; an
            ``ExplainingModule`` brings its own).
        batch_to_inputs: for plain models with unusual batches, a callable
            ``batch -> (inputs, lengths or None, labels or None)`` (as the callbacks take).
        method_kwargs: options of the method and the model contract's hints (plain
            models only).

    Raises:
        FileExistsError: in ``setup``, for a folder that cannot be completed (above).
        OSError: when a shard cannot be written (a full disk); the message names the
            batch, and every shard written before it is intact.

    Example:
        >>> import pytorch_lightning as pl
        >>> writer = ExplanationWriter("explanations/")
        >>> # pl.Trainer(callbacks=[writer]).predict(ExplainingModule(model), loader,
        >>> #                                          return_predictions=False)
        >>> # explanations = read_explanations("explanations/")
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        method: str | None = None,
        write_interval: str = "batch",
        *,
        target: Any = None,
        overwrite: bool = False,
        vocab: Any = None,
        batch_to_inputs: Any = None,
        **method_kwargs: Any,
    ) -> None:
        if write_interval not in ("batch", "epoch"):
            raise ValueError(f"write_interval must be 'batch' or 'epoch', got {write_interval!r}")
        if method is not None and not isinstance(method, str):
            raise TypeError(f"method must be a method name or None, got {method!r}")
        super().__init__(write_interval)
        self.output_dir = Path(output_dir)
        self.method = method
        self.target = target
        self.overwrite = bool(overwrite)
        self.vocab = vocab
        self.batch_to_inputs = batch_to_inputs
        self.method_kwargs = dict(method_kwargs)
        self._bar: Any = None
        self._bar_class: type | None = None
        self._counters: dict[int, int] = {}
        self._explains_itself = False
        self._resume = False
        self._previous: dict[tuple[int, str, int], _ShardRecord] = {}
        self._written: dict[int, dict[int, _ShardRecord]] = {}
        self._expected: dict[int, int | None] = {}
        self._batches: dict[int, int] = {}
        self._batch_fingerprint: str | None = None
        self._reuse: _ShardRecord | None = None
        self._patched: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------ setup
    def _config(self, pl_module: pl.LightningModule) -> dict[str, Any]:
        module_method = (
            getattr(pl_module, "method", None) if hasattr(pl_module, "explained_model") else None
        )
        if module_method is not None:
            if self.method is not None and self.method != module_method:
                raise ValueError(
                    f"ExplanationWriter(method={self.method!r}) differs from the ExplainingModule's "
                    f"method {module_method!r}: leave the writer's method as None"
                )
            return {
                "method": module_method,
                "target": getattr(pl_module, "target", None),
                "method_kwargs": dict(getattr(pl_module, "method_kwargs", {})),
                "class_names": getattr(pl_module, "class_names", None),
                "vocab": getattr(pl_module, "vocab", None),
            }
        return {
            "method": self.method or "integrated_gradients",
            "target": self.target,
            "method_kwargs": self.method_kwargs,
            "class_names": None,
            "vocab": self.vocab,
        }

    def _plan(self, meta: dict[str, Any]) -> str:
        """``"fresh"``, ``"resume"``, or why the folder is refused."""
        folder = self.output_dir
        names = (
            sorted(p.name for p in folder.glob("*") if _our_file(p.name)) if folder.is_dir() else []
        )
        if not names or self.overwrite:
            return "fresh"
        shards = [n for n in names if _SHARD.match(n)]
        held = f"{folder} already holds {len(shards)} explanation shards" + (
            f" (e.g. {shards[0]})" if shards else f" and records ({names[0]})"
        )
        advice = "pass overwrite=True or choose an empty folder"
        try:
            old = _read_meta(folder)
            manifests = {
                int(m.group(1)): _read_manifest(folder / n)
                for n in names
                if (m := _MANIFEST.match(n))
            }
        except ValueError as err:
            return f"{held} with unreadable records ({err}); {advice}"
        differs = [
            f"{key} was {old.get(key)!r}, now {meta[key]!r}"
            for key in _RUN_KEYS
            if old.get(key) != meta[key]
        ]
        if differs:
            return f"{held} of another run ({'; '.join(differs)}); {advice}"
        if all(
            rank in manifests
            and manifests[rank].status == "done"
            and all(
                (folder / r.file).is_file() for rs in manifests[rank].shards.values() for r in rs
            )
            for rank in range(meta["world_size"])
        ):
            return f"{held} of a complete run; {advice}"
        return "resume"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        config = self._config(pl_module)
        check_methods((config["method"],), "method")
        config["method"] = _canonical(config["method"])
        self._explains_itself = not hasattr(pl_module, "explained_model")
        if self._explains_itself and not self.interval.on_batch:
            raise ValueError(
                "ExplanationWriter explains batches itself only with write_interval='batch'; "
                "wrap the model in ExplainingModule to write per epoch"
            )
        plan, meta = None, None
        if trainer.is_global_zero:
            meta = {
                "format": _FORMAT,
                "method": config["method"],
                "target": _json_safe(config["target"]),
                "method_kwargs": {k: _json_safe(v) for k, v in config["method_kwargs"].items()},
                "class_names": config["class_names"],
                "world_size": trainer.world_size,
                "write_interval": "batch" if self.interval.on_batch else "epoch",
                "model_fingerprint": _fingerprint(pl_module.state_dict()),
            }
            meta = json.loads(json.dumps(meta))  # as it reads back (tuples become lists)
            plan = self._plan(meta)
        # Rank 0 decides for all, so every rank raises or none does.
        plan = trainer.strategy.broadcast(plan, src=0)
        if plan not in ("fresh", "resume"):
            raise FileExistsError(plan)
        self._resume = plan == "resume"
        if trainer.is_global_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for path in self.output_dir.iterdir():
                if _TEMP.match(path.name) or (not self._resume and _our_file(path.name)):
                    path.unlink(missing_ok=True)
            atomic_write_text(self.output_dir / "meta.json", json.dumps(meta, indent=1))
            vocab_file = self.output_dir / "vocab.json"
            if config["vocab"] is not None and hasattr(config["vocab"], "save"):
                with atomic_path(vocab_file) as temporary:
                    config["vocab"].save(temporary)
            elif os.path.lexists(vocab_file):
                vocab_file.unlink()
        trainer.strategy.barrier("ExplanationWriter.setup.done")
        self._config_cache = config
        bar = trainer.progress_bar_callback
        if bar is not None and self._bar is None and type(bar) not in _BAR_CLASSES.values():
            self._bar, self._bar_class = bar, type(bar)
            bar.__class__ = _explaining_bar_class(type(bar))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._unpatch()
        if self._bar is not None and self._bar_class is not None:
            self._bar.__class__ = self._bar_class
        self._bar = self._bar_class = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._unpatch()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._counters, self._written, self._batches = {}, {}, {}
        self._reuse = self._batch_fingerprint = None
        if self.interval.on_batch and trainer.predict_loop.return_predictions:
            if trainer.is_global_zero:
                warnings.warn(
                    "trainer.predict keeps every explanation in memory: pass "
                    "return_predictions=False so memory stays flat (the shards hold them)",
                    stacklevel=2,
                )
        self._expected = {
            dl: int(n) if math.isfinite(n) else None
            for dl, n in enumerate(trainer.num_predict_batches)
        }
        self._previous = self._reusable(trainer.global_rank) if self._resume else {}
        self._write_manifest(trainer, "running")
        if (
            self._previous
            and self.interval.on_batch
            and not self._explains_itself
            and not trainer.predict_loop.return_predictions
        ):
            self._patch(pl_module)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._unpatch()
        rank = trainer.global_rank
        keep = {r.file for shards in self._written.values() for r in shards.values()}
        for path in self.output_dir.glob(f"explanations-dl*-rank{rank:03d}-*"):
            if _SHARD.match(path.name) and path.name not in keep:
                path.unlink(missing_ok=True)  # left by an earlier, different run
        self._write_manifest(trainer, "done")
        # The manifest now lists every shard: the per-shard records are redundant.
        for path in self.output_dir.glob(f"explanations-dl*-rank{rank:03d}-*.json"):
            if _RECORD.match(path.name):
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ resuming
    def _reusable(self, rank: int) -> dict[tuple[int, str, int], _ShardRecord]:
        """Records of this rank's shards from an unfinished earlier run (checked later)."""
        records: list[_ShardRecord] = []
        manifest = self.output_dir / _manifest_name(rank)
        try:
            if manifest.is_file():
                for shards in _read_manifest(manifest).shards.values():
                    records += shards
        except ValueError:
            pass  # unreadable: its shards are written again
        for path in self.output_dir.glob(f"explanations-dl*-rank{rank:03d}-*.json"):
            if _RECORD.match(path.name):
                try:
                    records.append(_read_record(path))
                except ValueError:
                    pass
        return {(r.dataloader_idx, r.kind, r.number): r for r in records if r.rank == rank}

    def _patch(self, pl_module: pl.LightningModule) -> None:
        """Make ``predict_step`` skip batches whose shards an earlier run wrote."""
        original = pl_module.predict_step
        writer = self

        @functools.wraps(original)  # Lightning reads the signature through __wrapped__
        def predict_step(*args: Any, **kwargs: Any) -> Any:
            if writer._reuse is not None:
                return _REUSED
            return original(*args, **kwargs)

        self._patched = (pl_module, pl_module.__dict__.get("predict_step", _UNSET))
        pl_module.__dict__["predict_step"] = predict_step

    def _unpatch(self) -> None:
        if self._patched is None:
            return
        module, saved = self._patched
        if saved is _UNSET:
            module.__dict__.pop("predict_step", None)
        else:
            module.__dict__["predict_step"] = saved
        self._patched = None

    def on_predict_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._batches[dataloader_idx] = self._batches.get(dataloader_idx, 0) + 1
        if not self.interval.on_batch:
            return
        self._reuse = None
        self._batch_fingerprint = _fingerprint(batch)
        previous = self._previous.get((dataloader_idx, "batch", batch_idx))
        if previous is None or previous.batch_fingerprint != self._batch_fingerprint:
            return
        indices = self._indices(
            trainer,
            trainer.predict_loop.current_batch_indices,
            len(previous.indices),
            dataloader_idx,
            advance=False,
        )
        if tuple(indices.tolist()) == previous.indices and _shard_intact(self.output_dir, previous):
            self._reuse = previous

    # ------------------------------------------------------------------ writing
    def _indices(
        self,
        trainer: pl.Trainer,
        batch_indices: Any,
        size: int,
        dataloader_idx: int,
        advance: bool = True,
    ) -> np.ndarray:
        if batch_indices is not None and len(batch_indices) == size:
            return np.asarray(batch_indices, dtype=np.int64)
        if trainer.world_size > 1:
            raise ValueError(
                "ExplanationWriter needs the dataset index of every sequence, and Lightning did "
                "not track them: use a torch DataLoader over a map-style dataset"
            )
        start = self._counters.get(dataloader_idx, 0)
        if advance:
            self._counters[dataloader_idx] = start + size
        return np.arange(start, start + size, dtype=np.int64)

    def _write_manifest(self, trainer: pl.Trainer, status: str) -> None:
        loaders = sorted(set(self._expected) | set(self._written))
        document = {
            "format": _MANIFEST_FORMAT,
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "status": status,
            "write_interval": "batch" if self.interval.on_batch else "epoch",
            "dataloaders": {
                str(dl): {
                    "batches": self._batches.get(dl, 0)
                    if status == "done"
                    else self._expected.get(dl),
                    "shards": [r.to_json() for _, r in sorted(self._written.get(dl, {}).items())]
                    if status == "done"
                    else [],
                }
                for dl in loaders
            },
        }
        path = self.output_dir / _manifest_name(trainer.global_rank)
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(document, separators=(",", ":")))
        except OSError as err:
            raise OSError(
                err.errno,
                f"ExplanationWriter could not write {path}: {err.strerror or err}. The shards "
                "are intact; free space and run trainer.predict again with the same writer",
            ) from err

    def _save(
        self,
        arrays: dict[str, np.ndarray],
        trainer: pl.Trainer,
        dataloader_idx: int,
        kind: str,
        number: int,
    ) -> Path:
        rank = trainer.global_rank
        name = _shard_name(dataloader_idx, rank, kind, number)
        path = self.output_dir / name
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        record = _ShardRecord(
            file=name,
            dataloader_idx=dataloader_idx,
            rank=rank,
            kind=kind,
            number=number,
            indices=tuple(int(i) for i in arrays["index"].tolist()),
            arrays={k: (tuple(v.shape), v.dtype.str) for k, v in arrays.items()},
            nbytes=len(data),
            checksum=_checksum(data),
            batch_fingerprint=self._batch_fingerprint if kind == "batch" else None,
        )
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
            atomic_write_text(self.output_dir / _record_name(name), json.dumps(record.to_json()))
        except OSError as err:
            what = f"batch {number}" if kind == "batch" else "the shard"
            raise OSError(
                err.errno,
                f"ExplanationWriter could not write {what} of dataloader {dataloader_idx} "
                f"(rank {rank}) to {path}: {err.strerror or err}. Every shard written before "
                "it is intact; free space and run trainer.predict again with the same writer "
                f"to complete {self.output_dir}",
            ) from err
        self._written.setdefault(dataloader_idx, {})[number] = record
        return path

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        reused, self._reuse = self._reuse, None
        if reused is not None:
            self._indices(trainer, batch_indices, len(reused.indices), dataloader_idx)
            self._written.setdefault(dataloader_idx, {})[batch_idx] = reused
            return
        if prediction is _REUSED:
            raise RuntimeError("ExplanationWriter lost track of a skipped batch")
        if self._explains_itself:
            config = self._config_cache
            prediction = explain_batch(
                pl_module,
                batch,
                config["method"],
                config["target"],
                vocab=config["vocab"],
                batch_to_inputs=self.batch_to_inputs,
                **config["method_kwargs"],
            )
        arrays = _check_prediction(prediction)
        arrays["index"] = self._indices(
            trainer, batch_indices, len(arrays["lengths"]), dataloader_idx
        )
        self._save(arrays, trainer, dataloader_idx, "batch", batch_idx)

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        if not predictions:
            return
        # One dataloader gives a flat list of batches; several give a list per dataloader.
        # ``batch_indices`` is always nested: dataloaders x batches x samples.
        nested = isinstance(predictions[0], list)
        per_loader = predictions if nested else [predictions]
        for dataloader_idx, batches in enumerate(per_loader):
            if not batches:
                continue
            indices = (
                list(batch_indices[dataloader_idx]) if dataloader_idx < len(batch_indices) else []
            )
            indices += [None] * (len(batches) - len(indices))
            parts = [_check_prediction(b) for b in batches]
            for part, idx in zip(parts, indices, strict=True):
                part["index"] = self._indices(trainer, idx, len(part["lengths"]), dataloader_idx)
            self._save(_concatenate(parts), trainer, dataloader_idx, "epoch", 0)


def _our_file(name: str) -> bool:
    """A shard, a shard record or a manifest (what ``overwrite=True`` removes)."""
    return bool(_SHARD.match(name) or _RECORD.match(name) or _MANIFEST.match(name))


def _check_prediction(prediction: Any) -> dict[str, np.ndarray]:
    if (
        not isinstance(prediction, dict)
        or "scores" not in prediction
        or "lengths" not in prediction
    ):
        raise TypeError(
            "ExplanationWriter expects predict_step to return explanation arrays: use "
            "ExplainingModule, or pass a plain captum-rnn model so the writer explains itself"
        )
    arrays = {}
    for key, value in prediction.items():
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        if array.dtype == object:
            raise TypeError(
                f"explanation array {key!r} has dtype object and cannot be written safely"
            )
        arrays[key] = array
    return arrays


def _pad_to(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-pad (text: empty) every axis after the first up to ``shape``."""
    pad = [(0, 0)] + [(0, want - have) for have, want in zip(array.shape[1:], shape, strict=True)]
    if not any(after for _, after in pad):
        return array
    return np.pad(array, pad, constant_values="" if array.dtype.kind == "U" else 0)


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join shards' arrays, padding every axis after the first (time; for sequence-output
    explanations also the output axis) to the longest."""
    keys = set(parts[0])
    for part in parts[1:]:
        keys &= set(part)
    joined = {}
    for k in sorted(keys):
        shape = tuple(max(dims) for dims in zip(*(p[k].shape[1:] for p in parts), strict=True))
        joined[k] = np.concatenate([_pad_to(p[k], shape) for p in parts])
    return joined


def _load_shard(path: Path, record: _ShardRecord | None) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    _check_shard(path, data, record)
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    missing = set(_REQUIRED) - arrays.keys()
    if missing:
        raise ValueError(f"{path} is not an explanation shard: it lacks {sorted(missing)}")
    if record is not None and tuple(arrays["index"].tolist()) != record.indices:
        raise ValueError(f"{path}: field 'index' differs from the manifest's indices")
    return arrays


@dataclass
class _Folder:
    """Everything an output folder holds and records, read (and type-checked) once."""

    path: Path
    meta: dict[str, Any]
    files: dict[str, Path]  # shard name -> path
    records: dict[str, _ShardRecord]  # per-shard records of unfinished ranks
    manifests: dict[int, _Manifest]

    @classmethod
    def read(cls, folder: Path) -> _Folder:
        files, records, manifests = {}, {}, {}
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if _SHARD.match(path.name):
                files[path.name] = path
            elif _RECORD.match(path.name):
                record = _read_record(path)
                records[record.file] = record
            elif match := _MANIFEST.match(path.name):
                manifests[int(match.group(1))] = _read_manifest(path)
        return cls(folder, _read_meta(folder), files, records, manifests)

    def dataloaders(self) -> list[int]:
        found = {int(_SHARD.match(n).group(1)) for n in self.files}  # type: ignore[union-attr]
        found |= {r.dataloader_idx for r in self.records.values()}
        for manifest in self.manifests.values():
            found |= {dl for dl, n in manifest.batches.items() if n}
        return sorted(found)

    def check(
        self, dataloader_idx: int
    ) -> tuple[list[tuple[Path, _ShardRecord | None]], list[str]]:
        """The shards to read for one dataloader, and what is wrong with the folder."""
        problems: list[str] = []
        world_size = self.meta.get("world_size")
        ranks_seen = set(self.manifests) | {r.rank for r in self.records.values()}
        ranks_seen |= {int(_SHARD.match(n).group(2)) for n in self.files}  # type: ignore[union-attr]
        if world_size is None:
            problems.append("meta.json is missing")
            world_size = max(ranks_seen, default=0) + 1
        elif ranks_seen - set(range(world_size)):
            problems.append(
                f"world_size mismatch: meta.json records world_size={world_size} but rank(s) "
                f"{_ranges(ranks_seen - set(range(world_size)))} wrote files here"
            )
        for rank, manifest in sorted(self.manifests.items()):
            if manifest.world_size != world_size:
                problems.append(
                    f"world_size mismatch: meta.json records world_size={world_size} but "
                    f"{_manifest_name(rank)} records world_size={manifest.world_size}"
                )
        if not self.manifests and not self.records:
            problems.append(
                "it holds no manifest (written by an older captum-rnn, or not by "
                "ExplanationWriter), so its completeness cannot be checked"
            )
        expected: dict[str, _ShardRecord] = {}
        for rank in range(world_size) if (self.manifests or self.records) else ():
            manifest = self.manifests.get(rank)
            if manifest is not None and manifest.status == "done":
                listed = manifest.shards.get(dataloader_idx, [])
                expected.update((r.file, r) for r in listed)
                problems += _unlisted(manifest, dataloader_idx, listed)
                continue
            recorded = [
                r
                for r in self.records.values()
                if r.rank == rank and r.dataloader_idx == dataloader_idx
            ]
            expected.update((r.file, r) for r in recorded)
            if manifest is None:
                problems.append(
                    f"rank {rank} left no manifest (it never started, or its files were removed)"
                )
                continue
            batches = manifest.batches.get(dataloader_idx)
            if batches is None:
                problems.append(
                    f"rank {rank} did not finish ({len(recorded)} shards written, "
                    "of an unknown number)"
                )
                continue
            wanted = (
                set(range(batches))
                if manifest.write_interval == "batch"
                else set(range(min(batches, 1)))
            )
            never = wanted - {r.number for r in recorded}
            what = "batches" if manifest.write_interval == "batch" else "epoch shard"
            problems.append(
                f"rank {rank} did not finish: {what} {_ranges(never)} of {batches} never written"
                if never
                else f"rank {rank} did not finish (its shards are written, its manifest is not)"
            )
        missing = [r for name, r in sorted(expected.items()) if name not in self.files]
        present = [r for name, r in sorted(expected.items()) if name in self.files]
        if missing:
            listed = ", ".join(r.describe() for r in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            problems.append(f"missing shards: {listed}{more}")
            lost = {i for r in missing for i in r.indices} - {i for r in present for i in r.indices}
            if lost:
                problems.append(f"missing dataset indices: {_ranges(lost)} ({len(lost)} sequences)")
        unlisted = sorted(
            name
            for name in self.files
            if name not in expected and int(_SHARD.match(name).group(1)) == dataloader_idx  # type: ignore[union-attr]
        )
        if unlisted and (self.manifests or self.records):
            problems.append(
                f"{len(unlisted)} shard(s) that no manifest records: {', '.join(unlisted[:5])}"
                + (" ..." if len(unlisted) > 5 else "")
            )
        parts = [(self.files[r.file], r) for r in present]
        parts += [(self.files[name], None) for name in unlisted]
        return parts, problems


def _unlisted(manifest: _Manifest, dataloader_idx: int, listed: list[_ShardRecord]) -> list[str]:
    """A finished rank's manifest must list one shard per batch it ran."""
    batches = manifest.batches.get(dataloader_idx) or 0
    wanted = (
        set(range(batches)) if manifest.write_interval == "batch" else set(range(min(batches, 1)))
    )
    numbers = {r.number for r in listed}
    if numbers == wanted:
        return []
    return [
        f"{_manifest_name(manifest.rank)} lists shards {_ranges(numbers)} for {batches} batches"
    ]


def read_explanations(
    output_dir: str | os.PathLike[str],
    *,
    dataloader_idx: int | None = None,
    vocab: Any = None,
    as_arrays: bool = False,
    strict: bool = True,
) -> Explanations | dict[str, np.ndarray]:
    """Merge the shards an :class:`ExplanationWriter` wrote, in dataset order.

    The folder is checked against the writer's manifests first: every rank of the
    recorded world size must have finished, and every shard it recorded must be there,
    with the array shapes, dtypes and checksum recorded (checked on the array headers
    before any data is read).

    Args:
        output_dir: the writer's folder.
        dataloader_idx: which predict dataloader to read; may be left out when there
            was only one.
        vocab: decodes token ids; by default the ``vocab.json`` the writer saved, if any.
        as_arrays: return padded NumPy arrays instead of ``Explanation`` objects.
        strict: raise when the folder is incomplete (missing shards, an unfinished
            rank, a world-size mismatch, shards no manifest records); with ``False``,
            warn and return what is there.

    Returns:
        :class:`~captum_rnn.Explanations` sorted by dataset index (each with
        ``extra["index"]``), or with ``as_arrays=True`` a dict of arrays: ``index``,
        ``lengths``, ``scores`` ``(n, time)`` and the rest (see ``explain_batch``).

    Raises:
        FileNotFoundError: when the folder holds no shards.
        ValueError: when the folder is incomplete and ``strict`` (the message names the
            missing batches and dataset indices); when a shard, ``meta.json`` or a
            manifest does not match what the writer records (naming the file and field,
            whatever ``strict``); when a dataset index appears twice with different
            explanations (repeats that agree, as a ``DistributedSampler``'s padding
            makes, are dropped); or several dataloaders were written and
            ``dataloader_idx`` is not given.

    Example:
        >>> explanations = read_explanations("explanations/")  # doctest: +SKIP
        >>> explanations[0].top(3)  # doctest: +SKIP
    """
    folder_path = Path(output_dir)
    folder = _Folder.read(folder_path)
    if not folder.files and not folder.manifests and not folder.records:
        raise FileNotFoundError(f"no explanation shards in {folder_path}")
    loaders = folder.dataloaders()
    if dataloader_idx is None:
        if len(loaders) > 1:
            raise ValueError(
                f"{folder_path} holds several dataloaders {loaders}: pass dataloader_idx"
            )
        dataloader_idx = loaders[0] if loaders else 0
    if loaders and dataloader_idx not in loaders:
        raise ValueError(f"no shards for dataloader_idx={dataloader_idx}; found {loaders}")
    shards, problems = folder.check(dataloader_idx)
    if problems:
        message = (
            f"{folder_path} is incomplete (dataloader {dataloader_idx}): "
            + "; ".join(problems)
            + ". Run trainer.predict again with the same ExplanationWriter to complete it"
            + (", or pass strict=False to read what is there" if strict else "")
        )
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    if not shards:
        raise FileNotFoundError(
            f"no explanation shards for dataloader {dataloader_idx} in {folder_path}"
        )
    for path, record in shards:  # every header first: nothing is read from a bad folder
        _check_headers(path, path, record)
    parts = [_load_shard(path, record) for path, record in shards]
    arrays = _concatenate(parts)
    order = np.argsort(arrays["index"], kind="stable")
    arrays = {k: v[order] for k, v in arrays.items()}
    arrays = _drop_repeats(arrays, folder_path)
    if as_arrays:
        return arrays
    if vocab is None and (folder_path / "vocab.json").exists():
        from captum_rnn.data import Vocabulary

        vocab = Vocabulary.load(folder_path / "vocab.json")
    return _to_explanations(arrays, folder.meta, vocab)


def _drop_repeats(arrays: dict[str, np.ndarray], folder: Path) -> dict[str, np.ndarray]:
    """Keep one row per dataset index (arrays sorted by index).

    A user's own ``DistributedSampler`` pads the last ranks by repeating a few indices,
    so the same sequence can be explained twice: such repeats agree and are dropped.
    Repeats that disagree mean two different runs wrote into one folder.
    """
    index = arrays["index"]
    repeat = np.zeros(len(index), dtype=bool)
    repeat[1:] = index[1:] == index[:-1]
    for row in np.flatnonzero(repeat):
        first = row - 1
        while repeat[first]:
            first -= 1
        same = arrays["lengths"][row] == arrays["lengths"][first] and np.allclose(
            arrays["scores"][row], arrays["scores"][first], rtol=1e-4, atol=1e-6, equal_nan=True
        )
        if not same:
            raise ValueError(
                f"dataset index {int(index[row])} was written more than once in {folder} with "
                "different explanations; was the folder used by two runs? (the writer "
                "refuses this unless overwrite=True)"
            )
    return {k: v[~repeat] for k, v in arrays.items()}


def _read_meta(folder: Path) -> dict[str, Any]:
    """Read and type-check ``meta.json`` (``{}`` when absent)."""
    path = folder / "meta.json"
    if not path.exists():
        return {}
    meta = load_json(path, "ExplanationWriter meta", lambda data: data)

    def check(key: str, test: Any, what: str, required: bool = True) -> None:
        if required or (isinstance(meta, dict) and key in meta):
            _field(meta, key, path, key, test, what)

    check("format", lambda v: v == _FORMAT, repr(_FORMAT))
    check("method", lambda v: isinstance(v, str), "a method name")
    check("world_size", lambda v: _is_count(v) and v >= 1, "an int >= 1")
    check("write_interval", lambda v: v in ("batch", "epoch"), "'batch' or 'epoch'")
    check("method_kwargs", lambda v: isinstance(v, dict), "a JSON object", required=False)
    check(
        "class_names",
        lambda v: v is None or (isinstance(v, list) and all(isinstance(c, str) for c in v)),
        "a list of strings or null",
        required=False,
    )
    check("model_fingerprint", lambda v: isinstance(v, str), "a string", required=False)
    return meta


def _to_explanations(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], vocab: Any
) -> Explanations:
    method = str(meta.get("method", "unknown"))
    class_names = meta.get("class_names")
    out = Explanations()

    def optional(key: str, i: int, cast: Any, missing: Any) -> Any:
        if key not in arrays:
            return None
        value = arrays[key][i]
        if isinstance(missing, float) and np.isnan(value):
            return None
        if not isinstance(missing, float) and value == missing:
            return None
        return cast(value)

    if "n_outputs" in arrays:
        return _to_step_explanations(arrays, method, class_names, vocab)
    for i in range(len(arrays["index"])):
        n = int(arrays["lengths"][i])
        feature_scores = None
        if "inputs" in arrays:
            ids = arrays["inputs"][i, :n].tolist()
            tokens = vocab.decode(ids) if vocab is not None else [str(t) for t in ids]
        else:
            tokens = [f"t{j}" for j in range(n)]
            if "feature_scores" in arrays:
                feature_scores = arrays["feature_scores"][i, :n].astype(float).tolist()
        label = arrays["label"][i].item() if "label" in arrays else None
        out.append(
            Explanation(
                tokens=list(tokens),
                scores=arrays["scores"][i, :n].astype(float).tolist(),
                method=method,
                target=optional("target", i, int, -1),
                predicted=optional("predicted", i, int, -1),
                probability=optional("probability", i, float, np.nan),
                output=optional("output", i, float, np.nan),
                delta=optional("delta", i, float, np.nan),
                n_steps=optional("n_steps", i, int, -1),
                feature_scores=feature_scores,
                label=label,
                class_names=list(class_names) if class_names else None,
                extra={"index": int(arrays["index"][i])},
            )
        )
    return out


def _to_step_explanations(
    arrays: dict[str, np.ndarray], method: str, class_names: Any, vocab: Any
) -> Explanations:
    """Sequence-output explanations (a tagger's, a forecaster's) from shard arrays."""
    out = Explanations()
    for i in range(len(arrays["index"])):
        n, m = int(arrays["lengths"][i]), int(arrays["n_outputs"][i])
        if "inputs" in arrays:
            ids = arrays["inputs"][i, :n].tolist()
            tokens = vocab.decode(ids) if vocab is not None else [str(t) for t in ids]
        else:
            tokens = [f"t{j}" for j in range(n)]
        values: dict[str, Any] = {}
        for name, cast in (("target", int), ("predicted", int), ("n_steps", int),
                           ("probability", float), ("output", float), ("delta", float)):  # fmt: skip
            row = arrays[name][i, :m] if name in arrays else None
            missing = row is None or (
                bool(np.isnan(row).all()) if row.dtype.kind == "f" else bool((row == -1).all())
            )
            values[name] = None if missing else [cast(v) for v in row]
        features = arrays.get("feature_scores")
        steps = arrays["output_steps"][i, :m].tolist() if "output_steps" in arrays else None
        out.append(
            Explanation(
                tokens=list(tokens),
                scores=arrays["scores"][i, :m, :n].astype(float).tolist(),
                method=method,
                feature_scores=None
                if features is None
                else features[i, :m, :n].astype(float).tolist(),
                label=arrays["label"][i].item() if "label" in arrays else None,
                class_names=list(class_names) if class_names else None,
                extra={"index": int(arrays["index"][i]), "output_steps": steps},
                output_labels=[str(v) for v in arrays["output_labels"][i, :m]],
                **values,
            )
        )
    return out
