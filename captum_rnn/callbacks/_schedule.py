"""The schedule every explaining callback shares: when to run, on which rank, with what state.

A periodic callback runs once per due training epoch (``(epoch + 1) % every_n_epochs
== 0``): at the end-of-epoch validation when there is one, else at the end of the
training epoch. It never runs during the sanity check. ``trainer.validate`` and
``trainer.test`` run it once each (when enabled). The work happens on global rank
zero only, inside :func:`isolated` so that training continues exactly as it would
have without the callback; every rank keeps the same schedule state, which is saved
in checkpoints so that a resumed run continues the schedule.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from tqdm.auto import tqdm

from captum_rnn._utils.options import check_int
from captum_rnn.callbacks._isolation import isolated
from captum_rnn.callbacks._logging_backends import LogPayload, send_media, send_scalars

__all__ = ["PeriodicCallback", "explained_model", "progress"]

_SHARDED = {"FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy", "XLAFSDPStrategy"}


def explained_model(pl_module: Any) -> Any:
    """The model to explain: ``pl_module`` itself, or the model an ExplainingModule wraps."""
    inner = getattr(pl_module, "explained_model", None)
    return inner if inner is not None else pl_module


@contextmanager
def progress(trainer: Any, total: int, description: str) -> Iterator[Any]:
    """A rank-zero progress bar that appears only when the work lasts more than a moment."""
    show = (
        trainer is not None and trainer.is_global_zero and trainer.progress_bar_callback is not None
    )
    bar = tqdm(
        total=total, desc=description, leave=False, delay=0.5, disable=not show, dynamic_ncols=True
    )
    try:
        yield bar
    finally:
        bar.close()


def _step(trainer: Any) -> int:
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    step = getattr(loop, "_batches_that_stepped", None)
    return int(step) if isinstance(step, int) else int(trainer.global_step)


class PeriodicCallback(Callback):
    """Base class: subclasses implement :meth:`_check` and :meth:`_work`.

    Args:
        every_n_epochs: run every this many training epochs (>= 1).
        on_validate: also run once in ``trainer.validate``.
        on_test: also run once in ``trainer.test``.
        background: draw figures and write them to the loggers on a worker thread, so
            training goes on meanwhile (scalars are always logged at once; everything
            has been sent when ``fit``/``validate``/``test`` returns).
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        on_validate: bool = True,
        on_test: bool = True,
        background: bool = True,
    ) -> None:
        every_n_epochs = check_int("every_n_epochs", every_n_epochs, 1)
        self.every_n_epochs = every_n_epochs
        self.on_validate = bool(on_validate)
        self.on_test = bool(on_test)
        self._last_epoch = -1
        self._num_runs = 0
        self.background = bool(background)
        self._fallback_dir: str | None = None
        self._pending: Future | None = None
        #: seconds to wait for the last figures to be sent before giving up with an error
        #: (a logging backend that blocks must not hang training or the interpreter).
        self.send_timeout = 300.0
        #: scalars of every run on this process: dicts with ``epoch``, ``stage``, ``step``.
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ subclass API
    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validate the configuration when the trainer starts (every rank)."""

    def _work(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> LogPayload:
        """Do the work on rank zero and return what to log."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        name = type(trainer.strategy).__name__
        if name in _SHARDED:
            raise ValueError(
                f"{type(self).__name__} explains the whole model on rank zero and cannot run "
                f"under the sharded strategy {name}; explain after training with "
                "ExplanationWriter and trainer.predict instead"
            )
        self._check(trainer, pl_module)
        self._fallback_dir = str(trainer.default_root_dir)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        fn = trainer.state.fn
        if fn == "fit":
            batch_progress = getattr(trainer.fit_loop.epoch_loop, "batch_progress", None)
            end_of_epoch = getattr(batch_progress, "is_last_batch", True)
            if end_of_epoch and self._due(trainer):
                self._run(trainer, pl_module, "validate", trainer.current_epoch)
        elif fn == "validate" and self.on_validate:
            self._run(trainer, pl_module, "validate", None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Reached only when this epoch had no end-of-epoch validation to run at.
        if self._due(trainer):
            self._run(trainer, pl_module, "validate", trainer.current_epoch)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.on_test:
            self._run(trainer, pl_module, "test", None)

    # Figures are drawn and sent on a worker thread; all is out when a trainer call ends.
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.wait()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != "fit":
            self.wait()

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.wait()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._shutdown(raise_errors=False)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._shutdown(raise_errors=True)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the figures and tables of the last run have been sent.

        Args:
            timeout: seconds to wait at most (default ``send_timeout``).

        Raises:
            TimeoutError: when the logging backend has not finished in time (its daemon
                thread is abandoned; it cannot keep the process alive).
            Exception: whatever sending them raised.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return
        limit = self.send_timeout if timeout is None else timeout
        try:
            pending.result(timeout=limit)
        except FutureTimeout:
            raise TimeoutError(
                f"{type(self).__name__}: the logging backend did not finish sending figures "
                f"within {limit:g} s (raise send_timeout if it is slow)"
            ) from None

    def _shutdown(self, raise_errors: bool) -> None:
        if raise_errors:
            self.wait()
        elif self._pending is not None:
            # another error is already on its way: give the backend a moment, never more
            try:
                self._pending.exception(timeout=min(5.0, self.send_timeout))
            except FutureTimeout:
                pass
            self._pending = None

    def __getstate__(self) -> dict[str, Any]:
        # Spawned DDP workers receive the callbacks pickled; threads do not travel.
        state = self.__dict__.copy()
        state["_pending"] = None
        return state

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self._last_epoch, "num_runs": self._num_runs, **self._extra_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_epoch = int(state_dict.get("last_epoch", -1))
        self._num_runs = int(state_dict.get("num_runs", 0))
        self._load_extra_state(state_dict)

    # ------------------------------------------------------------------ internals
    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch
        return (epoch + 1) % self.every_n_epochs == 0 and epoch != self._last_epoch

    def _run(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str, epoch: int | None
    ) -> None:
        if epoch is not None:
            self._last_epoch = epoch
        self._num_runs += 1
        if not trainer.is_global_zero:
            return
        with isolated(pl_module):
            payload = self._work(trainer, pl_module, stage)
        record = {"epoch": trainer.current_epoch, "stage": stage, "step": payload.step}
        record.update(payload.scalars)
        self.history.append(record)
        # Scalars at once, from this thread; drawing and writing figures can take longer
        # than the explanations themselves, so that happens on a worker thread.
        send_scalars(trainer.loggers, payload)
        self.wait()  # at most one run in flight, sent in order
        if not self.background:
            send_media(trainer.loggers, payload, self._fallback_dir)
            return
        self._pending = _in_daemon_thread(
            send_media, list(trainer.loggers), payload, self._fallback_dir
        )

    def _payload(self, trainer: pl.Trainer, tag: str, stage: str) -> LogPayload:
        return LogPayload(tag if stage != "test" else f"{tag}_test", _step(trainer))


def _in_daemon_thread(fn: Any, *args: Any) -> Future:
    """Run ``fn(*args)`` on a daemon thread; return its Future. Unlike a thread pool's
    workers, a daemon thread never blocks the interpreter's exit."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as error:  # handed to whoever waits
            future.set_exception(error)

    threading.Thread(target=run, name="captum-rnn-send", daemon=True).start()
    return future


def iterate(trainer: Any, items: Iterable[Any], total: int, description: str) -> Iterator[Any]:
    """Iterate ``items`` with a rank-zero progress bar (see :func:`progress`)."""
    with progress(trainer, total, description) as bar:
        for item in items:
            yield item
            bar.update(1)
