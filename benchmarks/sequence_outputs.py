"""Every output step explained: the all-outputs call against a loop of one-output calls.

On a batch-first GRU tagger (one sequence of T tokens, one output per token, T_out = T)
and for T_out = 10, 50, 200, times in one process (medians over repeats):

  IG   loop: T_out calls of ``explain`` on the tagger with its outputs flattened, one
            output each (``target = t * classes + c``), ``n_steps`` fixed;
       all:  ``explain(tagger, ids, outputs="all")`` at the same ``n_steps``;
       floor: one forward of the ``n_steps`` interpolated inputs and T_out backward
            passes through it (the least a shared-forward IG spends without the causal
            prefix shortcut);
  and prints all/loop (target <= 0.9), all/floor (target <= 1.3) and the recurrent work,
  sequence-steps through the GRU counted by hooks (forward and backward), all/loop
  (target <= 0.5).

  feature_ablation, occlusion, lime and kernel_shap: one call explaining one output against the all-outputs
  call (target all/one <= 1.5; the loop would cost T_out times one).

For T_out = 200 the IG loop is timed on 20 evenly spaced outputs and scaled to 200 (each
one-output call does the same work whichever output it explains); the line says so.

    python benchmarks/sequence_outputs.py [--repeats 3] [--steps 32] [--lengths 10 50 200]
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved
from _work import WorkCounter
from torch import nn

import captum_rnn
from captum_rnn._utils import grad as grad_utils


class Tagger(nn.Module):
    def __init__(self, vocab=50, dim=16, hidden=32, classes=5):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=0)
        self.rnn = nn.GRU(dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.rnn(self.emb(x))[0])


class Flat(nn.Module):
    """The tagger with its outputs flattened step-major: one output per call."""

    def __init__(self, tagger):
        super().__init__()
        self.tagger = tagger

    def forward(self, x):
        return self.tagger(x).reshape(x.shape[0], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--sampled", type=int, default=20, help="loop outputs timed at T>50")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (busy cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    torch.manual_seed(0)
    tagger = Tagger().eval()
    flat = Flat(tagger).eval()
    ig = dict(n_steps=args.steps)
    print(f"GRU tagger (emb 16, hidden 32, 5 classes), IG n_steps={args.steps}, CPU, "
          f"{torch.get_num_threads()} threads, medians of {args.repeats}")  # fmt: skip
    for time in args.lengths:
        ids = torch.randint(1, 50, (1, time))
        [full] = captum_rnn.explain(tagger, ids, output="logits", **ig)
        targets = [t * 5 + c for t, c in enumerate(full.target)]
        looped = targets if time <= 50 else targets[:: max(1, time // args.sampled)]
        scale = len(targets) / len(looped)

        def loop(looped=looped, ids=ids):
            for target in looped:
                captum_rnn.explain(
                    flat, ids, target=target, output="logits", max_steps=args.steps, **ig
                )

        def all_outputs(ids=ids):
            captum_rnn.explain(tagger, ids, outputs="all", output="logits", **ig)

        def floor(ids=ids, time=time):
            with torch.enable_grad():
                emb = tagger.emb(ids).detach()
                alphas = torch.linspace(0, 1, args.steps)[:, None, None]
                scaled = (alphas * emb).requires_grad_()
                h = tagger.out(tagger.rnn(scaled)[0])
                for t in range(time):
                    torch.autograd.grad(h[:, t, 0].sum(), scaled, retain_graph=t < time - 1)

        medians = interleaved({"loop": loop, "all": all_outputs, "floor": floor}, device,
                              args.repeats)  # fmt: skip
        loop_time = medians["loop"] * scale
        work = {}
        # explain batches the backward passes of several outputs into one (vmap), which
        # a hook sees once: count with one output per backward pass
        batched = grad_utils.BATCHED_GRAD_ELEMENTS
        for name, fn in (("loop", loop), ("all", all_outputs)):
            grad_utils.BATCHED_GRAD_ELEMENTS = 1
            try:
                with WorkCounter(tagger) as counter:
                    fn()
            finally:
                grad_utils.BATCHED_GRAD_ELEMENTS = batched
            work[name] = counter.total * (scale if name == "loop" else 1)
        note = "" if scale == 1 else f" (loop timed on {len(looped)} outputs, scaled x{scale:g})"
        print(
            f"T_out={time:4d} IG: loop {loop_time:8.3f}s  all {medians['all']:7.3f}s  "
            f"floor {medians['floor']:7.3f}s  all/loop {medians['all'] / loop_time:5.3f}  "
            f"all/floor {medians['all'] / medians['floor']:5.2f}  recurrent work all/loop "
            f"{work['all'] / work['loop']:5.3f}{note}"
        )
        for method in ("feature_ablation", "occlusion", "lime", "kernel_shap"):

            def one(ids=ids, method=method, target=targets[-1]):
                captum_rnn.explain(flat, ids, method=method, target=target, output="logits")

            def every(ids=ids, method=method):
                captum_rnn.explain(tagger, ids, method=method, outputs="all", output="logits")

            medians = interleaved({"one": one, "all": every}, device, args.repeats)
            print(
                f"T_out={time:4d} {method}: one output {medians['one']:7.3f}s  all outputs "
                f"{medians['all']:7.3f}s  all/one {medians['all'] / medians['one']:5.2f}  "
                f"(loop ~{time * medians['one']:.2f}s)"
            )


if __name__ == "__main__":
    main()
