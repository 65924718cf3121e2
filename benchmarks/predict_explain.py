"""Throughput of explaining a data set with trainer.predict against a plain explain loop.

On the same model and the same batches, in one process, alternating:

  (a) loop:    ``for batch in loader: captum_rnn.explain(model, inputs, lengths=lengths)``
               (results kept in memory, nothing written);
  (b) predict: ``trainer.predict(ExplainingModule(model), loader,
               callbacks=[ExplanationWriter(dir)], return_predictions=False)``
               (every explanation written to NPZ shards on disk);

and prints sequences explained per second for each (medians over repeats) and the
ratio loop / predict (target: within 1.1x). It then checks that the merged shards
equal the loop's explanations.

    python benchmarks/predict_explain.py [--device cpu|cuda] [--sequences 512] [--batch 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from _timing import sync
from torch.utils.data import DataLoader

import captum_rnn
from captum_rnn.callbacks import ExplainingModule, ExplanationWriter, read_explanations
from captum_rnn.data import pad_collate, planted_cues
from captum_rnn.models import RNNClassifier


def _loop(model, loader, device, kwargs):
    results = []
    for inputs, lengths, _ in loader:
        results.extend(
            captum_rnn.explain(model, inputs.to(device), lengths=lengths.to(device), **kwargs)
        )
    sync(device)
    return results


def _predict(model, loader, device, folder: Path, kwargs):
    trainer = pl.Trainer(
        accelerator=device.type,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ExplanationWriter(folder, overwrite=True)],
    )
    trainer.predict(ExplainingModule(model, **kwargs), dataloaders=loader, return_predictions=False)
    sync(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)

    data = planted_cues(args.sequences, length=(args.max_len // 4, args.max_len), vocab_size=5000)
    loader = DataLoader(data.to_dataset(), batch_size=args.batch, collate_fn=pad_collate)
    torch.manual_seed(0)
    model = RNNClassifier(
        2,
        vocab_size=len(data.vocab),
        embedding_dim=64,
        hidden_size=64,
        bidirectional=True,
        attention="additive",
    ).to(device)
    model.eval()
    kwargs = {"n_steps": args.steps}
    print(
        f"{args.sequences} sequences of {args.max_len // 4} to {args.max_len} tokens, batch "
        f"{args.batch}, integrated gradients ({args.steps} steps), device {device}, "
        f"{torch.get_num_threads()} torch threads"
    )
    times: dict[str, list[float]] = {"loop": [], "predict": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shards"
        _predict(model, loader, device, folder, kwargs)  # warm-up
        reference = _loop(model, loader, device, kwargs)
        for repeat in range(args.repeats):
            order = ("loop", "predict") if repeat % 2 == 0 else ("predict", "loop")
            for name in order:
                start = time.perf_counter()
                if name == "loop":
                    _loop(model, loader, device, kwargs)
                else:
                    _predict(model, loader, device, folder, kwargs)
                times[name].append(time.perf_counter() - start)
        merged = read_explanations(folder)
        largest = max(
            float(np.max(np.abs(np.subtract(a.scores, b.scores))))
            for a, b in zip(merged, reference, strict=True)
        )
    rate = {name: args.sequences / statistics.median(t) for name, t in times.items()}
    print(f"plain explain loop:                 {rate['loop']:8.1f} sequences/s")
    print(f"trainer.predict + ExplanationWriter: {rate['predict']:8.1f} sequences/s")
    print(f"ratio loop / predict: {rate['loop'] / rate['predict']:.3f}x (target <= 1.1x)")
    print(f"merged shards equal the loop's explanations: max |difference| {largest:.2e}")


if __name__ == "__main__":
    main()
