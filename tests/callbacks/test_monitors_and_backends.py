"""Monitors, logging backends, the isolation context and DDP training with the logger."""

from __future__ import annotations

import io
import json
import os
import random
from dataclasses import dataclass

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from callback_helpers import cue_data, loaders, tiny_model, trainer
from matplotlib.figure import Figure
from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, WandbLogger

import captum_rnn
from captum_rnn.callbacks import ExplanationLogger, FaithfulnessMonitor, RuleExtractionMonitor
from captum_rnn.callbacks._isolation import isolated
from captum_rnn.callbacks._logging_backends import LogPayload, send
from captum_rnn.data import pad_collate


# ---------------------------------------------------------------------- isolation
def test_isolated_restores_rng_modes_grads_and_flags_even_after_an_error():
    model = tiny_model(20, dropout=0.2).train()
    model.head.weight.grad = torch.ones_like(model.head.weight)
    model.embedding.weight.requires_grad_(False)
    torch_state, np_state, py_state = (
        torch.get_rng_state(),
        np.random.get_state(),
        random.getstate(),
    )
    with pytest.raises(RuntimeError, match="inside"):
        with isolated(model):
            torch.rand(3), np.random.rand(), random.random()
            model.eval()
            model.embedding.weight.requires_grad_(True)
            model(torch.tensor([[3, 4, 5]])).sum().backward()
            raise RuntimeError("inside")
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()
    assert random.getstate() == py_state
    assert all(m.training for m in model.modules())
    assert not model.embedding.weight.requires_grad and model.embedding.weight.grad is None
    assert torch.equal(model.head.weight.grad, torch.ones_like(model.head.weight))
    assert model.rnn.weight_hh_l0.grad is None


# ---------------------------------------------------------------------- monitors
def test_faithfulness_monitor_logs_the_metrics_of_captum_rnn(tmp_path):
    metrics = pytest.importorskip("captum_rnn.metrics")
    if not hasattr(metrics, "comprehensiveness"):
        pytest.skip("captum_rnn.metrics.comprehensiveness is not available")
    data = cue_data()
    model = tiny_model(len(data.vocab)).eval()
    _, val = loaders(data.to_dataset())

    def top_score(model, inputs, attributions, target=None, lengths=None):
        return attributions.max(dim=1).values

    monitor = FaithfulnessMonitor(
        range(6), metrics=("comprehensiveness", top_score), methods=("saliency", "ig")
    )
    trainer(tmp_path, callbacks=[monitor]).validate(model, val, verbose=False)
    [record] = monitor.history
    ids = torch.nn.utils.rnn.pad_sequence([val.dataset[i][0] for i in range(6)], batch_first=True)
    explanations = captum_rnn.explain(model, ids, method="saliency")
    expected = metrics.comprehensiveness(model, ids, explanations).mean().item()
    assert record["faithfulness/saliency/comprehensiveness"] == pytest.approx(
        expected, rel=1e-5, abs=1e-7
    )
    top = np.mean([max(e.scores) for e in explanations])
    assert record["faithfulness/saliency/top_score"] == pytest.approx(top, rel=1e-5)
    assert "faithfulness/ig/comprehensiveness" in record


def test_faithfulness_monitor_refuses_unknown_metrics(tmp_path):
    data = cue_data()
    _, val = loaders(data.to_dataset())
    monitor = FaithfulnessMonitor(range(2), metrics=("no_such_metric",))
    with pytest.raises(ValueError, match="no_such_metric.*available"):
        trainer(tmp_path, callbacks=[monitor]).validate(
            tiny_model(len(data.vocab)), val, verbose=False
        )


@pytest.mark.parametrize("cls", [FaithfulnessMonitor, ExplanationLogger])
def test_method_options_for_a_method_not_run_are_refused_at_construction(cls):
    # a typo in a method name used to be ignored silently by the monitor
    with pytest.raises(ValueError, match="not in methods.*integrated_gradiets"):
        cls(range(2), methods=("integrated_gradients",),
            method_kwargs={"integrated_gradiets": {"n_steps": 8}})  # fmt: skip
    with pytest.raises(TypeError, match="method_kwargs must be a dict"):
        cls(range(2), methods=("saliency",), method_kwargs=[("saliency", {})])


@dataclass
class _Report:
    fidelity: float
    queries: int
    method: str


class _ContainsGood:
    """A DFA-like rule: accept when the token "good" occurs."""

    num_states = 2
    report = _Report(fidelity=0.75, queries=12, method="fake")

    def accepts(self, symbols):
        return "good" in list(symbols)

    def plot(self):
        fig = Figure()
        fig.add_subplot().plot([0, 1])
        return fig

    def to_dot(self):
        return "digraph { 0 -> 1 }"


def test_rule_extraction_monitor_logs_fidelity_size_and_report(tmp_path):
    data = cue_data()
    model = tiny_model(len(data.vocab))
    train, val = loaders(data.to_dataset())
    seen = []

    def extractor(m):
        seen.append(m.training)
        return _ContainsGood()

    class ModeSpy(pl.Callback):  # runs after the monitor at the end of each epoch
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append(pl_module.training)

    # Without validation the monitor runs at the end of the training epoch, in train mode.
    monitor = RuleExtractionMonitor(
        [val.dataset[i] for i in range(10)], extractor=extractor, vocab=data.vocab
    )
    csv_logger = CSVLogger(tmp_path, name="run")
    trainer(tmp_path, max_epochs=2, logger=csv_logger, callbacks=[monitor, ModeSpy()]).fit(
        model, train
    )
    # Extracted in eval mode, and training mode restored afterwards.
    assert seen == [False, True, False, True]
    record = monitor.history[-1]
    model.eval()
    agree = []
    for i in range(10):
        ids, _ = val.dataset[i]
        decision = bool(model(ids[None]).argmax(-1).item() == 1)
        agree.append(_ContainsGood().accepts(data.vocab.decode(ids)) == decision)
    assert record["rules/fidelity"] == pytest.approx(np.mean(agree))
    assert record["rules/size"] == 2 and record["rules/report_queries"] == 12
    assert record["rules/report_fidelity"] == 0.75
    files = list((tmp_path / "run" / "version_0" / "rules").rglob("*"))
    assert {f.name for f in files if f.is_file()} == {"rules.png", "rules.json"}
    document = json.loads(next(f for f in files if f.name == "rules.json").read_text())
    assert document["dot"] == "digraph { 0 -> 1 }"


def test_rule_extraction_monitor_finds_extract_dfa_by_name(tmp_path, monkeypatch):
    import captum_rnn.rules

    data = cue_data()
    _, val = loaders(data.to_dataset())
    monitor = RuleExtractionMonitor(
        None, alphabet=["bad", "good"], method="lstar", extract_kwargs={"max_states": 5}
    )
    monkeypatch.delattr(captum_rnn.rules, "extract_dfa", raising=False)
    with pytest.raises(ValueError, match="extract_dfa is not available"):
        trainer(tmp_path, callbacks=[monitor]).validate(
            tiny_model(len(data.vocab)), val, verbose=False
        )
    calls = []

    def fake_extract_dfa(model, alphabet, method="lstar", **kwargs):
        calls.append((alphabet, method, kwargs))
        return _ContainsGood()

    monkeypatch.setattr(captum_rnn.rules, "extract_dfa", fake_extract_dfa, raising=False)
    trainer(tmp_path, callbacks=[monitor]).validate(tiny_model(len(data.vocab)), val, verbose=False)
    assert calls == [(["bad", "good"], "lstar", {"max_states": 5})]
    assert monitor.history[-1]["rules/size"] == 2
    assert "rules/fidelity" not in monitor.history[-1]  # no probe samples given


# ---------------------------------------------------------------------- backends
class _FakeWandb(WandbLogger):
    def __init__(self):
        Logger.__init__(self)
        self.calls = []

    def log_metrics(self, metrics, step=None):
        self.calls.append(("metrics", dict(metrics), step))

    def log_image(self, key, images, step=None, **kwargs):
        self.calls.append(("image", key, images, step))

    def log_table(self, key, columns=None, data=None, dataframe=None, step=None):
        self.calls.append(("table", key, columns, data, step))


class _FakeClient:
    def __init__(self):
        self.calls = []

    def log_figure(self, run_id, figure, artifact_file):
        self.calls.append(("figure", run_id, figure, artifact_file))

    def log_dict(self, run_id, dictionary, artifact_file):
        self.calls.append(("dict", run_id, dictionary, artifact_file))


class _FakeMLflow(MLFlowLogger):
    def __init__(self):
        Logger.__init__(self)
        self.client = _FakeClient()
        self.metrics = []

    @property
    def experiment(self):
        return self.client

    @property
    def run_id(self):
        return "run-1"

    def log_metrics(self, metrics, step=None):
        self.metrics.append((dict(metrics), step))


class _FolderLogger(Logger):
    """Any other logger: has a folder, and nothing else the callbacks know."""

    def __init__(self, folder):
        super().__init__()
        self._folder = str(folder)
        self.metrics = []

    name = "folder"
    version = 0

    @property
    def save_dir(self):
        return self._folder

    def log_metrics(self, metrics, step=None):
        self.metrics.append((dict(metrics), step))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def _payload():
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    return LogPayload(
        tag="explanations",
        step=7,
        figures={"ig": fig},
        tables={"table": (["sample", "top"], [[0, "good (+1)"], [1, "bad | worse"]])},
        documents={"ig": {"method": "ig"}},
        scalars={"explanations/ig/stability": 0.5},
    )


def test_wandb_gets_images_tables_and_scalars():
    logger = _FakeWandb()
    send([logger], _payload())
    kinds = [c[0] for c in logger.calls]
    assert kinds == ["metrics", "image", "table"]
    _, key, images, step = logger.calls[1]
    assert key == "explanations/ig" and step == 7
    assert images[0].dtype == np.uint8 and images[0].ndim == 3 and images[0].shape[2] == 3
    assert logger.calls[2][2:] == (["sample", "top"], [[0, "good (+1)"], [1, "bad | worse"]], 7)


def test_mlflow_gets_figures_and_dicts_as_artifacts():
    logger = _FakeMLflow()
    send([logger], _payload())
    assert logger.metrics == [({"explanations/ig/stability": 0.5}, 7)]
    calls = logger.client.calls
    assert [c[0] for c in calls] == ["figure", "dict", "dict"]
    assert calls[0][1] == "run-1" and calls[0][3] == "explanations/step=0000007/ig.png"
    assert calls[1][2] == {
        "columns": ["sample", "top"],
        "rows": [[0, "good (+1)"], [1, "bad | worse"]],
    }


def test_any_other_logger_gets_files_under_its_folder(tmp_path):
    logger = _FolderLogger(tmp_path)
    done = send([logger], _payload())
    folder = tmp_path / "explanations" / "step=0000007"
    assert done == [f"files:{tmp_path}"]
    assert (folder / "ig.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((folder / "table.json").read_text())["rows"][1] == [1, "bad | worse"]
    assert logger.metrics == [({"explanations/ig/stability": 0.5}, 7)]


def test_tensorboard_gets_figures_text_and_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from pytorch_lightning.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = cue_data()
    train, val = loaders(data.to_dataset())
    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = ExplanationLogger(range(2), vocab=data.vocab, faithfulness=None)
    trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[cb]).fit(
        tiny_model(len(data.vocab)), train, val
    )
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    assert "explanations/integrated_gradients" in events.Tags()["images"]
    assert "explanations/integrated_gradients/mean_abs_delta" in events.Tags()["scalars"]
    assert any(tag.startswith("explanations/table") for tag in events.Tags()["tensors"])


def test_nearest_examples_are_logged_as_a_table(tmp_path):
    import captum_rnn.attr

    if not hasattr(captum_rnn.attr, "NearestExamples"):
        pytest.skip("captum_rnn.attr.NearestExamples is not available")
    data = cue_data()
    train, val = loaders(data.to_dataset())
    cb = ExplanationLogger(
        range(3),
        methods=("saliency", "nearest_examples"),
        method_kwargs={
            "nearest_examples": {
                "train_dataset": train.dataset,
                "collate_fn": pad_collate,
                "top_k": 2,
            }
        },
        faithfulness=None,
    )
    csv_logger = CSVLogger(tmp_path, name="run")
    trainer(tmp_path, logger=csv_logger, callbacks=[cb]).validate(
        tiny_model(len(data.vocab)).eval(), val, verbose=False
    )
    [table] = list((tmp_path / "run").rglob("nearest_examples_examples.json"))
    rows = json.loads(table.read_text())["rows"]
    columns = json.loads(table.read_text())["columns"]
    assert len(rows) == 3 * 2 and {"sample", "train_index", "score"} <= set(columns)
    indices = [r[columns.index("train_index")] for r in rows]
    assert all(0 <= i < len(train.dataset) for i in indices)


# ---------------------------------------------------------------------- DDP training
def test_two_process_ddp_training_logs_once_from_rank_zero(tmp_path):
    data = cue_data()
    train, val = loaders(data.to_dataset(), batch_size=8)
    cb = ExplanationLogger(range(2), vocab=data.vocab, faithfulness=None)
    environment = dict(os.environ)
    try:
        t = pl.Trainer(
            accelerator="cpu",
            devices=2,
            strategy="ddp_fork",
            max_epochs=2,
            logger=CSVLogger(tmp_path, name="run"),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[cb],
        )
        t.fit(tiny_model(len(data.vocab)), train, val)
    finally:
        os.environ.clear()
        os.environ.update(environment)
    folders = sorted((tmp_path / "run").rglob("integrated_gradients.png"))
    assert len(folders) == 2  # one per epoch, from rank zero only
    assert len(list((tmp_path / "run").iterdir())) == 1


# ---------------------------------------------------------------------- the probe figure
def test_probe_figure_puts_each_score_under_its_own_token():
    from captum_rnn.callbacks._figure import probe_figure

    explanations = [
        captum_rnn.Explanation(["a", "superb", "<b>x</b>"], [0.5, -1.0, 0.25], "ig", 1),
        captum_rnn.Explanation(["averyveryverylongtoken", "b"], [2.0, 0.0], "ig", 0),
    ]
    fig = probe_figure(explanations, title="ig", token_chars=8)
    ax = fig.axes[0]
    [image] = ax.get_images()
    grid = image.get_array()
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["a superb <b>x</b>", "averyve\u2026 b"]
    # Row 0: "a" at char 0, "superb" at chars 2-7, "<b>x</b>" at 9-16; scaled by max |score|.
    np.testing.assert_allclose(grid[0, 0], 0.5)
    np.testing.assert_allclose(grid[0, 2:8], -1.0)
    np.testing.assert_allclose(grid[0, 9:17], 0.25)
    assert grid.mask[0, 1] and grid.mask[0, 8]  # the spaces between tokens stay blank
    np.testing.assert_allclose(grid[1, 0:8], 1.0)
    fig.savefig(io.BytesIO(), format="png")

    continuous = captum_rnn.Explanation(
        ["t0", "t1"], [1.0, -1.0], "ig", 0, feature_scores=[[1.0], [-1.0]]
    )
    fig = probe_figure([continuous])
    assert not fig.axes[0].texts
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array()[0], [1.0, -1.0])


@pytest.mark.parametrize("fontsize", [7.0, 8.0, 10.0])
def test_probe_figure_text_spans_exactly_the_heatmap_as_saved(fontsize):
    # Agg rounds glyph advances to whole pixels: a width computed from the font's
    # nominal advance drifted by one character every twenty on long rows.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from captum_rnn.callbacks._figure import probe_figure

    tokens = ("a film so tedious that it is impossible to care whether that it is " * 2).split()
    fig = probe_figure(
        [captum_rnn.Explanation(tokens, [0.1] * len(tokens), "ig", 1)], fontsize=fontsize
    )
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    text = ax.texts[0].get_window_extent(canvas.get_renderer())
    axes = ax.get_window_extent(canvas.get_renderer())
    assert abs(text.x0 - axes.x0) < 0.5 and abs(text.x1 - axes.x1) < 0.5


def test_background_false_sends_everything_before_returning(tmp_path):
    data = cue_data()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2), background=False, faithfulness=None)
    t = trainer(tmp_path, logger=CSVLogger(tmp_path, name="run"), callbacks=[cb])
    t.validate(tiny_model(len(data.vocab)), val, verbose=False)
    assert cb._pending is None and len(list(tmp_path.rglob("*.png"))) == 1


def test_a_failure_while_sending_surfaces_when_the_trainer_call_ends(tmp_path, monkeypatch):
    import captum_rnn.callbacks._schedule as schedule

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(schedule, "send_media", broken)
    data = cue_data()
    _, val = loaders(data.to_dataset())
    cb = ExplanationLogger(range(2), faithfulness=None)
    t = trainer(tmp_path, logger=CSVLogger(tmp_path, name="run"), callbacks=[cb])
    with pytest.raises(OSError, match="disk full"):
        t.validate(tiny_model(len(data.vocab)), val, verbose=False)


_HANG = r"""
import atexit, sys, threading, time, torch
import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger
import captum_rnn.callbacks._schedule as schedule
from captum_rnn.callbacks import ExplanationLogger
from captum_rnn.data import SequenceDataModule, planted_cues
from captum_rnn.models import RNNClassifier

never = threading.Event()
schedule.send_media = lambda *args, **kwargs: never.wait()  # a backend that blocks forever
raised = []

class Failing(RNNClassifier):
    def training_step(self, batch, batch_idx):
        if self.current_epoch == 1:
            raised.append(time.perf_counter())
            raise RuntimeError("boom in training")
        return super().training_step(batch, batch_idx)

def fit(cls, epochs, send_timeout):
    torch.manual_seed(0)
    data = planted_cues(64, length=(4, 8), vocab_size=20, seed=0)
    dm = SequenceDataModule(data.to_dataset(), batch_size=16, seed=0)
    model = cls(2, vocab_size=len(data.vocab), hidden_size=4, embedding_dim=3)
    callback = ExplanationLogger(range(2), faithfulness=None)
    callback.send_timeout = send_timeout
    trainer = pl.Trainer(max_epochs=epochs, logger=CSVLogger(sys.argv[1]),
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback])
    trainer.fit(model, dm)

# 1. training succeeds but the figures are never sent: fit ends in a TimeoutError
start = time.perf_counter()
try:
    fit(RNNClassifier, 1, send_timeout=1.0)
except TimeoutError as error:
    print(f"timed out after {time.perf_counter() - start:.1f} s: {error}", file=sys.stderr)
# 2. an error in training while the backend blocks: the error surfaces, the process exits
atexit.register(
    lambda: print(f"exit {time.perf_counter() - raised[0]:.1f} s after the error", file=sys.stderr)
)
fit(Failing, 3, send_timeout=300.0)
"""


def test_a_blocking_backend_and_an_error_in_training_never_hang(tmp_path):
    """A backend whose write never returns: every wait has a timeout, the sending thread
    is a daemon, and the training error surfaces within seconds (in a subprocess, so a
    regression fails here instead of hanging the suite)."""
    import re
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _HANG, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "RuntimeError: boom in training" in done.stderr
    timed_out = re.search(r"timed out after ([\d.]+) s: ExplanationLogger", done.stderr)
    assert timed_out and float(timed_out.group(1)) < 10, done.stderr[-2000:]
    exited = re.search(r"exit ([\d.]+) s after the error", done.stderr)
    assert exited and float(exited.group(1)) < 10, done.stderr[-2000:]
