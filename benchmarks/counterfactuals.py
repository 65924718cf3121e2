"""Counterfactuals: milliseconds per sequence, edits against the true minimum, and the
Native Guide / CoMTE baselines beside ours.

Tokens: a GRU is trained on each Tomita language 2-7 (lengths 1..``--longest``); for
``--words`` random words of lengths 3..``--longest`` that have a word of the other class of
the same length, ``counterfactuals`` runs with the automaton (extracted from the network,
its time included; then given, extraction excluded) and with the breadth-first search
alone. Printed: ms per sequence (median over the six languages), the share that flip
(verified on the network), the share whose edit count equals the language's true minimum
(the exact DFA's dynamic programme, itself checked against brute force in the tests), the
share proven minimal, the median edit count.

Series: a GRU over all 9 speakers of Japanese Vowels; for ``--series`` test utterances:
ours (``native_guide``: the nearest unlike neighbour's values spliced cell by cell), the
Native Guide window splice (all features over the most attributed window, grown until it
flips; Delaney et al. 2021), CoMTE's channel swaps as our ``comte`` method, and
TSInterpret 0.4.7's CoMTE (brute force) when it imports (see ``_tsinterpret_comte.py``;
it runs on ``--tsinterpret`` utterances). Printed: share flipped, mean share of cells
changed (over flips), ms per sequence, share of changed values inside the training range.

    python benchmarks/counterfactuals.py [--words 30] [--longest 20] [--series 370]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from captum_rnn import counterfactuals
from captum_rnn._counterfactuals._tokens import automaton_candidates
from captum_rnn.data import tomita_vocabulary
from captum_rnn.demo._tomita_task import train_tomita
from captum_rnn.rules import extract_dfa, tomita_dfa
from tests.counterfactuals._vowels_net import train_vowels_gru  # noqa: E402 (shared with the tests)


def true_minimum(grammar: int, word: str) -> int | None:
    """Fewest substitutions that move ``word`` to the other class of the language."""
    dfa = tomita_dfa(grammar)
    table = np.array(dfa.transitions)
    goal = np.array([(q in dfa.accepting) != dfa.accepts(word) for q in dfa.states])
    word_index = [dfa.alphabet.index(c) for c in word]
    cost, _ = automaton_candidates(table, dfa.start, goal, word_index, [0, 1], "substitute", 1)
    return cost


def token_part(args: argparse.Namespace) -> None:
    vocab = tomita_vocabulary()
    rows: dict[str, list[dict]] = {
        "automaton (extracted)": [],
        "automaton (given)": [],
        "search": [],
    }
    print(f"Tomita 2-7, GRU, {args.words} words of lengths 3..{args.longest} per language")
    for grammar in range(2, 8):
        model, accuracy, _ = train_tomita(
            grammar, "gru", hidden_size=16, max_length=args.longest, n_train=2000,
            max_epochs=100, seed=0,
        )  # fmt: skip
        rng = random.Random(grammar)
        words: list[str] = []
        while len(words) < args.words:
            w = "".join(rng.choice("01") for _ in range(rng.randint(3, args.longest)))
            if true_minimum(grammar, w) is not None:
                words.append(w)
        ids = [vocab.encode(list(w)) for w in words]
        train = [torch.tensor(vocab.encode(list(w))) for w in ("0", "1")]
        truth = [true_minimum(grammar, w) for w in words]
        with torch.no_grad():
            padded = pad_sequence([torch.tensor(i) for i in ids], batch_first=True)
            agree = float(
                (model(padded).argmax(-1).numpy().astype(bool) == tomita_dfa(grammar).accepts_batch(words)).mean()
            )  # fmt: skip
        start = time.perf_counter()
        dfa = extract_dfa(model, {2: 2, 3: 3}, time_limit=5.0, falsify=500)
        extraction = time.perf_counter() - start
        runs = {
            "automaton (extracted)": dict(method="auto"),
            "automaton (given)": dict(method="auto", dfa=dfa),
            "search": dict(method="search"),
        }
        for name, options in runs.items():
            start = time.perf_counter()
            cfs = counterfactuals(model, ids, train_dataset=train, **options)
            seconds = time.perf_counter() - start
            flips = [cf for cf, t in zip(cfs, truth, strict=True) if cf.flipped]
            exact = sum(len(cf.edits) == t for cf, t in zip(cfs, truth, strict=True) if cf.flipped)
            rows[name].append(
                dict(
                    ms=1000 * seconds / len(words), flip=len(flips) / len(words),
                    exact=exact / max(1, len(flips)),
                    proven=sum(cf.minimal is True for cf in flips) / max(1, len(flips)),
                    median=statistics.median(len(cf.edits) for cf in flips) if flips else float("nan"),
                )
            )  # fmt: skip
        print(
            f"  Tomita {grammar}: test accuracy {accuracy:.3f}, network = language on "
            f"{agree:.0%} of the words, DFA {dfa.num_states} states in {extraction:.2f} s; "
            + ", ".join(f"{k}: {r[-1]['exact']:.0%} exact" for k, r in rows.items())
        )
    print(
        f"\n{'tokens':24s} {'ms/seq':>8s} {'flip':>6s} {'= true min':>11s} {'proven':>7s} {'median edits':>13s}"
    )
    for name, results in rows.items():
        print(
            f"{name:24s} {statistics.median(r['ms'] for r in results):8.1f} "
            f"{statistics.mean(r['flip'] for r in results):6.1%} "
            f"{statistics.mean(r['exact'] for r in results):11.1%} "
            f"{statistics.mean(r['proven'] for r in results):7.1%} "
            f"{statistics.median(r['median'] for r in results):13.1f}"
        )
    print("(ms/seq: median over the languages; shares: mean over the languages)")
    cue_part()


def cue_part() -> None:
    """A larger vocabulary (30 tokens, no automaton): the planted-cue GRU of the tests."""
    from captum_rnn.data import planted_cues
    from tests.rules._cue_net import cue_net

    model, held = cue_net()
    train = planted_cues(800, length=(6, 16), vocab_size=30, seed=0).sequences
    start = time.perf_counter()
    cfs = counterfactuals(model, held.sequences, train_dataset=train)
    ms = 1000 * (time.perf_counter() - start) / len(cfs)
    flips = [cf for cf in cfs if cf.flipped]
    print(
        f"planted cues, 30 tokens, lengths 6-16, search: {ms:.1f} ms/seq, "
        f"{len(flips) / len(cfs):.0%} flip, {sum(cf.minimal is True for cf in flips) / len(flips):.0%} "
        f"proven minimal, median {statistics.median(len(cf.edits) for cf in flips)} edits"
    )


def series_part(args: argparse.Namespace) -> None:
    model, train, labels, held, accuracy = train_vowels_gru()
    held = held[: args.series]
    frames = torch.cat(train)
    low, high = frames.min(0).values, frames.max(0).values
    print(
        f"\nJapanese Vowels, GRU over 9 speakers: test accuracy {accuracy:.3f}; {len(held)} test utterances"
    )
    padded, lengths = pad_sequence(held, batch_first=True), torch.tensor([len(s) for s in held])
    results = {}
    for name, method in (
        ("ours: native_guide cells", "native_guide"),
        ("Native Guide window", "window"),
        ("ours: comte", "comte"),
    ):
        start = time.perf_counter()
        cfs = counterfactuals(model, padded, lengths=lengths, train_dataset=train, method=method)
        seconds = time.perf_counter() - start
        flips = [cf for cf in cfs if cf.flipped]
        inside = all(
            bool(((cf.counterfactual >= low) & (cf.counterfactual <= high))[cf.changed].all()) for cf in cfs
        )  # fmt: skip
        results[name] = dict(
            flip=len(flips) / len(cfs), cells=statistics.mean(cf.changed_fraction for cf in flips),
            ms=1000 * seconds / len(cfs), inside=inside,
        )  # fmt: skip
    comte_cls = None
    if not args.no_tsinterpret:
        from _tsinterpret_comte import load_comte, run_comte

        comte_cls, reason = load_comte()
        if comte_cls is None:
            print(f"TSInterpret's CoMTE not run: {reason}")
    if comte_cls is not None:
        queries = held[: args.tsinterpret]
        with torch.no_grad():
            base = [int(model(q[None]).argmax(-1)) for q in queries]
        start = time.perf_counter()
        out = run_comte(comte_cls, model, train, labels, queries)
        seconds = time.perf_counter() - start
        flipped = [(q, s) for q, (s, p), b in zip(queries, out, base, strict=True) if p != b]
        fractions = [float((torch.as_tensor(s) != q).float().mean()) for q, s in flipped]
        results[f"TSInterpret CoMTE (first {len(queries)})"] = dict(
            flip=len(flipped) / len(queries), cells=statistics.mean(fractions) if fractions else float("nan"),
            ms=1000 * seconds / len(queries), inside=None,
        )  # fmt: skip
    print(f"{'series':34s} {'flip':>6s} {'cells changed':>14s} {'ms/seq':>8s} {'in range':>9s}")
    for name, r in results.items():
        inside = "-" if r["inside"] is None else "yes" if r["inside"] else "NO"
        print(f"{name:34s} {r['flip']:6.1%} {r['cells']:14.1%} {r['ms']:8.1f} {inside:>9s}")
    ours, window = results["ours: native_guide cells"], results["Native Guide window"]
    print(
        f"cells changed, ours / window splice: {ours['cells'] / window['cells']:.2f} (target <= 0.5); "
        f"ours / our comte: {ours['cells'] / results['ours: comte']['cells']:.2f} (target < 1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=30, help="words per Tomita language")
    parser.add_argument("--longest", type=int, default=20)
    parser.add_argument("--series", type=int, default=370, help="Japanese Vowels test utterances")
    parser.add_argument("--tsinterpret", type=int, default=100, help="utterances for TSInterpret")
    parser.add_argument("--no-tsinterpret", action="store_true")
    parser.add_argument("--skip-tokens", action="store_true")
    parser.add_argument("--skip-series", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.skip_tokens:
        token_part(args)
    if not args.skip_series:
        series_part(args)


if __name__ == "__main__":
    main()
