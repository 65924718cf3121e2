"""Translate human-readable dates to ISO, show the alignments, explain a mistranslation.

Trains a Seq2SeqAttention (bidirectional GRU encoder, additive cross-attention) on
generated dates with Lightning, on a CPU in a few minutes (``--quick``: about a
minute), then:

1. measures how much cross-attention each ISO field puts on the characters that
   write it (the data set knows those spans);
2. saves the alignment (source characters x output characters) of one date as a PNG;
3. finds a held-out date the model gets wrong (or, if it gets them all right, a date
   from years it never saw) and traces the first wrong output character to the source
   with integrated gradients over the source embedding (Captum's
   LayerIntegratedGradients; the target is the character the model produced at that
   step), and reports the cross-attention that step put on the month span and on the
   wrong field's own span.

    python examples/translate_dates.py [--quick] [--epochs 12] [--out dates_out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from captum.attr import LayerIntegratedGradients
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from captum_rnn.data import DATE_FORMATS, date_pairs, pad_collate
from captum_rnn.models.seq2seq import Seq2SeqAttention
from captum_rnn.viz import plot_attention_matrix, plot_attention_tokens, plot_token_attributions

FIELDS = ("year", "month", "day")


def translate_all(model: Seq2SeqAttention, data) -> tuple:
    """Greedy translations of ``data``: (source ids, lengths, ids, attention, texts)."""
    ds = data.to_dataset()
    src, lengths, _ = pad_collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        tokens, attention = model.translate(src, lengths, max_length=11)
    return src, lengths, tokens, attention, [data.decode_target(t) for t in tokens]


def span_share(attention: torch.Tensor, data, i: int, field: str, steps) -> float:
    """Mean cross-attention mass on ``field``'s source span over the given output steps."""
    span = data.span_mask(i, field)
    n = len(data.sources[i])
    return sum(float(attention[i, s, :n][span].sum()) for s in steps) / len(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default 12 (4 with --quick)")
    parser.add_argument("--train", type=int, default=None, help="default 10000 (4000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--out", default="dates_out", help="folder for the PNG figures")
    args = parser.parse_args()
    epochs = args.epochs or (4 if args.quick else 12)
    n_train = args.train or (4000 if args.quick else 10000)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(0, verbose=False)
    torch.set_num_threads(1)  # small matrices: one thread is the fastest on a CPU

    train, valid, test = (date_pairs(n, seed=s) for n, s in ((n_train, 0), (500, 1), (500, 2)))

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
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, loader(train, shuffle=True), loader(valid))
    print(f"trained {epochs} epochs on {n_train} dates in {time.perf_counter() - start:.0f} s")
    model.eval()

    # 1. accuracy and alignment with the known spans ---------------------------------
    src, lengths, tokens, attention, predicted = translate_all(model, test)
    correct = [p == t for p, t in zip(predicted, test.targets, strict=True)]
    print(f"held-out accuracy (whole date right): {sum(correct) / len(correct):.3f}")
    for field in FIELDS:
        shares = [
            span_share(attention, test, i, field, test.output_steps(field))
            for i in range(len(test))
        ]
        print(
            f"cross-attention on the {field} span while writing the {field}: "
            f"{sum(shares) / len(shares):.2f}"
        )

    # 2. one alignment as a picture ----------------------------------------------------
    i = 0
    fig = plot_attention_matrix(
        attention[i, : len(predicted[i])],
        list(test.sources[i]),
        list(predicted[i]),
        title=f"{test.sources[i]} -> {predicted[i]}",
    )
    fig.savefig(out / "alignment.png", dpi=120)
    print(f"alignment of {test.sources[i]!r} -> {predicted[i]!r}: {out / 'alignment.png'}")

    # 3. explain a mistranslation ------------------------------------------------------
    wrong = [k for k, ok in enumerate(correct) if not ok]
    if not wrong:
        # A well-trained model gets held-out dates right; years it never saw are harder.
        four_digit = [name for name, pieces in DATE_FORMATS.items() if "{YY}" not in pieces]
        test = date_pairs(200, seed=3, years=(2050, 2149), formats=four_digit)
        src, lengths, tokens, attention, predicted = translate_all(model, test)
        wrong = [k for k, (p, t) in enumerate(zip(predicted, test.targets, strict=True)) if p != t]
        print(f"years 2050-2149 (never seen): {len(wrong)} of {len(test)} mistranslated")
    if not wrong:
        print("no mistranslation to explain")
        return
    k = wrong[0]
    source, guess, truth = test.sources[k], predicted[k], test.targets[k]
    step = next(
        (s for s in range(min(len(guess), len(truth))) if guess[s] != truth[s]),
        min(len(guess), len(truth)),
    )
    field = next((f for f in FIELDS if step in test.output_steps(f)), None)
    produced = tokens[k, step]
    ids = src[k : k + 1, : lengths[k]]
    tgt_in = torch.cat([torch.tensor([[model.bos_idx]]), tokens[k : k + 1, :step]], dim=1)
    lig = LayerIntegratedGradients(model.step_function(step), model.embedding)
    attr, delta = lig.attribute(
        ids,
        baselines=torch.zeros_like(ids),  # the padding character: an all-zero embedding
        target=produced.view(1),
        additional_forward_args=(tgt_in, lengths[k : k + 1]),
        n_steps=64,
        return_convergence_delta=True,
    )
    scores = attr.sum(-1)[0].detach()
    print(
        f"mistranslated {source!r} ({test.formats[k]}): {guess!r} instead of {truth!r}; "
        f"output character {step} ({field or 'separator'}) came out "
        f"{guess[step : step + 1]!r} instead of {truth[step : step + 1]!r}, "
        f"IG convergence delta {float(delta):.3f}"
    )
    ranked = scores.abs().argsort(descending=True)[:5].tolist()
    print(
        "source characters that moved it most (position, char, IG):",
        [(r, source[r], round(float(scores[r]), 3)) for r in ranked],
    )
    spans = test.spans[k]
    print("source spans:", {f: (source[a:b], (a, b)) for f, (a, b) in spans.items()})
    total = float(scores.abs().sum()) or 1.0
    for f in FIELDS:
        share = float(scores.abs()[test.span_mask(k, f)].sum()) / total
        print(f"share of |IG| on the {f} span: {share:.2f}")
    month_attention = span_share(attention, test, k, "month", test.output_steps("month"))
    print(
        f"this date: cross-attention on the month span while writing the month: {month_attention:.2f}"
    )
    at_step = ", ".join(f"{f} {span_share(attention, test, k, f, [step]):.2f}" for f in FIELDS)
    print(f"this date: cross-attention at the wrong step on each span: {at_step}")

    fig = Figure(figsize=(max(6.0, 0.5 * len(source) + 2), 3.6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    plot_token_attributions(
        list(source),
        scores.tolist(),
        title=f"integrated gradients: why output character {step} became "
        f"{guess[step : step + 1]!r} (should be {truth[step : step + 1]!r})",
        ax=top,
        tokens_per_row=len(source),
    )
    plot_attention_tokens(
        attention[k, step, : len(source)],
        list(source),
        title="cross-attention at that step",
        ax=bottom,
    )
    fig.savefig(out / "mistranslation.png", dpi=120)
    print(f"saved {out / 'mistranslation.png'}")


if __name__ == "__main__":
    main()
