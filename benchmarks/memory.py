"""Peak memory of ``explain`` (IG, defaults) against the raw tensors' size.

Each case runs in a fresh child process, which reports its resident memory before the
call, its peak during the call (``ru_maxrss``) and the seconds the call took:

  big:    2,000 sequences x 500 tokens (goal: peak growth under 2 GiB);
  small:  64 x 40, with the default memory budget and with an unbounded one (the one-pass
          behaviour of 0.1): the default must lose no speed (ratio ~1.0).

    python benchmarks/memory.py [--big-batch 2000] [--big-len 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch, captum_rnn
from captum_rnn.models import RNNClassifier
batch, length, budget, steps = (int(a) for a in sys.argv[1:5])
torch.manual_seed(0)
model = RNNClassifier(2, vocab_size=5000, embedding_dim=64, hidden_size=128, cell="lstm",
                      bidirectional=True).eval()
ids = torch.randint(2, 5000, (batch, length))
raw = ids.numel() * ids.element_size()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
kwargs = {} if budget == 0 else {"memory_budget": budget}
start = time.perf_counter()
captum_rnn.explain(model, ids, n_steps=steps, max_steps=steps, **kwargs)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "seconds": seconds, "raw": raw}))
"""


def run(batch: int, length: int, budget: int, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(batch), str(length), str(budget), str(steps)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-batch", type=int, default=2000)
    parser.add_argument("--big-len", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    gib = 2**30
    print(f"model: bi-LSTM 128, embedding 64, IG n_steps={args.steps} (fixed), CPU")
    if not args.skip_big:
        big = run(args.big_batch, args.big_len, 0, args.steps)
        growth = (big["peak"] - big["before"]) / gib
        print(
            f"big   {args.big_batch}x{args.big_len}: {big['seconds']:.1f} s, peak growth "
            f"{growth:.2f} GiB (goal < 2), raw ids {big['raw'] / 2**20:.1f} MiB"
        )
    unbounded = 2**62
    default, one_pass, growth_default, growth_one = [], [], [], []
    for _ in range(args.repeats):  # interleaved
        a = run(64, 40, 0, args.steps)
        b = run(64, 40, unbounded, args.steps)
        default.append(a["seconds"])
        one_pass.append(b["seconds"])
        growth_default.append((a["peak"] - a["before"]) / 2**20)
        growth_one.append((b["peak"] - b["before"]) / 2**20)
    d, o = statistics.median(default), statistics.median(one_pass)
    print(
        f"small 64x40: default {d * 1e3:.0f} ms (peak growth "
        f"{statistics.median(growth_default):.0f} MiB), one pass {o * 1e3:.0f} ms (peak "
        f"growth {statistics.median(growth_one):.0f} MiB); ratio default/one-pass {d / o:.2f}"
    )


if __name__ == "__main__":
    main()
