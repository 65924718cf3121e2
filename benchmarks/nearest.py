"""Nearest training examples: captum_rnn.attr.NearestExamples against Captum's SimilarityInfluence.

Prints, in one process, on the same model and data (medians over repeats):

  1. for 2,000 and 20,000 training sequences and 64 queries: seconds per ``influence``
     call of Captum's ``SimilarityInfluence`` at its default batch size (1), at a large
     one and at the whole training set (one activation file per layer: its best),
     against ``NearestExamples`` (exact search), with the speed-up ratios, whether they
     return the same neighbours, the encoding throughput of both, and where
     ``NearestExamples`` spends a call (weight check, encoding the queries, search);
  2. exact search over 1,000,000 vectors of 64 floats for 64 queries (index only);
  3. the store's size against the raw vectors, and the peak memory of building a
     1,000,000 x 64 store and its index (in a fresh subprocess), against the raw vectors.

Captum crashes on a single layer (captum 0.9), so both encode the same two layers:
the pooled ``representation`` tap and the ``head`` logits. The sequences have one
length because Captum's DataLoader has no collate function for padding.

    python benchmarks/nearest.py [--device cpu|cuda] [--sizes 2000,20000] [--repeats 3]

On a CPU shared with other work, pass ``--threads 1``: with more threads than idle cores,
every multi-threaded op can stall for a scheduler quantum and the timings become noise.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from functools import partial

import torch
from _timing import median_seconds, timed
from torch.utils.data import TensorDataset

from captum_rnn.attr import NearestExamples
from captum_rnn.influence import ExactIndex
from captum_rnn.models import RNNClassifier

LAYERS = ["representation", "head"]


def compare(n: int, args, device: torch.device) -> None:
    from captum.influence import SimilarityInfluence

    g = torch.Generator().manual_seed(n)
    ids = torch.randint(2, args.vocab, (n, args.length), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    train = TensorDataset(ids.to(device), labels.to(device))
    queries = torch.randint(2, args.vocab, (args.queries, args.length), generator=g).to(device)
    torch.manual_seed(0)
    model = (
        RNNClassifier(2, vocab_size=args.vocab, embedding_dim=32, hidden_size=args.hidden)
        .to(device)
        .eval()
    )

    print(
        f"\n== {n:,} training sequences of length {args.length}, {args.queries} queries, "
        f"LSTM hidden {args.hidden}, layers {LAYERS}, cosine =="
    )
    ours = NearestExamples(model, train, layers=LAYERS, batch_size=256)
    fit_s, _ = timed(ours.fit, device)
    ours_s = median_seconds(
        lambda: ours.influence(queries, top_k=args.top_k), device, max(args.repeats, 20)
    )
    ours_result = ours.influence(queries, top_k=args.top_k)
    print(
        f"NearestExamples   encode {fit_s:7.2f} s ({n / fit_s:9,.0f} seq/s)   "
        f"influence {ours_s * 1e3:9.2f} ms/call"
    )
    store = ours.store
    print(
        f"  store {store.nbytes / 1e6:.2f} MB for {store.vector_nbytes / 1e6:.2f} MB of raw "
        f"vectors: {store.nbytes / store.vector_nbytes:.3f}x"
    )
    profile(ours, model, queries, args, device)

    # Captum at its default batch size, a large one, and the whole set in one file (its best)
    for batch_size in sorted({1, min(args.large_batch, n), n}):
        directory = tempfile.mkdtemp(prefix="siminf-")
        try:
            captum = SimilarityInfluence(model, LAYERS, train, directory, batch_size=batch_size)
            call = partial(captum.influence, queries, top_k=args.top_k)
            first_s, _ = timed(call, device)
            # Captum's default batch size takes seconds per call: fewer repeats there
            repeats = args.repeats if batch_size == 1 else max(args.repeats, 20)
            warm_s = median_seconds(call, device, repeats, warm=False)
            result = captum.influence(queries, top_k=args.top_k)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        agreement = []
        for layer in LAYERS:
            theirs_idx, ours_idx = result[layer][0].cpu(), ours_result[layer][0].cpu()
            rows = float((theirs_idx == ours_idx).all(1).float().mean())
            gap = float((result[layer][1].cpu() - ours_result[layer][1].cpu()).abs().max())
            agreement.append(f"{layer}: {rows:.0%} rows identical, max score gap {gap:.1e}")
        print(
            f"SimilarityInfluence batch_size={batch_size:<5} first call (encodes) {first_s:7.2f} s "
            f"({n / first_s:9,.0f} seq/s)   influence {warm_s * 1e3:9.2f} ms/call   "
            f"-> NearestExamples {warm_s / ours_s:8.1f}x faster"
        )
        print(f"  same neighbours? {'; '.join(agreement)}")


def profile(ours: NearestExamples, model, queries, args, device: torch.device) -> None:
    """Where an ``influence`` call spends its time: the weight check, encoding the
    queries (the model's forward, which Captum pays too), the search, and a bare forward."""
    vectors, _ = ours.encode(queries)
    parts = {
        "weight check": lambda: ours.store.check_model(model),
        "encode queries": lambda: ours.encode(queries),
        "search": lambda: [ours._search(name, vectors[name], args.top_k) for name in vectors],
    }
    times = {name: median_seconds(fn, device, max(args.repeats, 20)) for name, fn in parts.items()}
    with torch.no_grad():
        bare = median_seconds(lambda: model(queries), device, max(args.repeats, 20))
    print(
        "  where the time goes: "
        + ", ".join(f"{name} {t * 1e3:.2f} ms" for name, t in times.items())
        + f" (bare model forward {bare * 1e3:.2f} ms)"
    )


def million(args, device: torch.device) -> None:
    n, dim = args.million, 64
    g = torch.Generator().manual_seed(0)
    vectors = torch.randn(n, dim, generator=g)
    queries = torch.randn(args.queries, dim, generator=g).to(device)
    print(
        f"\n== exact search, {n:,} x {dim} float32 vectors, {args.queries} queries, top 5, "
        f"{device.type}, {torch.get_num_threads()} threads =="
    )
    for metric in ("cosine", "euclidean", "dot"):
        index = ExactIndex(vectors, metric=metric, device=device)
        seconds = median_seconds(partial(index.search, queries, 5), device, args.repeats)
        print(f"{metric:<10} {seconds * 1e3:9.2f} ms per 64 queries")
    del vectors


def memory_child(rows: int) -> None:
    """Run in a subprocess: peak RSS of building a rows x 64 store and exact index."""
    from captum_rnn.influence._store import StoreWriter

    def high_water_kib() -> int:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    with open("/proc/self/clear_refs", "w") as handle:  # reset the peak RSS to the current
        handle.write("5")
    base = high_water_kib()
    writer = StoreWriter(rows)
    g = torch.Generator().manual_seed(0)
    for start in range(0, rows, 4096):
        size = min(4096, rows - start)
        writer.add(
            {"pooled": torch.randn(size, 64, generator=g)},
            torch.zeros(size, dtype=torch.long),
            torch.zeros(size, dtype=torch.long),
        )
    store = writer.finish(["pooled"], model_fingerprint="", data_fingerprint="")
    index = ExactIndex(store.vectors["pooled"], metric="cosine")
    index.search(torch.randn(64, 64), 5)
    peak = high_water_kib()
    raw = rows * 64 * 4
    print(f"{(peak - base) * 1024 / raw:.3f} {store.nbytes / raw:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--large-batch", type=int, default=1024)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child)
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    for n in (int(s) for s in args.sizes.split(",") if s):
        compare(n, args, device)
    million(args, device)
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(args.million)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    print(
        f"\n== memory, {args.million:,} x 64 store built batch by batch + cosine index ==\n"
        f"peak RSS growth {float(out[0]):.3f}x the raw vectors; store holds "
        f"{float(out[1]):.3f}x (vectors + labels + predictions)"
    )


if __name__ == "__main__":
    main()
