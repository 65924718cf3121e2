"""Every target token of an encoder-decoder explained: all-outputs call against a loop.

On a ``Seq2SeqAttention`` (GRU encoder and decoder, one source of 12 tokens, a target of
T_out tokens), for T_out = 10, 50, 200, times in one process (medians over repeats):

  IG   loop: T_out Captum ``IntegratedGradients`` calls, one per output, each on the
            source and prefix embeddings with the decoder run only up to that output
            (the cheapest one-output call), ``n_steps`` fixed;
       all:  ``explain(model, src, target=tgt)`` at the same ``n_steps``: one forward of the
            interpolated inputs shared by all outputs, one backward per output;
       floor: one forward of the interpolated inputs and T_out backward passes through it
            (``explain`` batches the backward passes, so it can beat this "floor");
       recurrent work: sequence-steps through the encoder GRU and decoder cell, counted
            by hooks (forward and backward), all/loop;
  feature_ablation, kernel_shap and lime: one call explaining one output (source and prefix
  tokens ablated one at a time / as players) against the all-outputs call reading every
  output from the same passes.

For T_out = 200 the IG loop is timed on 10 evenly spaced outputs and its time scaled by
the summed decoder steps of all 200 outputs (the line says so).

    python benchmarks/seq2seq_outputs.py [--repeats 3] [--steps 16] [--lengths 10 50 200]
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved
from _work import WorkCounter
from captum.attr import FeatureAblation, IntegratedGradients, KernelShap, Lime

from captum_rnn import explain
from captum_rnn._utils import grad as grad_utils
from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.attr._seq2seq import _Decoder
from captum_rnn.models import adapt
from captum_rnn.models.seq2seq import Seq2SeqAttention


def last_output(seq, src, lengths, target):
    """The embedded source and prefix of ``target`` and a forward ``f(source, prefix)``
    returning the logit of its last token (the one-output function Captum is given)."""
    dec = _Decoder(seq, 0)
    dec.offset = 0
    src_emb, pre, _ = dec.embedded(src, target)
    token = int(target[0, -1])

    def forward(s, p):
        batch = s.shape[0]
        logits = dec.step_logits(
            src.expand(batch, -1),
            lengths.expand(batch),
            target.expand(batch, -1),
            src_emb=s,
            prefix_emb=p,
        )
        return logits[:, -1, token]

    return src_emb, pre, forward


def one_output_ig(seq, src, lengths, tgt, j, n_steps):
    """Captum IG of output ``j`` alone (the decoder run up to it), source and prefix."""
    src_emb, pre, forward = last_output(seq, src, lengths, tgt[:, : j + 2])
    base = torch.zeros_like(pre)
    base[:, 0] = pre[:, 0]
    return IntegratedGradients(forward).attribute(
        (src_emb, pre), baselines=(torch.zeros_like(src_emb), base), n_steps=n_steps
    )


def last_output_players(seq, src, lengths, tgt):
    """The last output's forward, its inputs (source, prefix embeddings), one feature per
    source and prefix token, and zero baselines: what Captum's perturbation methods get."""
    src_emb, pre, forward = last_output(seq, src, lengths, tgt)
    n_src, n_pre = src.shape[1], pre.shape[1]
    masks = (
        torch.arange(n_src)[None, :, None].expand_as(src_emb),
        (n_src + torch.arange(n_pre))[None, :, None].expand_as(pre),
    )
    zeros = (torch.zeros_like(src_emb), torch.zeros_like(pre))
    return forward, (src_emb, pre), masks, zeros


def one_output_ablation(seq, src, lengths, tgt):
    """Captum FeatureAblation of the last output: each source and prefix token ablated."""
    forward, inputs, masks, zeros = last_output_players(seq, src, lengths, tgt)
    return FeatureAblation(forward).attribute(inputs, baselines=zeros, feature_mask=masks)


def floor_pass(seq, src, lengths, tgt, n_steps):
    """The least a shared-forward IG spends: one forward of the ``n_steps`` interpolated
    source and prefix embeddings, and one backward pass per output through it."""
    dec = _Decoder(seq, 0)
    dec.offset = 0
    src_emb, pre, _ = dec.embedded(src, tgt)
    alphas = torch.linspace(0, 1, n_steps)[:, None, None]
    with torch.enable_grad():
        s = (alphas * src_emb).requires_grad_()
        p = (alphas * pre).requires_grad_()
        logits = dec.step_logits(
            src.expand(n_steps, -1), lengths.expand(n_steps), tgt.expand(n_steps, -1),
            src_emb=s, prefix_emb=p,
        )  # fmt: skip
        n_out = logits.shape[1]
        for j in range(n_out):
            token = int(tgt[0, j + 1])
            torch.autograd.grad(logits[:, j, token].sum(), (s, p), retain_graph=j < n_out - 1)


def one_output_kernel_shap(seq, src, lengths, tgt, n_samples):
    """Captum KernelShap of the last output: source and prefix tokens as players."""
    forward, inputs, masks, zeros = last_output_players(seq, src, lengths, tgt)
    shap = KernelShap(forward)
    shap.interpretable_model = WeightedRidge(alpha=0.0)  # least squares, no scikit-learn
    return shap.attribute(
        inputs, baselines=zeros, feature_mask=masks, n_samples=n_samples,
        perturbations_per_eval=64,
    )  # fmt: skip


def one_output_lime(seq, src, lengths, tgt, n_samples):
    """Captum Lime of the last output: source and prefix tokens as interpretable features."""
    forward, inputs, masks, zeros = last_output_players(seq, src, lengths, tgt)
    lime = Lime(forward, interpretable_model=WeightedRidge(alpha=1e-3))
    return lime.attribute(
        inputs, baselines=zeros, feature_mask=masks, n_samples=n_samples,
        perturbations_per_eval=64,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 50, 200])
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = Seq2SeqAttention(30, 20, embedding_dim=16, hidden_size=32, bos_idx=2, eos_idx=3)
    model.eval()
    seq = adapt(model)
    src = torch.randint(4, 30, (1, 12))
    lengths = torch.tensor([12])
    print(f"Seq2SeqAttention, source 12 tokens, n_steps={args.steps}, CPU, 1 thread")
    for t_out in args.lengths:
        tgt = torch.cat([torch.tensor([[2]]), torch.randint(4, 20, (1, t_out))], dim=1)
        sample = list(range(t_out)) if t_out <= 50 else torch.linspace(0, t_out - 1, 10).long()
        sample = [int(j) for j in sample]
        scale = sum(range(1, t_out + 1)) / sum(j + 1 for j in sample)

        def loop(sample=sample, tgt=tgt):
            for j in sample:
                one_output_ig(seq, src, lengths, tgt, j, args.steps)

        def everything(tgt=tgt):
            explain(model, src, target=tgt, n_steps=args.steps)

        def ablate_all(tgt=tgt):
            explain(model, src, target=tgt, method="feature_ablation")

        def ablate_one(tgt=tgt):  # Captum's FeatureAblation of the last output alone
            one_output_ablation(seq, src, lengths, tgt)

        def floor(tgt=tgt):
            floor_pass(seq, src, lengths, tgt, args.steps)

        # explain batches the backward passes of several outputs into one (vmap), which
        # a hook sees once: count with one output per backward pass
        work = {}
        batched = grad_utils.BATCHED_GRAD_ELEMENTS
        for name, fn in (("loop", loop), ("all", everything)):
            grad_utils.BATCHED_GRAD_ELEMENTS = 1
            try:
                with WorkCounter(model) as counter:
                    fn()
            finally:
                grad_utils.BATCHED_GRAD_ELEMENTS = batched
            work[name] = counter.total * (scale if name == "loop" else 1)

        def shap_all(tgt=tgt):
            explain(model, src, target=tgt, method="kernel_shap", n_samples=200)

        def shap_one(tgt=tgt):  # Captum's KernelShap of the last output alone
            one_output_kernel_shap(seq, src, lengths, tgt, 200)

        def lime_all(tgt=tgt):
            explain(model, src, target=tgt, method="lime", n_samples=200)

        def lime_one(tgt=tgt):  # Captum's Lime of the last output alone
            one_output_lime(seq, src, lengths, tgt, 200)

        fns = {"loop": loop, "all": everything, "floor": floor}
        if t_out <= 50:  # ablating each of 200 prefix tokens: minutes on a shared CPU
            fns.update(fa_all=ablate_all, fa_one=ablate_one, ks_all=shap_all, ks_one=shap_one,
                       lime_all=lime_all, lime_one=lime_one)  # fmt: skip
        times = interleaved(fns, device, args.repeats)
        loop_s = times["loop"] * scale
        note = "" if scale == 1 else f" (loop timed on {len(sample)} outputs, scaled x{scale:.1f})"
        print(
            f"T_out={t_out:4d}  IG loop {loop_s:8.3f} s  all {times['all']:7.3f} s  "
            f"floor {times['floor']:7.3f} s  all/loop {times['all'] / loop_s:.2f} (target <= 0.9)  "
            f"all/floor {times['all'] / times['floor']:.2f} (target <= 1.3)  recurrent work "
            f"all/loop {work['all'] / work['loop']:.3f} (target <= 0.5){note}"
        )
        if "fa_all" in times:
            print(
                f"            feature_ablation all {times['fa_all']:.3f} s, one output "
                f"{times['fa_one']:.3f} s, all/one {times['fa_all'] / times['fa_one']:.2f} "
                "(target <= 1.5)"
            )
            print(
                f"            kernel_shap (200 coalitions) all {times['ks_all']:.3f} s, one "
                f"output (Captum) {times['ks_one']:.3f} s, all/one "
                f"{times['ks_all'] / times['ks_one']:.2f} (target <= 1.5)"
            )
            print(
                f"            lime (200 samples) all {times['lime_all']:.3f} s, one output "
                f"(Captum) {times['lime_one']:.3f} s, all/one "
                f"{times['lime_all'] / times['lime_one']:.2f} (target <= 1.5)"
            )


if __name__ == "__main__":
    main()
