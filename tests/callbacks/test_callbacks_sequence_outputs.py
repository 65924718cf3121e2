"""The callbacks on models with one output per step: a tagger written as a tutorial writes
it (a LightningModule, ``forward(x)`` -> ``(batch, time, tags)``, padding id 0) in the
logger, and a multi-step forecaster (``(batch, horizon)`` regression) in
``trainer.predict`` with the writer. What they log and write must equal
``explain(..., outputs=...)`` called by hand, with both axes kept."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import zoo
from callback_helpers import trainer
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import captum_rnn
from captum_rnn import Explanation
from captum_rnn.callbacks import (
    ExplainingModule,
    ExplanationLogger,
    ExplanationWriter,
    read_explanations,
)
from captum_rnn.callbacks._figure import probe_figure
from captum_rnn.metrics import available_metrics, get_metric

PAD = 0


class TagData(Dataset):
    """Token ids 2..19 of lengths 4..8; the tag of a token is its parity."""

    def __init__(self, n: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.items = []
        for _ in range(n):
            length = int(torch.randint(4, 9, (1,), generator=generator))
            ids = torch.randint(2, 20, (length,), generator=generator)
            self.items.append((ids, (ids % 2 == 0).long()))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def collate(items):
    x = nn.utils.rnn.pad_sequence([ids for ids, _ in items], batch_first=True, padding_value=PAD)
    y = nn.utils.rnn.pad_sequence([tags for _, tags in items], batch_first=True, padding_value=-100)
    return x, y


class Tagger(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 6, padding_idx=PAD)
        self.rnn = nn.GRU(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(self.embedding(x))[0])

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x).flatten(0, 1), y.flatten(), ignore_index=-100)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        self.log("val_loss", loss)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _fit_tagger(tmp_path, callbacks, loggers=False):
    pl.seed_everything(0, verbose=False)
    model = Tagger()
    train = DataLoader(TagData(32, seed=1), batch_size=8, collate_fn=collate)
    val = DataLoader(TagData(8, seed=2), batch_size=8, collate_fn=collate)
    trainer(tmp_path, max_epochs=2, callbacks=callbacks, logger=loggers).fit(model, train, val)
    return model.eval(), val


def test_logger_on_a_tagger_logs_every_output_step_as_explain_does(tmp_path):
    cb = ExplanationLogger(range(3), methods=("integrated_gradients", "occlusion"), pad_id=PAD)
    model, val = _fit_tagger(tmp_path, [cb], [CSVLogger(tmp_path, name="run")])
    x, _ = collate([val.dataset[i] for i in range(3)])
    lengths = [len(val.dataset[i][0]) for i in range(3)]

    logged = cb.last_explanations["integrated_gradients"]
    direct = captum_rnn.explain(model, x, pad_id=PAD, n_steps=32, max_steps=64)
    assert [np.shape(e.scores) for e in logged] == [(n, n) for n in lengths]  # both axes cut
    for got, want in zip(logged, direct, strict=True):
        assert got.is_sequence_output and got.output_labels == want.output_labels
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-7)
        assert got.target == want.target
        assert np.allclose(np.triu(np.asarray(got.scores), k=1), 0.0)  # causal: exact zeros

    with open(tmp_path / "run" / "version_0" / "metrics.csv") as handle:
        header = next(csv.reader(handle))
    for name in ("mean_abs_delta", "stability", "comprehensiveness", "sufficiency"):
        assert f"explanations/integrated_gradients/{name}" in header
    assert "explanations/occlusion/comprehensiveness" in header
    last = cb.history[-1]
    assert np.isfinite(last["explanations/integrated_gradients/comprehensiveness"])

    folder = sorted((tmp_path / "run" / "version_0" / "explanations").iterdir())[-1]
    assert (folder / "integrated_gradients.png").stat().st_size > 0
    document = json.loads((folder / "integrated_gradients.json").read_text())
    restored = [Explanation.from_dict(d) for d in document["explanations"]]
    for got, want in zip(restored, logged, strict=True):
        np.testing.assert_allclose(got.scores, want.scores)
        assert got.output_labels == want.output_labels
    table = json.loads((folder / "table.json").read_text())
    assert len(table["rows"]) == 6  # 3 sequences x 2 methods
    row = dict(zip(table["columns"], table["rows"][0], strict=True))
    assert row["target"].split() == [str(t) for t in logged[0].target]
    assert row["top"].startswith("output ")


def test_logger_refuses_single_output_metrics_on_sequence_outputs_by_name(tmp_path):
    cb = ExplanationLogger(
        range(2), methods=("saliency",), faithfulness=["deletion_auc"], pad_id=PAD
    )
    with pytest.raises(ValueError, match="faithfulness='auto'"):
        _fit_tagger(tmp_path, [cb])


def test_logger_takes_every_metric_the_registry_declares_per_output_step(tmp_path):
    names = [
        n for n in available_metrics(per_output=True) if not get_metric(n).needs
    ]  # what a callback can give: no rationale
    assert {"faithfulness", "comprehensiveness", "sufficiency"} <= set(names)
    cb = ExplanationLogger(range(2), methods=("saliency",), faithfulness=names, pad_id=PAD)
    _fit_tagger(tmp_path, [cb])
    last = cb.history[-1]
    for name in names:
        assert np.isfinite(last[f"explanations/saliency/{name}"])
    assert last["explanations/saliency/faithfulness"] == pytest.approx(
        last["explanations/saliency/comprehensiveness"] - last["explanations/saliency/sufficiency"]
    )


def test_probe_figure_draws_one_output_by_input_heatmap_per_sequence():
    e = Explanation(
        tokens=["a", "$b$", "c"],
        scores=[[1.0, 0.0, 0.0], [0.2, -0.5, 0.0]],
        method="m",
        output_labels=["N", "V"],
        target=[0, 1],
    )
    fig = probe_figure([e, e], title="tagger $x$")
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert len(heatmaps) == 2
    assert heatmaps[0].images[0].get_array().shape == (2, 3)
    assert [t.get_text() for t in heatmaps[0].get_xticklabels()] == ["a", "$b$", "c"]
    fig.canvas.draw()  # "$" in tokens and titles must not reach mathtext


def test_writer_keeps_every_output_step_of_a_forecaster(tmp_path):
    case = zoo.build("multistep_forecaster")
    x = case.inputs
    module = ExplainingModule(case.model, n_steps=16, outputs="all", **case.hints)
    loader = DataLoader(TensorDataset(x), batch_size=4)
    trainer(tmp_path, callbacks=[ExplanationWriter(tmp_path / "out")]).predict(
        module, loader, return_predictions=False
    )
    written = read_explanations(tmp_path / "out")
    direct = captum_rnn.explain(case.model, x, n_steps=16, outputs="all", **case.hints)
    assert len(written) == len(direct) == len(x)
    for got, want in zip(written, direct, strict=True):
        assert np.shape(got.scores) == (4, x.shape[1])  # horizon x input steps
        np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.feature_scores, want.feature_scores, rtol=0, atol=1e-6)
        assert got.output_labels == want.output_labels


def test_sequence_output_ig_raises_its_steps_until_each_output_converges():
    torch.manual_seed(0)
    tagger = Tagger().eval()
    with torch.no_grad():
        tagger.rnn.weight_hh_l0.mul_(4.0)  # a curved path: few steps do not integrate it
    x = torch.randint(2, 20, (2, 7))
    fixed = captum_rnn.explain(tagger, x, pad_id=PAD, n_steps=4)
    assert all(set(e.n_steps) == {4} for e in fixed)
    adaptive = captum_rnn.explain(
        tagger, x, pad_id=PAD, n_steps=4, max_steps=64, rtol=1e-4, atol=1e-7
    )
    for f, a in zip(fixed, adaptive, strict=True):
        outputs = np.asarray(a.output)
        differences = np.asarray(a.scores).sum(axis=1) - np.asarray(a.delta)
        converged = np.abs(a.delta) <= 1e-4 * np.abs(differences) + 1e-7
        assert all(c or s == 64 for c, s in zip(converged, a.n_steps, strict=True))
        assert max(a.n_steps) > 4  # four Gauss-Legendre steps are not enough here
        raised = np.asarray(a.n_steps) > 4
        assert (np.abs(np.asarray(a.delta)[raised]) < np.abs(np.asarray(f.delta)[raised])).all()
        kept = ~raised  # outputs that converged at 4 steps are not recomputed
        np.testing.assert_array_equal(np.asarray(a.scores)[kept], np.asarray(f.scores)[kept])
        assert outputs.shape == (len(a.output_labels),)
