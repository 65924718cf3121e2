"""``ExplanationWriter`` and ``read_explanations``: explain whole data sets with ``trainer.predict``.

Every rank writes one NPZ shard per batch (``write_interval="batch"``) or per
dataloader (``"epoch"``), named by dataloader, rank and batch, holding the dataset
index of each sequence beside its arrays. Shards are plain NumPy arrays written with
``np.savez`` and read with ``allow_pickle=False``: nothing is ever unpickled.
``meta.json`` records the method and settings; ``vocab.json`` the vocabulary when
one was given. :func:`read_explanations` merges the shards back in dataset order.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from captum_rnn.callbacks._explainers import check_methods
from captum_rnn.callbacks._explaining_module import explain_batch
from captum_rnn.explanation import Explanation, Explanations

__all__ = ["ExplanationWriter", "read_explanations"]

_FORMAT = "captum_rnn.ExplanationShards/1"
_SHARD = re.compile(r"^explanations-dl(\d+)-rank(\d+)-(batch|epoch)(\d+)\.npz$")
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


class ExplanationWriter(BasePredictionWriter):
    """Write the explanation of every sequence ``trainer.predict`` sees, one shard per rank and batch.

    Use it with :class:`ExplainingModule` (the module explains, the writer writes), or
    directly with a captum-rnn model: then the writer explains each batch itself with
    ``method``. Pass ``return_predictions=False`` to ``trainer.predict`` so memory stays
    flat however large the data set. Under DDP every rank writes its own shards and each
    dataset index is written exactly once; :func:`read_explanations` merges them.
    Lightning's progress bar reads "Explaining" while it runs.

    Args:
        output_dir: folder for the shards, ``meta.json`` and ``vocab.json``.
        method: the method name when the module is a plain model (default integrated
            gradients); with an ``ExplainingModule`` it must be ``None`` or the module's.
        write_interval: ``"batch"`` (one shard per batch; flat memory) or ``"epoch"``
            (one shard per rank and dataloader, written at the end).
        target: ``None``, an int or ``"label"`` (plain models only).
        overwrite: remove earlier shards in ``output_dir`` first; otherwise a folder
            that already holds shards is refused.
        vocab: a vocabulary saved beside the shards (plain models only; an
            ``ExplainingModule`` brings its own).
        method_kwargs: options of the method (plain models only).

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
        self.method_kwargs = dict(method_kwargs)
        self._bar: Any = None
        self._bar_class: type | None = None
        self._counters: dict[int, int] = {}
        self._explains_itself = False

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
        existing = sorted(p.name for p in self.output_dir.glob("explanations-*.npz"))
        if existing and not self.overwrite:
            raise FileExistsError(
                f"{self.output_dir} already holds {len(existing)} explanation shards "
                f"(e.g. {existing[0]}); pass overwrite=True or choose an empty folder"
            )
        trainer.strategy.barrier("ExplanationWriter.setup")
        if trainer.is_global_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for name in existing:
                (self.output_dir / name).unlink(missing_ok=True)
            meta = {
                "format": _FORMAT,
                "method": config["method"],
                "target": _json_safe(config["target"]),
                "method_kwargs": {k: _json_safe(v) for k, v in config["method_kwargs"].items()},
                "class_names": config["class_names"],
                "world_size": trainer.world_size,
                "write_interval": "batch" if self.interval.on_batch else "epoch",
            }
            _write_json(self.output_dir / "meta.json", meta)
            vocab_file = self.output_dir / "vocab.json"
            if config["vocab"] is not None and hasattr(config["vocab"], "save"):
                config["vocab"].save(vocab_file)
            elif vocab_file.exists():
                vocab_file.unlink()
        trainer.strategy.barrier("ExplanationWriter.setup.done")
        self._config_cache = config
        bar = trainer.progress_bar_callback
        if bar is not None and self._bar is None and type(bar) not in _BAR_CLASSES.values():
            self._bar, self._bar_class = bar, type(bar)
            bar.__class__ = _explaining_bar_class(type(bar))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._bar is not None and self._bar_class is not None:
            self._bar.__class__ = self._bar_class
        self._bar = self._bar_class = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._counters = {}
        if self.interval.on_batch and trainer.predict_loop.return_predictions:
            if trainer.is_global_zero:
                warnings.warn(
                    "trainer.predict keeps every explanation in memory: pass "
                    "return_predictions=False so memory stays flat (the shards hold them)",
                    stacklevel=2,
                )

    # ------------------------------------------------------------------ writing
    def _indices(
        self, trainer: pl.Trainer, batch_indices: Any, size: int, dataloader_idx: int
    ) -> np.ndarray:
        if batch_indices is not None and len(batch_indices) == size:
            return np.asarray(batch_indices, dtype=np.int64)
        if trainer.world_size > 1:
            raise ValueError(
                "ExplanationWriter needs the dataset index of every sequence, and Lightning did "
                "not track them: use a torch DataLoader over a map-style dataset"
            )
        start = self._counters.get(dataloader_idx, 0)
        self._counters[dataloader_idx] = start + size
        return np.arange(start, start + size, dtype=np.int64)

    def _save(
        self,
        arrays: dict[str, np.ndarray],
        trainer: pl.Trainer,
        dataloader_idx: int,
        kind: str,
        number: int,
    ) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        name = (
            f"explanations-dl{dataloader_idx}-rank{trainer.global_rank:03d}-{kind}{number:07d}.npz"
        )
        path = self.output_dir / name
        tmp = path.with_name(name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
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
        if self._explains_itself:
            config = self._config_cache
            prediction = explain_batch(
                pl_module,
                batch,
                config["method"],
                config["target"],
                vocab=config["vocab"],
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


def _pad_to(array: np.ndarray, time: int) -> np.ndarray:
    if array.ndim < 2 or array.shape[1] == time:
        return array
    pad = [(0, 0)] * array.ndim
    pad[1] = (0, time - array.shape[1])
    return np.pad(array, pad)


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = set(parts[0])
    for part in parts[1:]:
        keys &= set(part)
    time = max(p["scores"].shape[1] for p in parts)
    return {k: np.concatenate([_pad_to(p[k], time) for p in parts]) for k in sorted(keys)}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _load_shard(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    missing = {"index", "lengths", "scores"} - arrays.keys()
    if missing:
        raise ValueError(f"{path} is not an explanation shard: it lacks {sorted(missing)}")
    return arrays


def read_explanations(
    output_dir: str | os.PathLike[str],
    *,
    dataloader_idx: int | None = None,
    vocab: Any = None,
    as_arrays: bool = False,
) -> Explanations | dict[str, np.ndarray]:
    """Merge the shards an :class:`ExplanationWriter` wrote, in dataset order.

    Args:
        output_dir: the writer's folder.
        dataloader_idx: which predict dataloader to read; may be left out when there
            was only one.
        vocab: decodes token ids; by default the ``vocab.json`` the writer saved, if any.
        as_arrays: return padded NumPy arrays instead of ``Explanation`` objects.

    Returns:
        :class:`~captum_rnn.Explanations` sorted by dataset index (each with
        ``extra["index"]``), or with ``as_arrays=True`` a dict of arrays: ``index``,
        ``lengths``, ``scores`` ``(n, time)`` and the rest (see ``explain_batch``).

    Raises:
        FileNotFoundError: when the folder holds no shards.
        ValueError: when a dataset index appears twice with different explanations
            (repeats that agree, as a ``DistributedSampler``'s padding makes, are
            dropped), or several dataloaders were written and ``dataloader_idx`` is not
            given.

    Example:
        >>> explanations = read_explanations("explanations/")  # doctest: +SKIP
        >>> explanations[0].top(3)  # doctest: +SKIP
    """
    folder = Path(output_dir)
    shards: dict[int, list[Path]] = {}
    for path in sorted(folder.glob("explanations-*.npz")):
        match = _SHARD.match(path.name)
        if match:
            shards.setdefault(int(match.group(1)), []).append(path)
    if not shards:
        raise FileNotFoundError(f"no explanation shards in {folder}")
    if dataloader_idx is None:
        if len(shards) > 1:
            raise ValueError(
                f"{folder} holds several dataloaders {sorted(shards)}: pass dataloader_idx"
            )
        dataloader_idx = next(iter(shards))
    if dataloader_idx not in shards:
        raise ValueError(f"no shards for dataloader_idx={dataloader_idx}; found {sorted(shards)}")
    parts = [_load_shard(p) for p in shards[dataloader_idx]]
    arrays = _concatenate(parts)
    order = np.argsort(arrays["index"], kind="stable")
    arrays = {k: v[order] for k, v in arrays.items()}
    arrays = _drop_repeats(arrays, folder)
    if as_arrays:
        return arrays
    meta = _read_meta(folder)
    if vocab is None and (folder / "vocab.json").exists():
        from captum_rnn.data import Vocabulary

        vocab = Vocabulary.load(folder / "vocab.json")
    return _to_explanations(arrays, meta, vocab)


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
    path = folder / "meta.json"
    if not path.exists():
        return {}
    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{path} is not an ExplanationWriter meta file")
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
