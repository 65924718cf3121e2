"""Automata from recurrent networks: a GRU and an LSTM per Tomita language, with L*.

For each of the seven Tomita languages and each cell: train on class-balanced strings
of lengths 1-15, extract an automaton with L* (equivalence queries answered by
exploring the network's state space, Weiss et al. 2018), and print the network's test
accuracy, the extraction time, the states found against the true minimal automaton,
and the fidelity (agreement with the network, macro-averaged over its two classes) on
fresh class-balanced strings of lengths 1-15 and of longer lengths 16-30, beside the
accuracy of network and automaton on the longer strings. Each automaton is saved as a
state diagram (PNG), Graphviz DOT and JSON in ``--out``.

    python examples/tomita_automata.py [--out tomita_automata] [--quick]
                                       [--grammars 1 2 3 4 5 6 7] [--cells gru lstm]

``--quick`` runs languages 1, 4 and 7 with a GRU on a smaller network.
"""

from __future__ import annotations

import argparse
import time

import torch

from captum_rnn.demo._tomita_task import run_tomita


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tomita_automata")
    parser.add_argument("--quick", action="store_true", help="languages 1, 4, 7; GRU; small")
    parser.add_argument("--grammars", type=int, nargs="+", default=None)
    parser.add_argument("--cells", nargs="+", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    grammars = args.grammars or ([1, 4, 7] if args.quick else list(range(1, 8)))
    cells = args.cells or (["gru"] if args.quick else ["gru", "lstm"])
    torch.set_num_threads(1)  # small batches: more threads only contend

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
            row = run_tomita(grammar, cell, args.out, quick=args.quick, seed=args.seed)
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


if __name__ == "__main__":
    main()
