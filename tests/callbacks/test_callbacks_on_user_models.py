"""The callbacks on models that are not captum-rnn's: a LightningModule written the way a
tutorial writes it (dict batches, ``forward(x)`` over continuous features), and a token
model with ``padding_idx=1`` and ``forward(text, text_lengths)``."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from callback_helpers import trainer
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

import captum_rnn
from captum_rnn.callbacks import (
    ExplainingModule,
    ExplanationLogger,
    ExplanationWriter,
    FaithfulnessMonitor,
    RuleExtractionMonitor,
    read_explanations,
)

FEATURES = 13


# ---------------------------------------------------------------- a user's own code
class SensorData(Dataset):
    """Fixed-length multivariate series; items are dicts, as many tutorials have them."""

    def __init__(self, n: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 6, FEATURES, generator=generator)
        self.y = (self.x[:, :, 0].sum(dim=1) > 0).long() + (self.x[:, -1, 1] > 1).long()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.x[i], "label": self.y[i]}


class SensorClassifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(FEATURES, 8, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(self.dropout(h[-1]))

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self(batch["features"]), batch["label"])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch["features"]), batch["label"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class TextDataset(Dataset):
    """Token ids (0 = <unk>, 1 = <pad>, as torchtext has them) of various lengths."""

    def __init__(self, n: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.items = []
        for _ in range(n):
            length = int(torch.randint(3, 9, (1,), generator=generator))
            ids = torch.randint(2, 30, (length,), generator=generator)
            self.items.append((ids, int((ids == 7).any())))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def collate_text(items):
    text = nn.utils.rnn.pad_sequence([ids for ids, _ in items], batch_first=True, padding_value=1)
    lengths = torch.tensor([len(ids) for ids, _ in items])
    return text, lengths, torch.tensor([label for _, label in items])


class TextClassifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(30, 6, padding_idx=1)
        self.rnn = nn.GRU(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, text, text_lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(text), text_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.rnn(packed)
        return self.fc(hidden[-1])

    def training_step(self, batch, batch_idx):
        text, lengths, label = batch
        return F.cross_entropy(self(text, lengths), label)

    def validation_step(self, batch, batch_idx):
        text, lengths, label = batch
        self.log("val_loss", F.cross_entropy(self(text, lengths), label))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


# ---------------------------------------------------------------- helpers
_trainer = trainer  # the shared helper (tests/callbacks/callback_helpers.py)


def _sensor_loaders():
    train = DataLoader(SensorData(40, seed=1), batch_size=8, shuffle=True)
    val = DataLoader(SensorData(12, seed=2), batch_size=8)
    return train, val


def _fit_sensor(tmp_path, callbacks, loggers):
    pl.seed_everything(0, verbose=False)
    model = SensorClassifier()
    train, val = _sensor_loaders()
    _trainer(tmp_path, max_epochs=3, logger=loggers, callbacks=callbacks).fit(model, train, val)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- tests
def test_logger_leaves_a_foreign_modules_training_bit_identical_and_logs_csv(tmp_path):
    _, plain = _fit_sensor(tmp_path / "a", [], [CSVLogger(tmp_path / "a", name="run")])
    cb = ExplanationLogger(range(4), methods=("integrated_gradients", "saliency"))
    loggers = [CSVLogger(tmp_path / "b", name="run")]
    has_tensorboard = importlib.util.find_spec("tensorboard") is not None
    if has_tensorboard:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(tmp_path / "b", name="tb"))
    model, explained = _fit_sensor(tmp_path / "b", [cb], loggers)
    assert [r["epoch"] for r in cb.history] == [0, 1, 2]
    assert plain.keys() == explained.keys()
    for key in plain:
        assert torch.equal(plain[key], explained[key]), key

    explanations = cb.last_explanations["integrated_gradients"]
    assert len(explanations) == 4 and all(len(e.scores) == 6 for e in explanations)
    assert [e.label for e in explanations] == SensorData(12, seed=2).y[:4].tolist()
    model.eval()
    direct = captum_rnn.explain(model, SensorData(12, seed=2).x[:4], n_steps=32, max_steps=64)
    for got, want in zip(explanations, direct, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-7)

    with open(tmp_path / "b" / "run" / "version_0" / "metrics.csv") as handle:
        header = next(csv.reader(handle))
    assert "explanations/integrated_gradients/mean_abs_delta" in header
    assert "explanations/saliency/stability" in header
    assert list((tmp_path / "b" / "run").rglob("integrated_gradients.png"))
    if has_tensorboard:
        assert list((tmp_path / "b" / "tb").rglob("events.out.tfevents.*"))


def test_explaining_module_and_writer_on_a_foreign_module_equal_explain(tmp_path):
    pl.seed_everything(0, verbose=False)
    model = SensorClassifier().eval()
    data = SensorData(10, seed=3)
    loader = DataLoader(data, batch_size=4)
    module = ExplainingModule(model, n_steps=24)
    _trainer(tmp_path, callbacks=[ExplanationWriter(tmp_path / "out")]).predict(
        module, loader, return_predictions=False
    )
    written = read_explanations(tmp_path / "out")
    direct = captum_rnn.explain(model, data.x, n_steps=24)
    assert len(written) == len(direct) == 10
    for got, want in zip(written, direct, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-6)
        assert got.target == want.target


def test_a_token_model_with_padding_idx_1_and_text_lengths_works_in_the_logger(tmp_path):
    pl.seed_everything(0, verbose=False)
    model = TextClassifier()
    train = DataLoader(TextDataset(32, seed=4), batch_size=8, collate_fn=collate_text)
    val = DataLoader(TextDataset(8, seed=5), batch_size=8, collate_fn=collate_text)
    cb = ExplanationLogger(range(5), methods=("integrated_gradients",), faithfulness=None)
    _trainer(tmp_path, callbacks=[cb]).fit(model, train, val)
    explanations = cb.last_explanations["integrated_gradients"]
    items = [val.dataset[i] for i in range(5)]
    assert [len(e.tokens) for e in explanations] == [len(ids) for ids, _ in items]
    assert [e.tokens for e in explanations] == [[str(t) for t in ids.tolist()] for ids, _ in items]
    text, lengths, _ = collate_text(items)
    model.eval()
    direct = captum_rnn.explain(model, text, lengths=lengths, n_steps=32, max_steps=64)
    for got, want in zip(explanations, direct, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-7)


def test_explainer_callable_batch_to_inputs_and_monitors_on_a_foreign_module(tmp_path):
    def last_step(model, inputs, lengths, target):
        out = torch.zeros(inputs.shape[:2])
        out[torch.arange(inputs.shape[0]), lengths - 1] = 1.0
        return out

    def top_score(model, inputs, attributions, target=None, lengths=None):
        return float(attributions.max())

    class AcceptAll:
        def accepts(self, symbols):
            return True

        def __len__(self):
            return 1

    class Odd(Dataset):
        """Batches with keys the default does not know."""

        def __init__(self) -> None:
            self.data = SensorData(8, seed=6)

        def __len__(self) -> int:
            return len(self.data)

        def __getitem__(self, i):
            return {"signal": self.data.x[i], "answer": self.data.y[i]}

    loader = DataLoader(Odd(), batch_size=4)

    def split(batch):
        return batch["signal"], None, batch["answer"]

    logger_cb = ExplanationLogger(
        loader, explainer=last_step, batch_to_inputs=split, faithfulness=None, max_samples=6
    )
    faith = FaithfulnessMonitor(
        loader, metrics=[top_score], explainer=last_step, batch_to_inputs=split, max_samples=6
    )
    rules = RuleExtractionMonitor(
        loader, extractor=lambda m: AcceptAll(), batch_to_inputs=split, max_samples=6
    )
    pl.seed_everything(0, verbose=False)
    model = SensorClassifier()
    train, val = _sensor_loaders()
    _trainer(tmp_path, max_epochs=1, callbacks=[logger_cb, faith, rules]).fit(model, train, val)
    [name] = logger_cb.methods
    assert name == "explainer:last_step"
    explanations = logger_cb.last_explanations[name]
    assert len(explanations) == 6
    assert [e.scores for e in explanations] == [[0.0] * 5 + [1.0]] * 6
    assert faith.history[-1]["faithfulness/explainer:last_step/top_score"] == 1.0
    fidelity = rules.history[-1]["rules/fidelity"]
    assert 0.0 <= fidelity <= 1.0

    with pytest.raises(ValueError, match="batch_to_inputs="):
        ExplanationLogger(loader, faithfulness=None)._probe(None, model, "validate")


def test_rule_extraction_is_a_registered_method_for_explain_and_the_logger(tmp_path):
    torch.manual_seed(0)
    model = TextClassifier().eval()
    items = [TextDataset(6, seed=7)[i] for i in range(3)]
    text, lengths, _ = collate_text(items)
    options = dict(max_samples=300, batch_size=32)
    direct = captum_rnn.explain(model, text, method="rule_extraction", lengths=lengths, **options)
    for e, (ids, _) in zip(direct, items, strict=True):
        assert e.method == "rule_extraction" and len(e.scores) == len(ids)
        assert set(np.round(e.scores, 6)) <= {0.0, 1.0}
    cb = ExplanationLogger(
        [ids for ids, _ in items],
        methods=("rule_extraction",),
        method_kwargs={"rule_extraction": options},
        faithfulness=None,
    )
    val = DataLoader(TextDataset(4, seed=8), batch_size=4, collate_fn=collate_text)
    _trainer(tmp_path, callbacks=[cb]).validate(model, val, verbose=False)
    logged = cb.last_explanations["rule_extraction"]
    for got, want in zip(logged, direct, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)


class TimeMajor(pl.LightningModule):
    """Reads ``(time, batch, features)``, as ``nn.LSTM`` does by default."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 6)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[1][0][-1])

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_time_major_model_is_explained_and_scored_in_its_own_layout(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(5, 8, 4), torch.randint(0, 2, (8,))
    batches = DataLoader([(x[:, :4], y[:4]), (x[:, 4:], y[4:])], batch_size=None)
    model = TimeMajor()
    cb = ExplanationLogger((x[:, :3], y[:3]))
    _trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(model, batches)
    assert "explanations/integrated_gradients/comprehensiveness" in cb.history[-1]
    direct = captum_rnn.explain(model.eval(), x[:, :3], n_steps=32, max_steps=64)
    for got, want in zip(cb.last_explanations["integrated_gradients"], direct, strict=True):
        assert len(got.scores) == 5
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-7)
