"""Attention explanations: rollout against one forward pass, flow against the reference.

Prints, in one process (medians over repeats):

1. one forward pass of a TransformerClassifier (no grad) against
   ``AttentionRollout.attribute`` on the same batch (target: under 1.2x, since rollout is
   a few small matrix products on top of one forward pass); the same for a plain
   ``nn.TransformerEncoder`` read through hooks, and ``GradientAttentionRollout``
   against one forward + backward pass;
2. ``attention_flow``'s time per output row at 6 layers x 20 tokens and 12 x 20,
   against the reference implementation of Abnar and Zuidema (networkx Edmonds-Karp,
   one max-flow per input token) timed here when networkx is installed, and against
   the issue's quoted 0.9 s and 4.8 s per row (target: 10x faster).

    python benchmarks/attention.py [--device cpu|cuda] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import torch
from _timing import interleaved, median_seconds
from torch import nn

from captum_rnn.attr import (
    AttentionRollout,
    GradientAttentionRollout,
    attention_flow,
    fuse_attention,
)
from captum_rnn.models import TransformerClassifier

QUOTED_REFERENCE = {6: 0.9, 12: 4.8}  # seconds per row at (layers, 20 tokens)


class PlainEncoder(nn.Module):
    def __init__(self, vocab: int, width: int, heads: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width, padding_idx=0)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == 0
        h = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
        real = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * real).sum(1) / real.sum(1))


def reference_flow_row(fused: list[torch.Tensor], row: int) -> torch.Tensor:
    """Abnar and Zuidema's reference: one networkx Edmonds-Karp max-flow per input token."""
    import networkx as nx

    layers, time_ = len(fused), fused[0].shape[-1]
    graph = nx.DiGraph()
    for layer, matrix in enumerate(fused, start=1):
        values = matrix.tolist()
        for a in range(time_):
            for b in range(time_):
                graph.add_edge((layer, a), (layer - 1, b), capacity=values[a][b])
    flows = [
        nx.maximum_flow_value(
            graph, (layers, row), (0, j), flow_func=nx.algorithms.flow.edmonds_karp
        )
        for j in range(time_)
    ]
    out = torch.tensor(flows, dtype=torch.float64)
    return out / out.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-reference", action="store_true", help="skip the networkx timing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")

    torch.manual_seed(0)
    vocab = 1000
    lengths = torch.randint(args.max_len // 2, args.max_len + 1, (args.batch,))
    lengths[0] = args.max_len
    ids = torch.randint(2, vocab, (args.batch, args.max_len))
    ids[torch.arange(args.max_len)[None, :] >= lengths[:, None]] = 0
    ids = ids.to(device)

    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print(
        f"\n1) attribution cost against the model, batch {args.batch} x {args.max_len} tokens, "
        f"{args.layers} layers x {args.heads} heads x {args.width} wide"
    )
    model = (
        TransformerClassifier(
            2,
            vocab_size=vocab,
            num_layers=args.layers,
            num_heads=args.heads,
            embedding_dim=args.width,
        )
        .to(device)
        .eval()
    )
    plain = PlainEncoder(vocab, args.width, args.heads, args.layers).to(device).eval()
    rollout, plain_rollout = AttentionRollout(model), AttentionRollout(plain)
    gradient = GradientAttentionRollout(model)

    def forward_backward() -> None:
        with torch.enable_grad():
            model(ids)[:, 1].sum().backward()
        model.zero_grad(set_to_none=True)

    def plain_forward() -> None:
        with torch.no_grad():
            plain(ids)

    def model_forward() -> None:
        with torch.no_grad():
            model(ids)

    times = interleaved(
        {
            "forward": model_forward,
            "rollout": lambda: rollout.attribute(ids),
            "plain forward": plain_forward,
            "plain rollout": lambda: plain_rollout.attribute(ids),
            "forward+backward": forward_backward,
            "gradient rollout": lambda: gradient.attribute(ids, target=1),
        },
        device,
        args.repeats,
    )
    rows = [
        ("TransformerClassifier", "forward", "rollout", "AttentionRollout"),
        ("nn.TransformerEncoder (hooks)", "plain forward", "plain rollout", "AttentionRollout"),
        ("TransformerClassifier", "forward+backward", "gradient rollout", "GradientAttnRollout"),
    ]
    print(f"   {'model':30s} {'baseline':>18s} {'method':>20s} {'ratio':>7s}")
    for name, base, method, label in rows:
        print(
            f"   {name:30s} {base:>10s} {1e3 * times[base]:6.1f} ms "
            f"{label:>11s} {1e3 * times[method]:6.1f} ms {times[method] / times[base]:6.2f}x"
        )
    print(
        "   target: AttentionRollout under 1.2x one forward pass (the plain encoder's own\n"
        "   forward takes PyTorch's fused fast path, which cannot return weights; reading\n"
        "   them needs the unfused path)"
    )

    print("\n2) attention_flow, time per output row (batch 1, 20 tokens, 2 heads)")
    try:
        import networkx  # noqa: F401

        have_nx = not args.no_reference
    except ImportError:
        have_nx = False
    header = f"   {'layers':>6s} {'ours s/row':>11s} {'quoted ref':>11s} {'vs quoted':>10s}"
    if have_nx:
        header += f" {'networkx here':>14s} {'vs here':>8s}"
    print(header)
    for layers in (6, 12):
        g = torch.Generator().manual_seed(layers)
        atts = [
            torch.softmax(2 * torch.randn(1, 2, 20, 20, generator=g), dim=-1).to(device)
            for _ in range(layers)
        ]
        ours = median_seconds(lambda atts=atts: attention_flow(atts), device, 3) / 20
        line = (
            f"   {layers:6d} {ours:11.4f} {QUOTED_REFERENCE[layers]:11.2f} "
            f"{QUOTED_REFERENCE[layers] / ours:9.0f}x"
        )
        if have_nx:
            fused = [f[0].double().cpu() for f in fuse_attention([a.double() for a in atts])]
            start = time.perf_counter()
            reference = reference_flow_row(fused, 0)
            here = time.perf_counter() - start
            ours_row = attention_flow([a.double() for a in atts], positions=[0])[0, 0].cpu()
            diff = float((reference - ours_row).abs().max())
            line += f" {here:14.3f} {here / ours:7.0f}x  (max |difference| {diff:.1e})"
        print(line)
    print("   target: 10x faster than the reference per row")


if __name__ == "__main__":
    main()
