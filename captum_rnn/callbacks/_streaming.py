"""A Lightning callback that explains a monitored stream as its steps arrive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from captum_rnn.attr import StreamingExplainer
from captum_rnn.callbacks._schedule import explained_model

__all__ = ["StreamingExplanationCallback"]


def _first_tensor(batch: Any) -> Tensor:
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, dict):
        for key in ("inputs", "x", "features", "input_ids"):
            if isinstance(batch.get(key), Tensor):
                return batch[key]
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Tensor):
        return batch[0]
    raise ValueError(
        f"cannot read the new step from a batch of type {type(batch).__name__}: pass "
        "batch_to_step= (a callable batch -> (batch, features) or token ids (batch,))"
    )


class StreamingExplanationCallback(pl.Callback):
    """Explain the current prediction of a monitored stream in ``trainer.predict``.

    Each predict batch is the newest step of every monitored sequence (e.g. one reading
    of each patient's vital signs): ``(batch, features)``, or token ids ``(batch,)``.
    After each batch the callback updates a :class:`~captum_rnn.attr.StreamingExplainer`
    on the module being predicted (or the model an ``ExplainingModule`` wraps) and holds
    the attribution of the current prediction over every step so far. A new predict run
    starts a new stream; the stream's state is saved in checkpoints.

    Args:
        target: the output to explain; by default the current prediction.
        batch_to_step: a callable ``batch -> step`` for batches other than a tensor, a
            tuple/list starting with it, or a dict with key ``inputs``/``x``/``features``.
        on_update: called as ``on_update(attribution, explainer)`` after every step
            (raise an alarm, log, plot); ``attribution`` is ``(batch, steps so far)``.
        keep_history: keep every step's attribution in :attr:`history` (on the CPU).
        explainer_kwargs: passed to :class:`~captum_rnn.attr.StreamingExplainer`
            (``layer=``, ``head=``, ``dtype=`` and the model contract's hints).

    Example:
        >>> callback = StreamingExplanationCallback(on_update=lambda a, e: print(a.shape))
        >>> trainer = pl.Trainer(callbacks=[callback])  # doctest: +SKIP
        >>> trainer.predict(monitor, step_loader)  # doctest: +SKIP
    """

    def __init__(
        self,
        target: int | None = None,
        batch_to_step: Callable[[Any], Tensor] | None = None,
        on_update: Callable[[Tensor, StreamingExplainer], Any] | None = None,
        keep_history: bool = True,
        **explainer_kwargs: Any,
    ) -> None:
        if batch_to_step is not None and not callable(batch_to_step):
            raise TypeError("batch_to_step must be callable: batch -> the new step")
        if on_update is not None and not callable(on_update):
            raise TypeError("on_update must be callable: (attribution, explainer) -> None")
        self.target = target
        self.batch_to_step = batch_to_step or _first_tensor
        self.on_update = on_update
        self.keep_history = keep_history
        self.explainer_kwargs = explainer_kwargs
        self.explainer: StreamingExplainer | None = None
        self.latest: Tensor | None = None
        self.history: list[Tensor] = []
        self._saved: dict[str, Any] | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        model = explained_model(pl_module)
        self.explainer = StreamingExplainer(model, target=self.target, **self.explainer_kwargs)
        if self._saved is not None:
            self.explainer.load_state_dict(self._saved)
            self._saved = None
        else:
            self.latest, self.history = None, []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.explainer is None:  # pragma: no cover - Lightning calls on_predict_start
            self.on_predict_start(trainer, pl_module)
        attribution = self.explainer.update(self.batch_to_step(batch))
        self.latest = attribution
        if self.keep_history:
            self.history.append(attribution.detach().cpu())
        if self.on_update is not None:
            self.on_update(attribution, self.explainer)

    def state_dict(self) -> dict[str, Any]:
        """The stream's state (see :meth:`StreamingExplainer.state_dict`)."""
        return {} if self.explainer is None else {"stream": self.explainer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the saved stream at the next ``trainer.predict``."""
        stream = state_dict.get("stream")
        self._saved = dict(stream) if stream else None
        if self._saved is not None and self.explainer is not None:
            self.explainer.load_state_dict(self._saved)
            self._saved = None

    @property
    def prediction(self) -> Tensor:
        """``(batch,)`` the explained output index after the last step."""
        if self.explainer is None:
            raise RuntimeError("no stream yet: run trainer.predict with this callback")
        return self.explainer.prediction
