"""Perturbation methods on padded batches: the padding check's cost, medians and ratios.

Since perturbation methods explain the output on the input as padded, every padded row is
first checked (one forward pass for the padded rows and one per distinct length): a model
that ignores its padding (packed, or masked) is still cut to the real steps; one that
reads it is perturbed in place. For random padded token batches through three user-style
models (a packed bidirectional LSTM that reads no padding, a GRU fed its padding as
content, a bidirectional GRU masked only when pooling), times in one process, interleaved:
  (a) cut:   every row cut to its real steps, as before (the check switched off);
  (b) now:   the check, then cut or in place;
and prints the median seconds per batch of ``explain(method=...)`` and the ratio b/a.

    python benchmarks/padding_check.py [--repeats 5] [--batch 32] [--steps 40]
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved
from torch import nn

import captum_rnn
from captum_rnn.attr._methods import AttributionMethod


class PackedLSTM(nn.Module):
    """Reads no padding: packed sequences (the IMDB tutorial's way)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 16, padding_idx=0)
        self.rnn = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(64, 2)

    def forward(self, text, text_lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(text), text_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (hidden, _) = self.rnn(packed)
        return self.fc(torch.cat([hidden[-2], hidden[-1]], dim=1))


class PaddedGRU(nn.Module):
    """Reads its padding: fed to the GRU as content, the last state read."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 16, padding_idx=0)
        self.rnn = nn.GRU(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc(self.rnn(self.embedding(x))[1][-1])


class MaskedPoolGRU(nn.Module):
    """Reads its padding: a bidirectional GRU, masked only in the mean pooling."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 16, padding_idx=0)
        self.rnn = nn.GRU(16, 32, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(64, 2)

    def forward(self, input_ids, attention_mask=None):
        states, _ = self.rnn(self.embedding(input_ids))
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return self.fc((states * mask).sum(1) / mask.sum(1).clamp(min=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    device = torch.device("cpu")
    torch.manual_seed(0)
    vocab = 50
    lengths = torch.randint(args.steps // 2, args.steps + 1, (args.batch,))
    lengths[0] = args.steps
    ids = torch.randint(1, vocab, (args.batch, args.steps))
    ids[torch.arange(args.steps)[None, :] >= lengths[:, None]] = 0
    check = AttributionMethod.reads_padding

    def cut_only(self, inputs, lengths, target):
        return torch.zeros(inputs.shape[0], dtype=torch.bool, device=inputs.device)

    def run(model, method, checked):
        def call() -> None:
            AttributionMethod.reads_padding = check if checked else cut_only
            try:
                captum_rnn.explain(model, ids, method=method, output="logits")
            finally:
                AttributionMethod.reads_padding = check

        return call

    print(
        f"CPU, batch {args.batch} x up to {args.steps} steps; medians of {args.repeats} "
        "explain calls, interleaved"
    )
    print("| model | reads padding | method | cut s | now s | now / cut |")
    print("|---|---|---|---:|---:|---:|")
    for cls, reads in ((PackedLSTM, "no"), (PaddedGRU, "yes"), (MaskedPoolGRU, "yes")):
        model = cls(vocab).eval()
        for method in ("occlusion", "feature_ablation"):
            times = interleaved(
                {"cut": run(model, method, False), "now": run(model, method, True)},
                device,
                args.repeats,
            )
            print(
                f"| {cls.__name__} | {reads} | {method} | {times['cut']:.3f} | "
                f"{times['now']:.3f} | {times['now'] / times['cut']:.2f}x |"
            )


if __name__ == "__main__":
    main()
