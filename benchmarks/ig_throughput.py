"""Integrated-gradients throughput: captum_rnn.explain against Captum and the raw limit.

Times, on the same batch in one process:
  (a) raw:      n_steps forward+backward passes of the model, batched as IG batches them
                (the least any IG implementation must spend);
  (b) captum:   captum.attr.LayerIntegratedGradients(model, model.embedding), lengths
                passed as an additional forward argument;
  (c) explain:  captum_rnn.explain(model, ids, method="integrated_gradients") with the
                step count fixed to n_steps (it also returns the convergence delta);
and prints sequences per second with the ratios b/a and c/a (medians over repeats).

Then, on a user's model written as the IMDB tutorial writes it (time-major packed
bidirectional LSTM, ``forward(text, text_lengths)``, pad id 1, one logit), timed
interleaved: (d) ``explain(model, ...)`` on the raw model (``adapt`` runs inside every
call), (e) ``explain`` on a prebuilt ``SequenceModel`` (no ``adapt`` work), and (f) Captum's
``LayerIntegratedGradients`` by hand on its batch-first twin; prints d/e (what ``adapt``
adds; target <= 1.02) and d/f.

    python benchmarks/ig_throughput.py [--device cpu|cuda] [--batch 32] [--steps 50]
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved, median_seconds
from captum.attr import LayerIntegratedGradients
from torch import nn

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
    user_model_rows(args, device)


class TutorialLSTM(nn.Module):
    """The IMDB tutorial's model as its users write it."""

    def __init__(self, vocab_size, embedding_dim, hidden_dim, pad_idx, batch_first=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, bidirectional=True, batch_first=batch_first)
        self.fc = nn.Linear(hidden_dim * 2, 1)

    def forward(self, text, text_lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(text),
            text_lengths.to("cpu"),
            batch_first=self.rnn.batch_first,
            enforce_sorted=False,
        )
        _, (hidden, _) = self.rnn(packed)
        return self.fc(torch.cat((hidden[-2], hidden[-1]), dim=1))


def user_model_rows(args: argparse.Namespace, device: torch.device) -> None:
    torch.manual_seed(0)
    model = TutorialLSTM(5000, 64, args.hidden, pad_idx=1).to(device).eval()
    twin = TutorialLSTM(5000, 64, args.hidden, pad_idx=1, batch_first=True).to(device).eval()
    twin.load_state_dict(model.state_dict())
    lengths = torch.randint(args.max_len // 2, args.max_len + 1, (args.batch,), device=device)
    lengths[0] = args.max_len
    ids = torch.randint(2, 5000, (args.batch, args.max_len), device=device)
    ids[torch.arange(args.max_len, device=device)[None, :] >= lengths[:, None]] = 1
    steps = args.steps
    prebuilt = captum_rnn.adapt(model, output="logits")
    lig = LayerIntegratedGradients(twin, twin.embedding)

    def raw_model():
        captum_rnn.explain(model, ids.T, output="logits", n_steps=steps, max_steps=steps)

    def sequence_model():
        captum_rnn.explain(prebuilt, ids.T, n_steps=steps, max_steps=steps)

    def by_hand():
        with captum_rnn.gradient_context(twin):
            lig.attribute(
                ids,
                baselines=torch.full_like(ids, 1),
                target=0,
                additional_forward_args=(lengths,),
                n_steps=steps,
            )

    times = interleaved(
        {"raw model": raw_model, "prebuilt": sequence_model, "by hand": by_hand},
        device,
        args.repeats,
    )
    print(f"user model (IMDB tutorial LSTM, time-major, packed, pad 1), repeats={args.repeats}")
    for key, label in (
        ("raw model", "(d) explain(user model)"),
        ("prebuilt", "(e) explain(adapt(user model)) prebuilt"),
        ("by hand", "(f) LayerIntegratedGradients by hand"),
    ):
        print(f"{label:40s} {times[key] * 1e3:9.1f} ms")
    adapt_seconds = median_seconds(lambda: captum_rnn.adapt(model, output="logits"), device, 200)
    print(f"{'adapt(user model) alone':40s} {adapt_seconds * 1e3:9.3f} ms")
    print(f"adapt / explain                    = {adapt_seconds / times['prebuilt']:.5f}")
    print(f"ratio d/e (what adapt adds)        = {times['raw model'] / times['prebuilt']:.3f}")
    print(f"ratio d/f (explain / Captum by hand) = {times['raw model'] / times['by hand']:.2f}")


if __name__ == "__main__":
    main()
