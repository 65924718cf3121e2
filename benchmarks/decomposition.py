"""Exact decomposition and streaming explanation: ground truth, speed against IG, cost per step.

For a GRU and an LSTM trained on ``state_switching`` (as
``examples/state_switching_ground_truth.py`` trains them: 800 sequences, lengths 12-24,
4 features, 12 epochs), in one process:

  (a) AUPRC against the true (time, feature) cells, ``|attribution|`` ranked per sequence
      over its real cells, for integrated gradients (the registered method) and the
      decomposition (target: |difference| <= 0.05);
  (b) time of the decomposition against IG with 50 steps (fixed, no step raising) on the
      same batch, interleaved medians (target: IG / decomposition >= 20);
  (c) streaming: time per ``StreamingExplainer.update`` (float64 and float32) against one
      model step (``rnn`` over the new step with the carried state, then the head), over a
      stream of ``--stream`` steps (target: <= 2x).

    python benchmarks/decomposition.py [--batch 64] [--stream 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
from functools import partial

import pytorch_lightning as pl
import torch
from _timing import interleaved
from torch.utils.data import DataLoader

from captum_rnn.attr import StreamingExplainer, get_method
from captum_rnn.data import PadCollate, state_switching
from captum_rnn.metrics import auprc
from captum_rnn.models import RNNClassifier

FEATURES = 4


def train(cell: str) -> RNNClassifier:
    pl.seed_everything(0, verbose=False)
    data = state_switching(800, length=(12, 24), features=FEATURES, states=3, seed=0)
    loader = DataLoader(data.to_dataset(), batch_size=32, shuffle=True, collate_fn=PadCollate())
    model = RNNClassifier(2, input_size=FEATURES, cell=cell, hidden_size=32, lr=5e-3)
    pl.Trainer(
        max_epochs=12,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, loader)
    return model.eval()


def attribute(model, name: str, x, lengths, target, **options):
    method = get_method(name)(model)
    with torch.enable_grad():
        return method.attribute(x, torch.zeros_like(x), target, lengths, **options)


def cell_auprc(attributions, data) -> float:
    batch, steps, features = attributions.shape
    scores = attributions.detach().double().reshape(batch, steps * features)
    mask = data.masks.reshape(batch, steps * features)
    values = auprc(scores, mask, lengths=data.lengths * features, absolute=True)
    return float(values[~torch.isnan(values)].mean())


def stream_step(model, stream: torch.Tensor):
    def run():
        hidden = None
        with torch.no_grad():
            for t in range(stream.shape[1]):
                out, hidden = model.rnn(stream[:, t : t + 1], hidden)
                model.head(out[:, 0])

    return run


def stream_explained(model, stream: torch.Tensor, dtype: torch.dtype):
    explainer = StreamingExplainer(model, dtype=dtype)

    def run():
        explainer.reset()
        for t in range(stream.shape[1]):
            explainer.update(stream[:, t])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--stream", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    test = state_switching(200, length=(12, 24), features=FEATURES, states=3, seed=1)
    cpu = torch.device("cpu")
    for cell in ("gru", "lstm"):
        model = train(cell)
        x, lengths = test.series, test.lengths
        with torch.no_grad():
            target = model(x, lengths).argmax(-1)
        ig = attribute(model, "ig", x, lengths, target, n_steps=50, max_steps=50)
        dec = attribute(model, "decomposition", x, lengths, target)
        a_ig, a_dec = cell_auprc(ig.attributions, test), cell_auprc(dec.attributions, test)
        print(
            f"{cell}: AUPRC on state_switching (200 sequences): IG(50) {a_ig:.3f}, "
            f"decomposition {a_dec:.3f}, difference {a_dec - a_ig:+.3f} (target within 0.05)"
        )
        rows = slice(0, args.batch)
        xb, lb, tb = x[rows], lengths[rows], target[rows]
        times = interleaved(
            {
                "ig": partial(attribute, model, "ig", xb, lb, tb, n_steps=50, max_steps=50),
                "decomposition": partial(attribute, model, "decomposition", xb, lb, tb),
            },
            cpu,
            args.repeats,
        )
        print(
            f"  batch {len(xb)}: IG(50) {times['ig'] * 1e3:.1f} ms, decomposition "
            f"{times['decomposition'] * 1e3:.2f} ms, IG / decomposition "
            f"{times['ig'] / times['decomposition']:.1f}x (target >= 20x)"
        )
        stream = torch.randn(8, args.stream, FEATURES, generator=torch.Generator().manual_seed(0))
        times = interleaved(
            {
                "model step": stream_step(model, stream),
                "update float64": stream_explained(model, stream, torch.float64),
                "update float32": stream_explained(model, stream, torch.float32),
            },
            cpu,
            args.repeats,
        )
        base = times["model step"] / args.stream
        print(f"  streaming, 8 sequences x {args.stream} steps: one model step {base * 1e6:.0f} us")
        for name in ("update float64", "update float32"):
            per = times[name] / args.stream
            print(f"    {name}: {per * 1e6:.0f} us per step, {per / base:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
