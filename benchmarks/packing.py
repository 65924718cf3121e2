"""Packed against unpacked recurrent layers: forward + backward time, medians and ratios.

For each case (a GRU or LSTM, batch x steps, equal or varying lengths), times in one
process, interleaved:
  (a) packed:   what the models did before (pack_padded_sequence whatever the lengths);
  (b) captum_rnn: ``run_recurrent`` + ``last_states`` (unpacked when every length is
                equal; for a unidirectional layer also with varying lengths, masked);
and prints the median seconds of a forward and a backward (a loss on the outputs and the
final state) and the ratio a/b. Then an ``RNNClassifier`` forward + backward (what IG
and the training step run) with equal lengths, packed against now.

    python benchmarks/packing.py [--device cpu|cuda] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from captum_rnn.models import RNNClassifier
from captum_rnn.models.recurrent import last_states, run_recurrent


def packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    data = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, hidden = rnn(data)
    states = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
    h = hidden[0] if isinstance(hidden, tuple) else hidden
    return states.sum() + h[-1].sum()


def unpacked(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    states = run_recurrent(rnn, x, lengths)
    return states.sum() + last_states(states, lengths, rnn.bidirectional).sum()


def step(fn, rnn, x, lengths):
    def run() -> None:
        v = x.detach().requires_grad_(True)
        fn(rnn, v, lengths).backward()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    sizes = [(64, 50), (128, 100)] if args.quick else [(64, 50), (128, 100), (512, 200)]
    print(f"device {device}; medians of {args.repeats} forward+backward passes, interleaved")
    print("| layer | batch x steps | lengths | packed s | captum_rnn s | packed / captum_rnn |")
    print("|---|---|---|---:|---:|---:|")
    for cell in (nn.GRU, nn.LSTM):
        for batch, steps in sizes:
            rnn = cell(16, 64, batch_first=True).to(device)
            x = torch.randn(batch, steps, 16, device=device)
            for kind in ("equal", "varying"):
                if kind == "equal":
                    lengths = torch.full((batch,), steps, device=device)
                else:
                    lengths = torch.randint(steps // 2, steps + 1, (batch,), device=device)
                times = interleaved(
                    {
                        "packed": step(packed, rnn, x, lengths),
                        "new": step(unpacked, rnn, x, lengths),
                    },
                    device,
                    args.repeats,
                )
                print(
                    f"| {cell.__name__} | {batch} x {steps} | {kind} | {times['packed']:.3f} | "
                    f"{times['new']:.3f} | {times['packed'] / times['new']:.1f}x |"
                )
    batch, steps = sizes[-1]
    model = RNNClassifier(2, input_size=16, hidden_size=64, cell="gru").to(device)
    x = torch.randn(batch, steps, 16, device=device)
    lengths = torch.full((batch,), steps, device=device)

    def model_packed() -> None:
        v = x.detach().requires_grad_(True)
        packed(model.rnn, v, lengths).backward()  # the old encode: always packed

    def model_now() -> None:
        v = x.detach().requires_grad_(True)
        model(v, lengths).sum().backward()

    times = interleaved({"packed": model_packed, "now": model_now}, device, args.repeats)
    print(
        f"\nRNNClassifier (GRU 64) forward + backward, {batch} x {steps}, equal lengths: "
        f"packed {times['packed']:.3f} s, now {times['now']:.3f} s, "
        f"ratio {times['packed'] / times['now']:.1f}x"
    )


if __name__ == "__main__":
    main()
