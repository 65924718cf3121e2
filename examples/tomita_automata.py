"""Automata from recurrent networks: a GRU and an LSTM per Tomita language, with L*.

For each of the seven Tomita languages and each cell: train on class-balanced strings
of lengths 1-15, extract an automaton with L* (equivalence queries answered by
exploring the network's state space, Weiss et al. 2018), and print the network's test
accuracy, the extraction time, the states found against the true minimal automaton,
and the fidelity (agreement with the network, macro-averaged over its two classes) on
fresh class-balanced strings of lengths 1-15 and of longer lengths 16-30, beside the
accuracy of network and automaton on the longer strings. Each automaton is saved as a
state diagram (PNG), Graphviz DOT and JSON in ``--out``.

Then the automata serve as ground truth for attribution: for each network, the
positions of held-out words that belong to a minimal sufficient subset of the
extracted automaton (``captum_rnn.metrics.automaton_truth_set``) are the true important
tokens; every attribution method is scored against them (AUPRC, one row per network,
one column per method), and ``captum_rnn.benchmark``'s recommendation (chosen without
the ground truth, by faithfulness) is checked to be within 0.05 AUPRC of the best.

    python examples/tomita_automata.py [--out tomita_automata] [--quick]
                                       [--grammars 1 2 3 4 5 6 7] [--cells gru lstm]
                                       [--no-attribution] [--truth relevant|flips]

``--quick`` runs languages 1, 4 and 7 with a GRU on a smaller network.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from captum_rnn.demo._tomita_task import extract_tomita, train_tomita
from captum_rnn.demo._tomita_truth import score_tomita_attributions
from captum_rnn.rules import DFA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tomita_automata")
    parser.add_argument("--quick", action="store_true", help="languages 1, 4, 7; GRU; small")
    parser.add_argument("--grammars", type=int, nargs="+", default=None)
    parser.add_argument("--cells", nargs="+", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-attribution", action="store_true", help="skip the AUPRC table")
    parser.add_argument("--truth", choices=["relevant", "flips"], default="relevant")
    args = parser.parse_args()
    grammars = args.grammars or ([1, 4, 7] if args.quick else list(range(1, 8)))
    cells = args.cells or (["gru"] if args.quick else ["gru", "lstm"])
    torch.set_num_threads(1)  # small batches: more threads only contend
    # DeepLift's notice that it hooks non-linear activations, once per call.
    warnings.filterwarnings("ignore", message="Setting forward, backward hooks")

    header = (
        f"{'L':>2} {'cell':<5} {'test acc':>8} {'train s':>7} {'extract s':>9} "
        f"{'states/min':>10} {'exact':>5} {'fid 1-15':>8} {'fid 16-30':>9} "
        f"{'acc 16-30 net/dfa':>17}"
    )
    print(header)
    print("-" * len(header))
    start, rows = time.perf_counter(), []
    for grammar in grammars:
        for cell in cells:
            model, accuracy, seconds = train_tomita(
                grammar,
                cell,
                hidden_size=16 if args.quick else 32,
                n_train=1000 if args.quick else 2000,
                max_epochs=30 if args.quick else 100,
                seed=args.seed,
            )
            row = extract_tomita(
                model, grammar, cell, accuracy, seconds, args.out, args.quick, args.seed
            )
            if not args.no_attribution:
                dfa = DFA.from_dict(row["dfa"])
                truth = score_tomita_attributions(
                    model, grammar, dfa, kind=args.truth, seed=args.seed
                )
                row["attribution"] = truth
            rows.append(row)
            print(
                f"{grammar:>2} {cell:<5} {row['accuracy']:>8.3f} {row['train_seconds']:>7.1f} "
                f"{row['seconds']:>9.3f} {row['states']:>5} / {row['minimal_states']:<2} "
                f"{'yes' if row['exact'] else 'no':>5} {row['fidelity']:>8.3f} "
                f"{row['fidelity_longer']:>9.3f} "
                f"{row['network_accuracy_longer']:>8.3f}/{row['dfa_accuracy_longer']:.3f}",
                flush=True,
            )
            for cex in row["counterexamples"][:3]:
                print(f"{'':>9}disagreement: {cex}")
    exact = sum(r["exact"] for r in rows)
    print(
        f"\n{exact}/{len(rows)} automata are exactly the Tomita language; "
        f"extraction {min(r['seconds'] for r in rows):.3f}-{max(r['seconds'] for r in rows):.3f}"
        f" s each; total {time.perf_counter() - start:.0f} s (training included)"
    )
    print(f"state diagrams (PNG, DOT) and automata (JSON) in {args.out}/")
    if not args.no_attribution:
        print_truth_table(rows, args.truth)


def print_truth_table(rows: list[dict], truth: str) -> None:
    """The network-by-method AUPRC table and the check of the benchmark's pick."""
    methods = sorted({m for r in rows for m in r["attribution"]["auprc"]} - {"random"})
    short = {m: m.replace("integrated_gradients", "ig").replace("_", " ")[:10] for m in methods}
    print(
        f"\nAUPRC against the automaton ground truth ({truth} positions of 40 held-out "
        "words, lengths 4-12; * best, [] benchmark's recommendation)"
    )
    header = f"{'L':>2} {'cell':<5} {'exact':>5} {'agree':>5} " + " ".join(
        f"{short[m]:>11}" for m in methods
    )
    print(header + f" {'random':>7}  within 0.05")
    print("-" * (len(header) + 21))
    hits = 0
    for r in rows:
        a = r["attribution"]
        cells = []
        for m in methods:
            v = a["auprc"].get(m)
            text = "-" if v is None else f"{v:.3f}" + ("*" if m == a["best"] else "")
            cells.append(f"[{text}]" if m == a["recommended"] else text)
        hits += a["within"]
        print(
            f"{r['grammar']:>2} {r['cell']:<5} {'yes' if r['exact'] else 'no':>5} "
            f"{a['agreement']:>5.3f} "
            + " ".join(f"{c:>11}" for c in cells)
            + f" {a['auprc']['random']:>7.3f}  {'yes' if a['within'] else 'NO'}"
        )
    print(
        f"\nbenchmark's recommendation within 0.05 AUPRC of the best on {hits}/{len(rows)} "
        "networks (target: at least 12 of 14)"
    )
    for r in rows:
        if not r["attribution"]["within"]:
            a = r["attribution"]
            print(
                f"  L{r['grammar']} {r['cell']}: recommended {a['recommended']} "
                f"({a['recommended_auprc']:.3f}), best {a['best']} ({a['best_auprc']:.3f}); "
                f"{a['reason']}"
            )


if __name__ == "__main__":
    main()
