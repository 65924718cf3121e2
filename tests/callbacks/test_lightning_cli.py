"""LightningCLI: models, data modules and callbacks built from YAML (``captum_rnn.demo._fit``),
and the data modules that YAML can configure."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from captum_rnn.callbacks import RuleExtractionMonitor
from captum_rnn.data import (
    PlantedCuesDataModule,
    SentimentDataModule,
    SentimentSnippets,
    SequenceDataModule,
    Snippet,
    TomitaDataModule,
    Vocabulary,
    tokenize,
)
from captum_rnn.data import _sentiment_datamodule as sentiment_module
from captum_rnn.demo import _fit


@pytest.fixture
def jsonargparse(monkeypatch):
    module = pytest.importorskip("jsonargparse")
    # As from a shell with no arguments: LightningCLI warns when sys.argv (pytest's
    # here) and explicit arguments are both given.
    monkeypatch.setattr("sys.argv", ["captum-rnn"])
    from pytorch_lightning.cli import _JSONARGPARSE_SIGNATURES_AVAILABLE

    if not _JSONARGPARSE_SIGNATURES_AVAILABLE:
        pytest.skip("jsonargparse[signatures] is not installed")
    return module


CONFIG = """\
seed_everything: 0
trainer:
  accelerator: cpu
  max_epochs: 1
  limit_train_batches: 2
  limit_val_batches: 1
  log_every_n_steps: 1
  num_sanity_val_steps: 0
  enable_progress_bar: false
  enable_model_summary: false
  enable_checkpointing: false
  logger:
    class_path: pytorch_lightning.loggers.CSVLogger
    init_args:
      save_dir: {root}
      name: run
  callbacks:
    - class_path: captum_rnn.callbacks.ExplanationLogger
      init_args:
        samples: [0, 1, 2]
        methods: [integrated_gradients, attention_weights]
        target: label
        faithfulness: null
        background: false
        method_kwargs:
          integrated_gradients: {{n_steps: 8, max_steps: 8}}
model:
  class_path: captum_rnn.models.RNNClassifier
  init_args:
    num_classes: 2
    embedding_dim: 4
    hidden_size: 6
    attention: additive
data:
  class_path: {data_class}
  init_args:
{data_args}
"""

TOMITA = ("captum_rnn.data.TomitaDataModule", {"grammar": 4, "n": 48, "max_length": 8})
CUES = ("captum_rnn.data.PlantedCuesDataModule", {"n": 48, "num_fillers": 10, "max_length": 9})


def write_config(tmp_path, data=TOMITA, batch_size=8):
    data_class, data_args = data
    lines = "\n".join(f"    {k}: {v}" for k, v in {**data_args, "batch_size": batch_size}.items())
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(root=tmp_path.as_posix(), data_class=data_class, data_args=lines),
        encoding="utf-8",
    )
    return path


def run_dir(tmp_path):
    versions = sorted((tmp_path / "run").iterdir())
    return versions[-1]


def test_fit_from_yaml_writes_the_explanation_logger_outputs(tmp_path, jsonargparse):
    config = write_config(tmp_path)
    assert _fit.main_fit(["fit", "--config", str(config)]) == 0

    folder = run_dir(tmp_path)
    steps = sorted((folder / "explanations").iterdir())
    assert len(steps) == 1  # one epoch, one log
    last = steps[0]
    assert (last / "integrated_gradients.png").read_bytes()[:4] == b"\x89PNG"
    assert (last / "attention_weights.png").read_bytes()[:4] == b"\x89PNG"
    document = json.loads((last / "integrated_gradients.json").read_text())
    assert document["indices"] == [0, 1, 2] and document["stage"] == "validate"
    # The vocabulary and class names come from the data module (YAML cannot give them).
    tokens = {tok for e in document["explanations"] for tok in e["tokens"]}
    assert tokens and tokens <= {"0", "1"}
    table = json.loads((last / "table.json").read_text())
    assert {row[2] for row in table["rows"]} <= {"accepted", "rejected"}
    with open(folder / "metrics.csv") as handle:
        header = next(csv.reader(handle))
    assert "explanations/integrated_gradients/mean_abs_delta" in header
    assert "train_loss" in header or "val_loss" in header
    saved = (folder / "config.yaml").read_text()
    assert "captum_rnn.callbacks.ExplanationLogger" in saved


def test_vocab_size_is_linked_from_the_data_module(tmp_path, jsonargparse):
    config = write_config(tmp_path, data=CUES)
    cli = _fit.CaptumRNNCLI(args=["--config", str(config)], run=False)
    assert isinstance(cli.datamodule, PlantedCuesDataModule)
    assert cli.datamodule.vocab_size == 14  # 10 fillers, good, bad, pad, unk
    assert cli.model.embedding.num_embeddings == 14
    assert cli.model.hparams.vocab_size == 14
    assert len(cli.trainer.callbacks) >= 1


def test_the_link_reaches_a_transformer_and_is_skipped_without_a_vocabulary(tmp_path, jsonargparse):
    path = tmp_path / "transformer.yaml"
    path.write_text(
        "model:\n  class_path: captum_rnn.models.TransformerClassifier\n"
        "  init_args: {num_classes: 2, num_layers: 1, num_heads: 1, embedding_dim: 4}\n"
        "data:\n  class_path: captum_rnn.data.TomitaDataModule\n  init_args: {n: 20}\n"
        "trainer: {logger: false, enable_checkpointing: false}\n"
    )
    cli = _fit.CaptumRNNCLI(args=["--config", str(path)], run=False)
    assert cli.model.hparams.vocab_size == 4
    # A data module without vocab_size (continuous features): the link is skipped.
    path.write_text(
        "model:\n  class_path: captum_rnn.models.RNNRegressor\n"
        "  init_args: {input_size: 3, hidden_size: 4}\n"
        "data:\n  class_path: callback_helpers.FeatureDataModule\n"
        "trainer: {logger: false, enable_checkpointing: false, max_epochs: 1,"
        " enable_progress_bar: false, enable_model_summary: false,"
        f" default_root_dir: {tmp_path}}}\n"  # config.yaml lands here, not in the cwd
    )
    assert _fit.main_fit(["fit", "--config", str(path)]) == 0
    cli = _fit.CaptumRNNCLI(args=["--config", str(path)], run=False)
    assert cli.model.hparams.vocab_size is None and cli.model.hparams.input_size == 3


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_shipped_configs_parse(jsonargparse, capsys):
    # Sentiment: parsed and printed only (instantiating it would fetch the snippets).
    config = EXAMPLES / "config_sentiment.yaml"
    assert _fit.main_fit(["fit", "--config", str(config), "--print_config"]) == 0
    printed = capsys.readouterr().out
    assert "captum_rnn.data.SentimentDataModule" in printed
    assert "captum_rnn.callbacks.ExplanationLogger" in printed
    assert "vocab_size" not in printed.split("model:")[1].split("data:")[0]  # linked
    # Tomita: generated data, so it can be built.
    cli = _fit.CaptumRNNCLI(args=["--config", str(EXAMPLES / "config_tomita.yaml")], run=False)
    monitor = next(c for c in cli.trainer.callbacks if isinstance(c, RuleExtractionMonitor))
    assert monitor.alphabet == "01"  # not the int 1
    assert cli.model.embedding.num_embeddings == cli.datamodule.vocab_size == 4


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_other_subcommands_run_under_default_inference_mode(tmp_path, jsonargparse, subcommand):
    config = write_config(tmp_path)
    assert _fit.main_fit([subcommand, "--config", str(config)]) == 0
    folder = run_dir(tmp_path)
    written = sorted(p.name for p in folder.rglob("integrated_gradients.json"))
    # The logger explains in validate and test; predict leaves it alone.
    assert len(written) == (0 if subcommand == "predict" else 1)


def test_test_from_a_checkpoint_of_a_fit(tmp_path, jsonargparse):
    config = str(write_config(tmp_path))
    assert _fit.main_fit(["fit", "--config", config, "--trainer.enable_checkpointing", "true"]) == 0
    [checkpoint] = (tmp_path / "run").rglob("*.ckpt")
    assert _fit.main_fit(["test", "--config", config, "--ckpt_path", str(checkpoint)]) == 0
    [document] = (tmp_path / "run").rglob("explanations_test/*/integrated_gradients.json")
    assert json.loads(document.read_text())["stage"] == "test"


def test_bad_config_and_subcommand_give_exit_status_2(tmp_path, jsonargparse, capsys):
    config = write_config(tmp_path)
    assert _fit.main_fit(["fit", "--config", str(config), "--model.init_args.nope", "1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert _fit.main_fit(["train", "--config", str(config)]) == 2
    assert "expected one of fit, validate, test, predict" in capsys.readouterr().err


def test_a_missing_extra_is_named(monkeypatch, capsys):
    import pytorch_lightning.cli as lightning_cli

    monkeypatch.setattr(lightning_cli, "_JSONARGPARSE_SIGNATURES_AVAILABLE", False)
    assert _fit.main_fit(["fit", "--config", "nowhere.yaml"]) == 2
    assert "captum-rnn[cli]" in capsys.readouterr().err


# ---------------------------------------------------------------- the data modules
def fake_snippets(n=60):
    words = ["good", "bad", "plot", "cast", "dull", "fine", "film", "rare"]
    snippets = []
    for i in range(n):
        text = " ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 5)) + f" w{i}"
        snippets.append(Snippet(str(i), (-2.0 if i % 3 else 2.5) + 0.01 * i, text))
    snippets.append(Snippet("neutral", 0.1, "meh"))
    snippets.append(Snippet("dots", 3.0, "..."))
    return snippets


@pytest.fixture
def offline_snippets(monkeypatch):
    calls = []

    def load(source="movies", neutral_threshold=0.5, cache_dir=None):
        calls.append((source, neutral_threshold, cache_dir))
        return SentimentSnippets.from_snippets(
            fake_snippets(), source=source, neutral_threshold=neutral_threshold
        )

    monkeypatch.setattr(sentiment_module, "load_sentiment_snippets", load)
    return calls


def test_sentiment_data_module_splits_like_sequence_data_module(offline_snippets):
    dm = SentimentDataModule("tweets", batch_size=8, min_freq=1, max_length=3, seed=3)
    assert offline_snippets == []  # nothing is loaded when the module is made
    dm.setup("fit")
    assert offline_snippets[0][0] == "tweets"
    # Same split as SequenceDataModule over the same data and seed.
    reference = SequenceDataModule(dm.dataset, batch_size=8, seed=3)
    reference.setup()
    assert dm.train_set.indices == reference.train_set.indices
    assert dm.val_set.indices == reference.val_set.indices
    assert dm.vocab_size == len(dm.vocab) and dm.num_classes == 2
    # max_length=3 cuts every sequence; only the neutral "meh" is dropped ("..." keeps
    # its punctuation tokens).
    assert max(len(s) for s in dm.dataset.sequences) == 3
    assert len(dm.dataset) + 1 == len(fake_snippets())
    inputs, lengths, targets = next(iter(dm.train_dataloader()))
    assert inputs.dtype == torch.long and targets.dtype == torch.long


def test_sentiment_vocabulary_ignores_held_out_words(offline_snippets):
    dm = SentimentDataModule(batch_size=8, min_freq=1, seed=0)
    dm.setup()
    snippets = SentimentSnippets.from_snippets(fake_snippets())
    kept = [t for t in snippets.texts if tokenize(t)]
    train_words = {tok for i in dm.train_set.indices for tok in tokenize(kept[i])}
    held_words = {
        tok for i in dm.val_set.indices + dm.test_set.indices for tok in tokenize(kept[i])
    }
    only_held = held_words - train_words
    assert only_held  # the fake data has unique words per snippet
    assert not only_held & set(dm.vocab.itos)
    assert train_words <= set(dm.vocab.itos)
    assert dm.vocab == Vocabulary.build([tokenize(kept[i]) for i in dm.train_set.indices])


def test_sentiment_rating_target_and_subset(offline_snippets):
    dm = SentimentDataModule(batch_size=4, min_freq=1, target="rating", max_snippets=20)
    dm.setup()
    assert len(dm.dataset) == 20
    assert dm.dataset.targets.dtype == torch.float32
    assert dm.num_classes == 1 and dm.class_names is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"source": "imdb"}, ValueError),
        ({"min_freq": 0}, ValueError),
        ({"max_length": 0}, ValueError),
        ({"max_snippets": 1.5}, TypeError),
        ({"target": "stars"}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, ValueError),
    ],
)
def test_sentiment_bad_arguments_are_refused(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        SentimentDataModule(**kwargs)


def test_tomita_and_cue_modules_are_deterministic_and_checked():
    a, b = TomitaDataModule(grammar=4, n=40, max_length=8), TomitaDataModule(4, 40, max_length=8)
    a.setup()
    b.setup()
    assert a.vocab_size == 4 and a.class_names == ["rejected", "accepted"]
    assert [a.dataset[i][0].tolist() for i in a.train_set.indices] == [
        b.dataset[i][0].tolist() for i in b.train_set.indices
    ]
    assert int(a.dataset.targets.sum()) == 20  # class-balanced
    with pytest.raises(ValueError, match="grammar"):
        TomitaDataModule(grammar=9)
    cues = PlantedCuesDataModule(n=30, num_fillers=5, min_length=4, max_length=6)
    cues.setup()
    assert cues.vocab_size == 9 and len(cues.cue_masks) == 30
    assert all(
        m.shape == s.shape for m, s in zip(cues.cue_masks, cues.dataset.sequences, strict=True)
    )
    with pytest.raises(ValueError, match="length"):
        PlantedCuesDataModule(min_length=5, max_length=2)


@pytest.mark.network
def test_sentiment_data_module_on_the_real_movie_snippets():
    from captum_rnn.data import DataUnavailableError

    dm = SentimentDataModule("movies", batch_size=64, max_length=60)
    try:
        dm.prepare_data()
    except DataUnavailableError as err:
        pytest.skip(f"registry not reachable: {err}")
    dm.setup("fit")
    n = len(dm.dataset)
    assert 8_000 < n < 10_605  # near-neutral snippets dropped
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == dm.split_sizes()
    assert 2_000 < dm.vocab_size < n  # min_freq=2 over the training split
    assert max(len(s) for s in dm.dataset.sequences) <= 60
    inputs, lengths, targets = next(iter(dm.val_dataloader()))
    assert inputs.shape[0] == 64 and set(targets.tolist()) <= {0, 1}
