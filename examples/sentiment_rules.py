"""Rules from a text classifier: a global rule list and local anchors on movie reviews.

On the human-rated movie-review snippets (Hutto and Gilbert, ICWSM 2014; fetched once
and cached, see ``captum_rnn.data.load_sentiment_snippets``), train a small LSTM with
additive attention for a time budget, then:

* fit global rule lists (ordered token / bigram rules) that mimic the network's
  predictions, chosen for fidelity ("gain") and for sharpness ("precision"), and print
  their fidelity on a held-out split beside the majority-class rule, with each rule's
  precision and coverage on the held-out split;
* find anchors (Ribeiro et al. 2018) for a few test reviews: tokens that keep the
  network's prediction when the rest of the review is perturbed, with the precision
  estimated by the search, the precision on fresh (held-out) perturbations, and the
  coverage over all snippets.

    python examples/sentiment_rules.py [--seconds 90] [--epochs 12] [--max-rules 15]
                                       [--criteria gain precision] [--anchors 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from captum_rnn.attr import RuleExtraction
from captum_rnn.data import DataUnavailableError, Vocabulary, load_sentiment_snippets
from captum_rnn.models import RNNClassifier
from captum_rnn.rules import fit_rule_list

CLASSES = ["negative", "positive"]


def accuracy(model: RNNClassifier, ids: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(ids).argmax(1) == y).float().mean())


def train(
    ids: torch.Tensor,
    y: torch.Tensor,
    train_idx: torch.Tensor,
    valid_idx: torch.Tensor,
    vocab_size: int,
    seconds: float,
    max_epochs: int,
) -> tuple[RNNClassifier, int, int]:
    """Train for at most ``max_epochs`` or about ``seconds`` (whole epochs, at least one);
    keep the weights of the epoch with the best validation accuracy.

    Returns:
        ``(model in eval mode, epochs run, best epoch)``.
    """
    model = RNNClassifier(
        2,
        vocab_size=vocab_size,
        embedding_dim=32,
        hidden_size=32,
        cell="lstm",
        attention="additive",
        dropout=0.3,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start, best, best_epoch, best_state = time.perf_counter(), -1.0, 0, None
    epoch = 0
    while epoch < max_epochs and (epoch == 0 or time.perf_counter() - start < seconds):
        model.train()
        shuffled = train_idx[torch.randperm(len(train_idx))]
        for i in range(0, len(shuffled), 64):
            idx = shuffled[i : i + 64]
            xb = ids[idx][:, : int((ids[idx] != 0).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epoch += 1
        valid = accuracy(model, ids[valid_idx], y[valid_idx])
        if valid > best:
            best, best_epoch = valid, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model.eval(), epoch, best_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=12, help="most training epochs")
    parser.add_argument(
        "--criteria", nargs="+", default=["gain", "precision"], choices=["gain", "precision"]
    )
    parser.add_argument("--max-rules", type=int, default=15)
    parser.add_argument("--anchors", type=int, default=5, help="test reviews to anchor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small batches: more threads only contend on a busy machine

    try:
        snippets = load_sentiment_snippets("movies")
    except DataUnavailableError as err:
        sys.exit(
            f"The movie-review snippets are not cached and could not be downloaded:\n  {err}\n"
            "Run this once with network access (the snippets are fetched from the package "
            "registry as vaderSentiment==3.3.2 and cached), or set CAPTUM_RNN_CACHE to a "
            "folder that already holds them."
        )
    texts, labels = snippets.texts, snippets.labels
    vocab = Vocabulary.build(texts, min_freq=2)
    ids, _ = vocab.encode_batch(texts)
    y = torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))
    cut, cut2 = int(0.8 * len(y)), int(0.9 * len(y))
    train_idx, valid_idx, test_idx = order[:cut], order[cut:cut2], order[cut2:]
    print(
        f"movie-review snippets: {len(texts)} rated snippets ({float(y.float().mean()):.0%} "
        f"positive), vocabulary {len(vocab)} tokens; train/validation/test "
        f"{len(train_idx)}/{len(valid_idx)}/{len(test_idx)}"
    )

    start = time.perf_counter()
    model, epochs, best_epoch = train(
        ids, y, train_idx, valid_idx, len(vocab), args.seconds, args.epochs
    )
    print(
        f"attention LSTM (32 units): {epochs} epochs in {time.perf_counter() - start:.0f} s, "
        f"kept epoch {best_epoch} (best validation accuracy); test accuracy "
        f"{accuracy(model, ids[test_idx], y[test_idx]):.3f}\n"
    )

    # The list mimics the network, not the human labels, so any text will do: it is
    # fitted to the network's predictions on 75% of all snippets and validated on the
    # other 25%, which it never saw. "gain" picks the rules that raise fidelity most;
    # "precision" the sharpest rules (more readable, lower fidelity).
    for criterion in args.criteria:
        start = time.perf_counter()
        rules = fit_rule_list(
            model,
            ids,
            vocab=vocab,
            class_names=CLASSES,
            max_rules=args.max_rules,
            criterion=criterion,
            seed=args.seed,
        )
        seconds = time.perf_counter() - start
        report = rules.report
        print(
            f"global rule list, criterion={criterion!r} ({seconds:.1f} s): held-out fidelity "
            f"{report.fidelity:.3f} vs the majority-class rule {report.majority_fidelity:.3f} "
            f"(balanced {report.balanced_fidelity:.3f}; train {report.train_fidelity:.3f}; "
            f"{report.n_train} fitting + {report.n_held_out} held-out snippets)"
        )
        print(f"{'':>4}{'rule':<52} {'held-out precision':>18} {'coverage':>8}")
        for i, held in enumerate(report.held_out_rules, 1):
            if held.ngram is None:
                condition = f"else {held.label_name}"
            else:
                condition = f'if contains "{" ".join(held.ngram)}" then {held.label_name}'
            print(f"{i:>3}. {condition:<52} {held.precision:>18.2f} {held.coverage:>8.3f}")
        print()

    # Perturbed tokens are replaced by frequent tokens (ids 2..201), so a perturbed
    # review still reads like a review.
    anchored = test_idx[: args.anchors]
    x = ids[anchored][:, : int((ids[anchored] != 0).sum(1).max())]
    explainer = RuleExtraction(model)
    options = dict(
        precision=0.9,
        replacement=list(range(2, min(202, len(vocab)))),
        exclude=[vocab.unk_index],  # a rule "contains <unk>" tells a reader nothing
        seed=0,
    )
    start = time.perf_counter()
    anchors = explainer.explain(x, vocab=vocab, class_names=CLASSES, coverage_data=ids, **options)
    seconds = time.perf_counter() - start
    mask = torch.zeros(x.shape)
    for i, anchor in enumerate(anchors):
        mask[i, list(anchor.positions)] = 1.0
    held_out = explainer.evaluate(
        x, mask, n_samples=1000, replacement=options["replacement"], seed=12345
    )
    print(
        f"anchors (precision target 0.90) for {len(anchors)} test reviews ({seconds:.1f} s); "
        "held-out: precision on 1000 fresh perturbations; coverage over all snippets:"
    )
    for row, anchor, fresh in zip(x, anchors, held_out.tolist(), strict=True):
        text = " ".join(vocab.decode([t for t in row.tolist() if t != 0]))
        print(f"  {text[:100]!r}\n    {anchor}; held-out precision {fresh:.2f}")


if __name__ == "__main__":
    main()
