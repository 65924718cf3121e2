"""Rules from recurrent networks: automata for the Tomita languages, rules for sentiment.

Part 1. For each of the seven Tomita languages and each cell (GRU, LSTM): train on
class-balanced strings of lengths 1-15, extract an automaton with L* (equivalence
queries answered by exploring the network's state space, Weiss et al. 2018), and print
the network's test accuracy, the extraction time, the states found against the true
minimal automaton, and the fidelity inside the training lengths and on longer strings
(16-30). Each automaton is saved as a state diagram (PNG) and as JSON.

Part 2. On the human-rated movie-review snippets (planted-cue text when they cannot be
fetched): a GRU classifier, the global rule list that mimics it with its held-out
fidelity beside the majority-class rule, and anchors (local rules) for a few reviews.

    python examples/tomita_rules.py [--out tomita_rules] [--grammars 1 2 3 4 5 6 7]
                                    [--cells gru lstm] [--skip-text]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.attr import RuleExtraction
from captum_rnn.data import TOMITA_DESCRIPTIONS, tomita, tomita_vocabulary
from captum_rnn.models import RNNClassifier
from captum_rnn.rules import extract_dfa, fit_rule_list, tomita_dfa

VOCAB = tomita_vocabulary()


def encode(strings: list[str]) -> torch.Tensor:
    return pad_sequence([torch.tensor(VOCAB.encode(list(s))) for s in strings], batch_first=True)


def train_tomita(
    grammar: int, cell: str, hidden: int = 32, max_length: int = 15, seed: int = 0
) -> tuple[RNNClassifier, float, float]:
    """Train until the training set is classified perfectly (a few more epochs for margin).

    Returns:
        ``(model, test accuracy on fresh balanced strings, training seconds)``.
    """
    strings, labels = tomita(grammar, 2000, 1, max_length, seed=seed)
    x, y = encode(strings), torch.tensor(labels)
    torch.manual_seed(seed)
    model = RNNClassifier(2, vocab_size=len(VOCAB), embedding_dim=4, hidden_size=hidden, cell=cell)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    start, perfect = time.perf_counter(), 0
    for _ in range(100):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 100):
            idx = order[i : i + 100]
            xb = x[idx][:, : int((x[idx] != 0).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            perfect = perfect + 1 if bool((model(x).argmax(1) == y).all()) else 0
        if perfect > 3:
            break
    seconds = time.perf_counter() - start
    model.eval()
    test, test_labels = tomita(grammar, 1000, 1, max_length, seed=seed + 1)
    with torch.no_grad():
        accuracy = (model(encode(test)).argmax(1) == torch.tensor(test_labels)).float().mean()
    return model, float(accuracy), seconds


def run_tomita(grammar: int, cell: str, out: Path | None = None) -> dict:
    """Train, extract and validate one network; save its diagram; return a summary row."""
    model, accuracy, train_seconds = train_tomita(grammar, cell)
    truth = tomita_dfa(grammar)
    dfa = extract_dfa(model, "01", vocab=VOCAB, max_length=15, reference=truth)
    report = dfa.report
    if out is not None:
        title = f"Tomita {grammar} ({cell.upper()}): {TOMITA_DESCRIPTIONS[grammar]}"
        dfa.plot(title=title).savefig(out / f"tomita{grammar}_{cell}.png", dpi=110)
        dfa.save(out / f"tomita{grammar}_{cell}.json")
    return {
        "grammar": grammar,
        "cell": cell,
        "accuracy": accuracy,
        "train_seconds": train_seconds,
        "seconds": report.seconds,
        "states": dfa.num_states,
        "minimal": truth.num_states,
        "exact": dfa.equivalent(truth) is None,
        "fidelity": report.fidelity.in_range.fidelity,
        "fidelity_longer": report.fidelity.longer.fidelity,
        "network_accuracy_longer": report.fidelity.longer.network_accuracy,
        "counterexamples": report.counterexamples,
    }


def tomita_part(grammars: list[int], cells: list[str], out: Path) -> None:
    print(
        f"{'L':>2} {'cell':<5} {'test acc':>8} {'extract s':>9} {'states':>9} {'exact':>5} "
        f"{'fid 1-15':>8} {'fid 16-30':>9} {'net acc 16-30':>13}"
    )
    for grammar in grammars:
        for cell in cells:
            row = run_tomita(grammar, cell, out)
            print(
                f"{grammar:>2} {cell:<5} {row['accuracy']:>8.3f} {row['seconds']:>9.3f} "
                f"{row['states']:>4} / {row['minimal']:<2} {'yes' if row['exact'] else 'no':>5} "
                f"{row['fidelity']:>8.3f} {row['fidelity_longer']:>9.3f} "
                f"{row['network_accuracy_longer']:>13.3f}",
                flush=True,
            )
            for cex in row["counterexamples"][:3]:
                print(f"{'':>9}disagreement: {cex}")
    print(f"state diagrams and JSON automata in {out}/")


def text_part() -> None:
    from captum_rnn.data import DataUnavailableError, Vocabulary, load_sentiment_snippets

    try:
        snippets = load_sentiment_snippets("movies")
        texts, labels, names = snippets.texts, snippets.labels, ["negative", "positive"]
        vocab = Vocabulary.build(texts, min_freq=2)
        ids, _ = vocab.encode_batch(texts)
        print(f"\nmovie-review snippets: {len(texts)} rated snippets")
    except DataUnavailableError as err:
        from captum_rnn.data import planted_cues

        print(f"\nsnippets unavailable ({err}); using planted-cue text instead")
        data = planted_cues(2000, length=(6, 16), vocab_size=50, seed=0)
        vocab, labels, names = data.vocab, data.labels, ["bad", "good"]
        ids = pad_sequence(data.sequences, batch_first=True)
    y = torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = order[: int(0.8 * len(y))], order[int(0.8 * len(y)) :]
    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=len(vocab), embedding_dim=32, hidden_size=32, cell="gru")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(4):
        shuffled = train[torch.randperm(len(train))]
        for i in range(0, len(shuffled), 64):
            idx = shuffled[i : i + 64]
            xb = ids[idx][:, : int((ids[idx] != 0).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(ids[test]).argmax(1) == y[test]).float().mean()
    print(f"GRU test accuracy {float(accuracy):.3f}")

    for criterion in ("gain", "precision"):
        # the list mimics the network's predictions, so any text will do: fit on 75% of
        # all snippets, validate on the other 25%
        rules = fit_rule_list(
            model, ids, vocab=vocab, class_names=names, max_rules=10, criterion=criterion
        )
        print(f"\nglobal rule list (criterion={criterion!r}):\n{rules}\n{rules.report}")
        for rule in rules.report.held_out_rules[:4]:
            print(f"  held out: {rule}")

    # perturbed tokens are replaced by one of the 100 most frequent tokens (ids 2..101)
    anchors = RuleExtraction(model).explain(
        ids[test[:4]],
        vocab=vocab,
        class_names=names,
        coverage_data=ids,
        precision=0.9,
        replacement=list(range(2, min(102, len(vocab)))),
    )
    print("\nanchors (local rules) for four test snippets, coverage over all snippets:")
    for row, anchor in zip(ids[test[:4]], anchors, strict=True):
        text = " ".join(vocab.decode([t for t in row.tolist() if t != 0]))
        print(f"  {text[:90]!r}\n    {anchor}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tomita_rules")
    parser.add_argument("--grammars", type=int, nargs="+", default=list(range(1, 8)))
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--skip-text", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small batches: threads only contend
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tomita_part(args.grammars, args.cells, out)
    if not args.skip_text:
        text_part()


if __name__ == "__main__":
    main()
