"""Translate human-readable dates to ISO, show the alignments, explain a mistranslation.

Trains a Seq2SeqAttention (bidirectional GRU encoder, additive cross-attention) on
generated dates with Lightning, on a CPU in a few minutes, then:

1. measures how much cross-attention each ISO field puts on the characters that
   write it (the data set knows those spans);
2. saves the alignment (source characters x output characters) of one date;
3. finds a held-out date the model gets wrong (or, if it gets them all right, a date
   from years it never saw) and traces the first wrong output
   character to the source with Captum's LayerIntegratedGradients over the source
   embedding (the target is the character the model produced at that step).

    python examples/attention_dates.py [--epochs 6] [--out dates_out]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytorch_lightning as pl
import torch
from captum.attr import LayerIntegratedGradients
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from captum_rnn.data import DATE_FORMATS, date_pairs, pad_collate
from captum_rnn.models.seq2seq import Seq2SeqAttention
from captum_rnn.viz import plot_token_attributions


def alignment_figure(source: str, output: str, attention: torch.Tensor) -> Figure:
    """Cross-attention as a heatmap: one row per output character, one column per source one."""
    fig = Figure(figsize=(0.3 * len(source) + 2, 0.3 * len(output) + 1.5))
    ax = fig.add_subplot()
    ax.imshow(attention.numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(source)), [c if c != " " else "\u2423" for c in source])
    ax.set_yticks(range(len(output)), list(output))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--out", default="dates_out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(0)
    torch.set_num_threads(1)  # small matrices: one thread is the fastest on a CPU

    train, valid, test = (date_pairs(n, seed=s) for n, s in ((args.train, 0), (500, 1), (500, 2)))

    def loader(data, shuffle=False):
        return DataLoader(
            data.to_dataset(), batch_size=128, shuffle=shuffle, collate_fn=pad_collate
        )

    model = Seq2SeqAttention(
        len(train.source_vocab),
        len(train.target_vocab),
        embedding_dim=16,
        hidden_size=64,
        bos_idx=train.bos_index,
        eos_idx=train.eos_index,
        lr=5e-3,
    )
    trainer = pl.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False)
    trainer.fit(model, loader(train, shuffle=True), loader(valid))
    model.eval()

    ds = test.to_dataset()
    src, lengths, _ = pad_collate([ds[i] for i in range(len(ds))])
    tokens, attention = model.translate(src, lengths, max_length=11)
    predicted = [test.decode_target(t) for t in tokens]
    correct = [p == t for p, t in zip(predicted, test.targets, strict=True)]
    print(f"held-out accuracy: {sum(correct) / len(correct):.3f}")
    for field in ("year", "month", "day"):
        shares = [
            float(attention[i, step, : len(test.sources[i])][test.span_mask(i, field)].sum())
            for i in range(len(test))
            for step in test.output_steps(field)
        ]
        print(
            f"cross-attention on the {field} span while writing the {field}: "
            f"{sum(shares) / len(shares):.2f}"
        )

    i = 0
    fig = alignment_figure(
        test.sources[i], predicted[i], attention[i, : len(predicted[i]), : len(test.sources[i])]
    )
    fig.savefig(out / "alignment.png", dpi=120)
    print(f"alignment of {test.sources[i]!r} -> {predicted[i]!r}: {out / 'alignment.png'}")

    wrong = [k for k, ok in enumerate(correct) if not ok]
    if not wrong:
        # A well-trained model gets held-out dates right; years it never saw are harder.
        four_digit = [name for name, pieces in DATE_FORMATS.items() if "{YY}" not in pieces]
        test = date_pairs(200, seed=3, years=(2050, 2149), formats=four_digit)
        ds = test.to_dataset()
        src, lengths, _ = pad_collate([ds[i] for i in range(len(ds))])
        tokens, _ = model.translate(src, lengths, max_length=11)
        predicted = [test.decode_target(t) for t in tokens]
        wrong = [k for k, (p, t) in enumerate(zip(predicted, test.targets, strict=True)) if p != t]
        print(f"years 2050-2149 (never seen): {len(wrong)} of {len(test)} mistranslated")
    if not wrong:
        print("no mistranslation to explain")
        return
    k = wrong[0]
    guess, truth = predicted[k], test.targets[k]
    step = next(
        (s for s in range(min(len(guess), len(truth))) if guess[s] != truth[s]),
        min(len(guess), len(truth)),
    )
    source = src[k : k + 1, : lengths[k]]
    produced = tokens[k, step]
    tgt_in = torch.cat([torch.tensor([[model.bos_idx]]), tokens[k : k + 1, :step]], dim=1)
    lig = LayerIntegratedGradients(model.step_function(step), model.embedding)
    attr, delta = lig.attribute(
        source,
        baselines=torch.zeros_like(source),
        target=produced.view(1),
        additional_forward_args=(tgt_in, lengths[k : k + 1]),
        n_steps=64,
        return_convergence_delta=True,
    )
    scores = attr.sum(-1)[0]
    field = next((f for f in ("year", "month", "day") if step in test.output_steps(f)), None)
    print(
        f"mistranslated {test.sources[k]!r}: {guess!r} instead of {truth!r}; output character "
        f"{step} ({field}) came out {guess[step : step + 1]!r}, IG delta {float(delta):.3f}"
    )
    ranked = scores.abs().argsort(descending=True)[:5].tolist()
    print(
        "source characters that moved it most:",
        [(test.sources[k][r], round(float(scores[r]), 3)) for r in ranked],
    )
    if field is not None:
        span = test.span_mask(k, field)
        share = float(scores.abs()[span].sum() / scores.abs().sum())
        print(f"share of |IG| on the {field} span {test.spans[k][field]}: {share:.2f}")
    fig = Figure(figsize=(8, 2))
    plot_token_attributions(
        list(test.sources[k]),
        scores.tolist(),
        title=f"why output character {step} became {guess[step : step + 1]!r}",
        ax=fig.add_subplot(),
        tokens_per_row=len(test.sources[k]),
    )
    fig.savefig(out / "mistranslation_ig.png", dpi=120)
    print(f"saved {out / 'mistranslation_ig.png'}")


if __name__ == "__main__":
    main()
