"""Integrated-gradients throughput: captum_rnn.explain against Captum and the raw limit.

Times, on the same batch in one process:
  (a) raw:      n_steps forward+backward passes of the model, batched as IG batches them
                (the least any IG implementation must spend);
  (b) captum:   captum.attr.LayerIntegratedGradients(model, model.embedding), lengths
                passed as an additional forward argument;
  (c) explain:  captum_rnn.explain(model, ids, method="integrated_gradients") with the
                step count fixed to n_steps (it also returns the convergence delta);
and prints sequences per second with the ratios b/a and c/a (medians over repeats).

    python benchmarks/ig_throughput.py [--device cpu|cuda] [--batch 32] [--steps 50]
"""

from __future__ import annotations

import argparse

import torch
from _timing import median_seconds
from captum.attr import LayerIntegratedGradients

import captum_rnn
from captum_rnn.models import RNNClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden", type=int, default=128)
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
            cell=args.cell,
            bidirectional=True,
            attention="additive",
        )
        .to(device)
        .eval()
    )
    lengths = torch.randint(args.max_len // 2, args.max_len + 1, (args.batch,), device=device)
    lengths[0] = args.max_len
    ids = torch.randint(2, 5000, (args.batch, args.max_len), device=device)
    ids[torch.arange(args.max_len, device=device)[None, :] >= lengths[:, None]] = 0
    target = torch.zeros(args.batch, dtype=torch.long, device=device)
    steps = args.steps

    emb = model.embedding(ids).detach()
    expanded = emb.repeat(steps, 1, 1)
    expanded_lengths = lengths.repeat(steps)
    expanded_target = target.repeat(steps)

    def raw():
        with captum_rnn.gradient_context(model):
            x = expanded.clone().requires_grad_()
            out = model(x, expanded_lengths).gather(1, expanded_target[:, None]).sum()
            torch.autograd.grad(out, x)

    lig = LayerIntegratedGradients(model, model.embedding)

    def captum_lig():
        with captum_rnn.gradient_context(model):
            lig.attribute(ids, target=target, additional_forward_args=(lengths,), n_steps=steps)

    def ours():
        captum_rnn.explain(model, ids, target=target, n_steps=steps, max_steps=steps)

    results = {}
    for name, fn in (("raw", raw), ("captum", captum_lig), ("explain", ours)):
        results[name] = median_seconds(fn, device, args.repeats)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device={name} threads={torch.get_num_threads()} batch={args.batch} "
        f"max_len={args.max_len} n_steps={steps} model=bi-{args.cell}{args.hidden}+attention "
        f"repeats={args.repeats} (median)"
    )
    for key, label in (
        ("raw", "(a) raw n_steps fwd+bwd"),
        ("captum", "(b) Captum LayerIntegratedGradients"),
        ("explain", "(c) captum_rnn.explain"),
    ):
        seconds = results[key]
        print(f"{label:40s} {seconds * 1e3:9.1f} ms  {args.batch / seconds:9.1f} seq/s")
    print(f"ratio b/a (Captum / raw)  = {results['captum'] / results['raw']:.2f}")
    print(f"ratio c/a (explain / raw) = {results['explain'] / results['raw']:.2f}")


if __name__ == "__main__":
    main()
