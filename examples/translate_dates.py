"""Translate human-readable dates to ISO, show the alignments, explain a mistranslation.

Trains a Seq2SeqAttention (bidirectional GRU encoder, additive cross-attention) on
generated dates with Lightning, on a CPU in a few minutes (``--quick``: about a
minute), then:

1. measures how much cross-attention each ISO field puts on the characters that
   write it (the data set knows those spans), and, beside it, the share of positive
   integrated-gradients attribution on the source month span while the month is
   written (``captum_rnn.explain(model, src, target=tgt)`` explains every output
   character at once, teacher-forced on the true ISO date);
2. saves the IG alignment beside the attention alignment (source characters x output
   characters) of one date as a PNG;
3. finds a held-out date the model gets wrong (or, if it gets them all right, a date
   from years it never saw) and traces the first wrong output character to the source
   with ``explain`` on the model's own output, contrasted with the right character
   (``contrast=``: why this character rather than the right one), beside the
   cross-attention of that step.

    python examples/translate_dates.py [--quick] [--epochs 12] [--out dates_out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from captum_rnn import explain
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


def month_shares(model: Seq2SeqAttention, data, n: int) -> tuple[float, float, float]:
    """While the month is written (teacher-forced on the true date): the share of positive
    IG attribution on the source month span (source only), attention's share, and chance
    (the span's share of the source characters), averaged over the first ``n`` dates."""
    ds = data.to_dataset()
    ig_shares, att_shares, chance = [], [], []
    for start in range(0, n, 50):
        rows = range(start, min(n, start + 50))
        src, _, tgt = pad_collate([ds[i] for i in rows])
        ig = explain(model, src, target=tgt, n_steps=32)
        att = explain(model, src, target=tgt, method="attention")
        for i, e, a in zip(rows, ig, att, strict=True):
            span = data.span_mask(i, "month")
            chance.append(float(span.float().mean()))
            for step in data.output_steps("month"):
                pos = torch.tensor(e.scores[step]).clamp(min=0)
                ig_shares.append(float(pos[span].sum() / pos.sum().clamp(min=1e-12)))
                att_shares.append(float(torch.tensor(a.scores[step])[span].sum()))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return mean(ig_shares), mean(att_shares), mean(chance)


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

    n_ig = 100 if args.quick else 300
    start = time.perf_counter()
    ig_share, att_share, chance = month_shares(model, test, n_ig)
    print(
        f"while writing the month ({n_ig} dates, teacher-forced): share of positive IG on "
        f"the source month span {ig_share:.2f}, attention {att_share:.2f}, chance "
        f"{chance:.2f} ({time.perf_counter() - start:.0f} s)"
    )

    # 2. one alignment as a picture: IG beside attention ---------------------------------
    i = 0
    one = test.to_dataset()[i]
    [e] = explain(model, one[0], target=one[1], n_steps=32, target_vocab=test.target_vocab)
    [a] = explain(model, one[0], target=one[1], method="attention")
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    labels = [t.replace("</s>", "eos") for t in e.output_labels]
    ig_matrix = torch.tensor(e.scores).clamp(min=0)
    ig_matrix = ig_matrix / ig_matrix.sum(-1, keepdim=True).clamp(min=1e-12)
    plot_attention_matrix(
        ig_matrix, list(test.sources[i]), labels, title="IG (positive share)", ax=left
    )
    plot_attention_matrix(
        torch.tensor(a.scores), list(test.sources[i]), labels, title="cross-attention", ax=right
    )
    fig.savefig(out / "alignment.png", dpi=120)
    print(f"alignments of {test.sources[i]!r} -> {test.targets[i]!r}: {out / 'alignment.png'}")

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
    # explain the model's own output (greedy), every character at once; at the wrong step
    # contrast the character it wrote with the right one
    right = test.encode_target(truth)
    foil = right[1:].clone()
    [own] = explain(model, src[k, : lengths[k]], n_steps=64, max_length=11)
    foil = torch.cat([foil, foil.new_zeros(max(0, len(own.target) - len(foil)))])
    [why] = explain(
        model, src[k, : lengths[k]], n_steps=64, max_length=11, contrast=foil[: len(own.target)]
    )
    scores = torch.tensor(why.scores[step])
    print(
        f"mistranslated {source!r} ({test.formats[k]}): {guess!r} instead of {truth!r}; "
        f"output character {step} ({field or 'separator'}) came out "
        f"{guess[step : step + 1]!r} instead of {truth[step : step + 1]!r} "
        f"(logit margin {why.output[step]:.2f}, IG delta {why.delta[step]:.3f}; "
        f"explaining the character alone: delta {own.delta[step]:.3f})"
    )
    prefix = why.prefix_scores[step][:step]
    print(
        "output characters before it that pushed it (position, char, IG):",
        [(j, guess[j : j + 1], round(float(v), 3)) for j, v in enumerate(prefix)],
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
        f"{guess[step : step + 1]!r} rather than {truth[step : step + 1]!r}",
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
