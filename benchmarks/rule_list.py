"""Global rule lists on movie reviews: held-out fidelity against two baselines.

Trains the small attention LSTM of ``examples/sentiment_rules.py`` (a time budget), then
fits rule lists to its predictions with ``fit_rule_list`` (75% of the snippets, the
other 25% held out, the split ``fit_rule_list`` makes) and prints their held-out
fidelity beside two baselines computed here on the same split and the same labels:

  * the majority class of the fitting split;
  * a decision tree on bag-of-words (token presence, the tokens with >= 5 fitting
    examples), grown best-first by Gini decrease to as many leaves as the list has
    rules (its rules + the default), and to as many leaves as the list has n-grams
    + 1 (the same number of conditions). Plain numpy, no dependency.

    python benchmarks/rule_list.py [--seconds 60] [--max-rules 10 15] [--max-terms 1 10]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
from _sentiment_model import sentiment_task

from captum_rnn.rules import fit_rule_list


def grow_tree(x: np.ndarray, y: np.ndarray, leaves: int) -> list[tuple[int, int]]:
    """Best-first binary tree on boolean features ``x`` ``(n, F)`` for labels ``y`` in
    {0, 1}: the splits ``(leaf, feature)`` in order (a split sends the rows of ``leaf``
    without the feature to a new leaf, numbered by split order)."""

    def gini(n: np.ndarray, pos: np.ndarray) -> np.ndarray:
        p = pos / np.maximum(n, 1)
        return n * 2 * p * (1 - p)

    def best(rows: np.ndarray) -> tuple[float, int]:
        xr, yr = x[rows], y[rows]
        n1 = xr.sum(0).astype(np.float64)
        p1 = xr[yr == 1].sum(0).astype(np.float64)
        n0, p0 = len(rows) - n1, yr.sum() - p1
        parent = gini(np.array([len(rows)], np.float64), np.array([yr.sum()], np.float64))[0]
        decrease = parent - gini(n1, p1) - gini(n0, p0)
        decrease[(n1 == 0) | (n0 == 0)] = -1.0
        j = int(decrease.argmax())
        return float(decrease[j]), j

    members, candidates, splits = [np.arange(len(y))], [best(np.arange(len(y)))], []
    while len(members) < leaves:
        k = int(np.argmax([c[0] for c in candidates]))
        if candidates[k][0] <= 0:
            break
        j = candidates[k][1]
        rows = members[k]
        has, lacks = rows[x[rows, j]], rows[~x[rows, j]]
        members[k], candidates[k] = has, best(has)
        members.append(lacks)
        candidates.append(best(lacks))
        splits.append((k, j))
    return splits


def tree_fidelity(
    x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, leaves: int
) -> float:
    splits = grow_tree(x_fit, y_fit, leaves)
    leaf_fit, leaf_test = np.zeros(len(y_fit), int), np.zeros(len(y_test), int)
    for new, (k, j) in enumerate(splits, start=1):
        for leaf, x in ((leaf_fit, x_fit), (leaf_test, x_test)):
            leaf[(leaf == k) & ~x[:, j]] = new
    label = np.array(
        [np.bincount(y_fit[leaf_fit == i], minlength=2).argmax() for i in range(len(splits) + 1)]
    )
    return float((label[leaf_test] == y_test).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time budget")
    parser.add_argument("--max-rules", type=int, nargs="+", default=[10, 15])
    parser.add_argument("--max-terms", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = sentiment_task(args.seconds, seed=args.seed)
    ids, vocab, model = task.ids, task.vocab, task.model
    print(
        f"movie-review snippets: {len(ids)}, attention LSTM test accuracy "
        f"{task.test_accuracy:.3f} ({task.epochs} epochs)"
    )
    with torch.no_grad():
        predicted = model(ids).argmax(1).numpy()
    # the split fit_rule_list makes (held_out=0.25, seed 0)
    n = len(ids)
    order = list(range(n))
    random.Random(0).shuffle(order)
    cut = min(n - 1, max(1, int(round(0.25 * n))))
    test, fit = np.array(order[:cut]), np.array(order[cut:])
    present = np.zeros((n, len(vocab)), dtype=bool)
    rows = np.repeat(np.arange(n), ids.shape[1])
    present[rows, ids.reshape(-1).numpy()] = True
    present[:, [vocab.pad_index, vocab.unk_index]] = False
    keep = present[fit].sum(0) >= 5
    x_fit, x_test = present[fit][:, keep], present[test][:, keep]
    y_fit, y_test = predicted[fit], predicted[test]
    majority = float((y_test == np.bincount(y_fit).argmax()).mean())
    print(
        f"fitting / held-out snippets: {len(fit)} / {len(test)}; bag of words: "
        f"{int(keep.sum())} tokens; held-out fidelity of the majority class {majority:.3f}\n"
    )
    header = (
        f"{'rules':>5} {'terms/rule':>10} {'n-grams':>7} {'list':>6} {'tree same rules':>15} "
        f"{'tree same n-grams':>17} {'seconds':>7}  above both"
    )
    print(header)
    print("-" * len(header))
    for max_rules in args.max_rules:
        for max_terms in args.max_terms:
            start = time.perf_counter()
            rl = fit_rule_list(model, ids, vocab=vocab, max_rules=max_rules, max_terms=max_terms)
            seconds = time.perf_counter() - start
            rules = len(rl.rules_)  # with the default
            ngrams = sum(len(r.ngrams) for r in rl.rules_)
            same_rules = tree_fidelity(x_fit, y_fit, x_test, y_test, rules)
            same_ngrams = tree_fidelity(x_fit, y_fit, x_test, y_test, ngrams + 1)
            fidelity = rl.report.fidelity
            above = "yes" if fidelity > max(same_rules, majority) else "no"
            print(
                f"{rules - 1:>5} {max_terms:>10} {ngrams:>7} {fidelity:>6.3f} {same_rules:>15.3f} "
                f"{same_ngrams:>17.3f} {seconds:>7.1f}  {above}",
                flush=True,
            )
    print(
        "\nlist: fit_rule_list's held-out fidelity; tree same rules: a tree with as many "
        "leaves as the list has rules (default included); tree same n-grams: as many "
        "leaves as the list's n-grams + 1"
    )


if __name__ == "__main__":
    main()
