"""Cost of ExplanationLogger on training: the demo model with and without the callback.

Trains the demo's attention LSTM (``captum-rnn demo``: bidirectional LSTM, 64 units,
additive attention, dropout 0.3, batch 64) on the human-rated movie snippets for a few
epochs, with ``ExplanationLogger(samples=range(8))`` at its defaults (integrated
gradients on 8 validation sequences after every epoch, faithfulness scalars, and a
figure, a table and JSON written by the CSV logger on the callback's worker thread)
and without it, alternating the two, and prints in one process:

* the median wall time of each and their ratio (target: under 1.05x);
* the median process CPU time of each and their ratio (the worker thread included:
  what the callback costs a machine with no spare core);
* the time the callback held up the training loop, as a share of the fit;
* whether the final weights are bit-identical (they must be, on CPU).

    python benchmarks/callback_overhead.py [--device cpu|cuda] [--epochs 2] [--repeats 3]
                                           [--model ours|user]

``--model user`` trains a LightningModule written as users write them instead (the IMDB
tutorial's packed bidirectional LSTM with ``forward(text, text_lengths)``, its own
``training_step`` over tuple batches), which the callback reaches through the model
contract.

Without the cached data archive (offline) it trains on generated planted-cue text of
the same size instead, and says so.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch import nn

from captum_rnn.callbacks import ExplanationLogger
from captum_rnn.data import SequenceDataModule, SequenceDataset, Vocabulary, planted_cues
from captum_rnn.models import RNNClassifier


class _TimedLogger(ExplanationLogger):
    """ExplanationLogger that adds up the time its runs hold up the training loop."""

    blocking = 0.0

    def _run(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super()._run(*args, **kwargs)
        finally:
            self.blocking += time.perf_counter() - start


def _data(max_snippets: int, seed: int) -> tuple[SequenceDataset, int, str]:
    try:
        from captum_rnn.data import load_sentiment_snippets

        snippets = load_sentiment_snippets("movies")
        texts, labels = snippets.texts, snippets.labels
        if max_snippets and max_snippets < len(texts):
            keep = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
            keep = keep[:max_snippets].tolist()
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        vocab = Vocabulary.build(texts, min_freq=2)
        pairs = [(vocab.encode(t), y) for t, y in zip(texts, labels, strict=True)]
        pairs = [(ids, y) for ids, y in pairs if ids]
        dataset = SequenceDataset([p[0] for p in pairs], [p[1] for p in pairs])
        return dataset, len(vocab), "movie review snippets"
    except Exception as err:  # offline: same size, generated
        cues = planted_cues(max_snippets or 10605, length=(5, 40), vocab_size=5000, seed=seed)
        return cues.to_dataset(), len(cues.vocab), f"planted cues (snippets unavailable: {err})"


class UserLSTM(pl.LightningModule):
    """A user's module, as the IMDB tutorial writes it, made a LightningModule."""

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_dim: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, bidirectional=True, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(hidden_dim * 2, 2)

    def forward(self, text, text_lengths):
        embedded = self.dropout(self.embedding(text))
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, text_lengths.to("cpu"), batch_first=True, enforce_sorted=False
        )
        _, (hidden, _) = self.rnn(packed)
        return self.fc(self.dropout(torch.cat((hidden[-2], hidden[-1]), dim=1)))

    def training_step(self, batch, batch_idx):
        text, text_lengths, label = batch
        loss = nn.functional.cross_entropy(self(text, text_lengths), label)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        text, text_lengths, label = batch
        self.log("val_loss", nn.functional.cross_entropy(self(text, text_lengths), label))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _fit(dataset, vocab_size, args, with_callback: bool, folder: Path, epochs: int):
    pl.seed_everything(args.seed, verbose=False)
    if args.model == "user":
        model = UserLSTM(vocab_size)
    else:
        model = RNNClassifier(
            2,
            vocab_size=vocab_size,
            embedding_dim=64,
            hidden_size=64,
            bidirectional=True,
            attention="additive",
            dropout=0.3,
            lr=3e-3,
        )
    callback = _TimedLogger(samples=range(8), background=args.background) if with_callback else None
    trainer = pl.Trainer(
        accelerator=args.device,
        devices=1,
        max_epochs=epochs,
        logger=CSVLogger(folder, name="with" if with_callback else "without"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        num_sanity_val_steps=0,
        callbacks=[callback] if callback else [],
    )
    datamodule = SequenceDataModule(dataset, batch_size=64, seed=args.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule)
    if args.device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return wall, cpu, (callback.blocking if callback else 0.0), weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-snippets", type=int, default=0, help="0: all 10,605 snippets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--model", default="ours", choices=["ours", "user"])
    parser.add_argument(
        "--no-background",
        dest="background",
        action="store_false",
        help="draw and send figures on the training thread (ExplanationLogger(background=False))",
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset, vocab_size, source = _data(args.max_snippets, args.seed)
    print(
        f"data: {source}, {len(dataset)} sequences; {args.epochs} epochs; device "
        f"{args.device}; {torch.get_num_threads()} torch threads; model {args.model}"
    )
    runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    weights: dict[bool, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _fit(dataset, vocab_size, args, True, Path(tmp), epochs=1)  # warm-up
        for repeat in range(args.repeats):
            for with_callback in (False, True) if repeat % 2 == 0 else (True, False):
                wall, cpu, blocking, weights[with_callback] = _fit(
                    dataset, vocab_size, args, with_callback, Path(tmp), args.epochs
                )
                runs[with_callback].append((wall, cpu, blocking))
                label = "with   " if with_callback else "without"
                print(
                    f"  run {repeat + 1} {label} ExplanationLogger: wall {wall:6.2f} s, "
                    f"cpu {cpu:6.2f} s, callback held the loop {blocking:5.2f} s"
                )

    def median(with_callback: bool, column: int) -> float:
        return statistics.median(r[column] for r in runs[with_callback])

    wall_ratio = median(True, 0) / median(False, 0)
    cpu_ratio = median(True, 1) / median(False, 1)
    held = statistics.median(r[2] / r[0] for r in runs[True])
    identical = all(torch.equal(weights[False][k], weights[True][k]) for k in weights[False])
    print(f"median wall time: without {median(False, 0):6.2f} s, with {median(True, 0):6.2f} s")
    print(f"wall-time ratio: {wall_ratio:.3f}x (target < 1.05x)")
    print(f"CPU-time ratio (worker thread included): {cpu_ratio:.3f}x")
    print(f"share of the fit the callback held up the training loop: {held:.1%}")
    print(f"final weights bit-identical with and without: {identical}")


if __name__ == "__main__":
    main()
