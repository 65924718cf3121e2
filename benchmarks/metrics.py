"""Cost of the explanation-quality metrics, against one forward pass of the batch.

For each metric, on the same padded batch in one process, prints:
  * forward passes per sequence: rows the model saw (counted by a forward hook) / batch;
  * milliseconds (median over repeats) and sequences scored per second;
  * the ratio to one forward pass of the whole batch.
Target (issue 7): comprehensiveness and sufficiency over 5 fractions together cost at
most about 10 forward passes per sequence, batched.

    python benchmarks/metrics.py [--device cpu|cuda] [--batch 64] [--max-len 40]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from _timing import median_seconds

from captum_rnn.metrics import (
    auprc,
    comprehensiveness,
    comprehensiveness_sufficiency,
    deletion_auc,
    infidelity,
    insertion_auc,
    leave_one_out,
    loo_kendall,
    sensitivity_max,
    sufficiency,
    token_f1,
)
from captum_rnn.models import RNNClassifier


class RowCounter:
    """Counts the rows (sequences) every forward call of a module sees."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.rows = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        self.rows += int(args[0].shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--metric-batch", type=int, default=256, help="perturbations per forward")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")

    torch.manual_seed(0)
    model = (
        RNNClassifier(
            2,
            vocab_size=5000,
            embedding_dim=64,
            hidden_size=args.hidden,
            bidirectional=True,
            attention="additive",
        )
        .to(device)
        .eval()
    )
    batch, max_len = args.batch, args.max_len
    lengths = torch.randint(max_len // 2, max_len + 1, (batch,), device=device)
    lengths[0] = max_len
    ids = torch.randint(2, 5000, (batch, max_len), device=device)
    mask = torch.arange(max_len, device=device)[None, :] < lengths[:, None]
    ids[~mask] = 0
    attr = torch.rand(batch, max_len, device=device) * mask
    rationale = (torch.rand(batch, max_len, device=device) < 0.1) & mask
    rationale[:, 0] = True
    drops = leave_one_out(model, ids, lengths=lengths, batch_size=args.metric_batch)
    mb = dict(lengths=lengths, batch_size=args.metric_batch)

    def forward() -> None:
        with torch.no_grad():
            model(ids, lengths)

    metrics: list[tuple[str, Callable[[], object]]] = [
        ("one forward pass of the batch", forward),
        (
            "comprehensiveness + sufficiency (5 fractions)",
            lambda: comprehensiveness_sufficiency(model, ids, attr, **mb),
        ),
        ("comprehensiveness alone", lambda: comprehensiveness(model, ids, attr, **mb)),
        ("sufficiency alone", lambda: sufficiency(model, ids, attr, **mb)),
        ("deletion curve (steps=10)", lambda: deletion_auc(model, ids, attr, **mb)),
        ("insertion curve (steps=10)", lambda: insertion_auc(model, ids, attr, **mb)),
        ("deletion curve (every token)", lambda: deletion_auc(model, ids, attr, steps=None, **mb)),
        ("leave-one-out drops", lambda: leave_one_out(model, ids, **mb)),
        (
            "loo_kendall (drops shared)",
            lambda: loo_kendall(model, ids, attr, lengths=lengths, drops=drops),
        ),
        ("infidelity (10 samples)", lambda: infidelity(model, ids, attr, lengths=lengths)),
        (
            "sensitivity_max (saliency, 10 samples)",
            lambda: sensitivity_max(model, ids, "saliency", lengths=lengths),
        ),
        ("auprc", lambda: auprc(attr.cpu(), rationale.cpu(), lengths=lengths.cpu())),
        ("token_f1", lambda: token_f1(attr.cpu(), rationale.cpu(), lengths=lengths.cpu())),
    ]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device={name} threads={torch.get_num_threads()} batch={batch} max_len={max_len} "
        f"mean_len={float(lengths.double().mean()):.1f} model=bi-lstm{args.hidden}+attention "
        f"metric_batch={args.metric_batch} repeats={args.repeats} (median)"
    )
    print(f"{'metric':46s} {'fwd/seq':>8s} {'ms':>9s} {'seq/s':>9s} {'x one fwd':>10s}")
    base = None
    for label, fn in metrics:
        counter = RowCounter(model)
        try:
            fn()
        finally:
            counter.handle.remove()
        passes = counter.rows / batch
        seconds = median_seconds(fn, device, args.repeats)
        base = seconds if base is None else base
        print(
            f"{label:46s} {passes:8.1f} {seconds * 1e3:9.1f} {batch / seconds:9.1f} "
            f"{seconds / base:10.1f}"
        )


if __name__ == "__main__":
    main()
