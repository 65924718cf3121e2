"""The demo's Tomita task: a GRU on a regular language, its automaton and its explanations.

``captum-rnn demo --task tomita [--grammar G]`` runs :func:`run_tomita_demo`: it trains
a GRU on class-balanced strings of Tomita language ``G`` (default 4: no ``000``),
extracts an automaton with L* and validates it (fidelity inside and beyond the training
lengths, size against the true minimal automaton), explains held-out strings with
integrated gradients, saliency and LIME side by side with the automaton's verdict, runs
the explainer benchmark, and writes ``index.html``, the state diagram (PNG, DOT,
JSON), ``explanations.json`` and ``metrics.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from captum_rnn._explain import explain
from captum_rnn.data import TOMITA_DESCRIPTIONS, tomita, tomita_vocabulary
from captum_rnn.demo._tomita_task import extract_tomita, train_tomita
from captum_rnn.demo.report import Report
from captum_rnn.metrics._benchmark import benchmark
from captum_rnn.rules import DFA

__all__ = ["run_tomita_demo"]

_CLASS_NAMES = ["rejected", "accepted"]
_METHODS = ["integrated_gradients", "saliency", "input_x_gradient", "lime"]
_METHOD_KWARGS = {"lime": {"n_samples": 64}, "integrated_gradients": {"max_steps": 100}}


def run_tomita_demo(
    out: Path, grammar: int = 4, quick: bool = False, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Train, extract, explain and report on one Tomita language; returns the metrics.

    Args:
        out: output folder (created if missing).
        grammar: the Tomita language, 1 to 7.
        quick: a smaller network and fewer strings.
        seed: seeds data, training and extraction.
        progress: show the benchmark's progress bar.

    Returns:
        The metrics written to ``metrics.json``.
    """
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, accuracy, train_seconds = train_tomita(
        grammar,
        "gru",
        hidden_size=16 if quick else 32,
        n_train=1000 if quick else 2000,
        max_epochs=30 if quick else 100,
        seed=seed,
    )
    row = extract_tomita(model, grammar, "gru", accuracy, train_seconds, out, quick, seed)
    dfa = DFA.from_dict(row["dfa"])
    vocab = tomita_vocabulary()

    strings, labels = tomita(grammar, 8, 3, 12, seed=seed + 7)
    ids = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(vocab.encode(list(s))) for s in strings],
        batch_first=True,
        padding_value=vocab.pad_index,
    )
    side_by_side = {
        method: explain(
            model,
            ids,
            method=method,
            vocab=vocab,
            labels=labels,
            class_names=_CLASS_NAMES,
            **_METHOD_KWARGS.get(method, {}),
        )
        for method in ("integrated_gradients", "saliency", "lime")
    }
    bench_strings, _ = tomita(grammar, 32 if quick else 96, 3, 15, seed=seed + 11)
    bench_ids = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(vocab.encode(list(s))) for s in bench_strings],
        batch_first=True,
        padding_value=vocab.pad_index,
    )
    result = benchmark(
        model,
        bench_ids,
        methods=_METHODS,
        vocab=vocab,
        method_kwargs=_METHOD_KWARGS,
        progress=progress,
        seed=seed,
    )
    side_by_side["integrated_gradients"].save(out / "explanations.json")
    metrics = {
        key: row[key]
        for key in (
            "grammar",
            "description",
            "accuracy",
            "states",
            "minimal_states",
            "exact",
            "fidelity",
            "fidelity_longer",
            "dfa_accuracy_longer",
            "network_accuracy_longer",
            "queries",
            "seconds",
        )
    }
    metrics.update(
        task="tomita",
        quick=quick,
        train_seconds=round(train_seconds, 2),
        recommended_method=result.recommendation,
        total_seconds=round(time.perf_counter() - started, 2),
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    report = _report(grammar, row, dfa, strings, side_by_side, result)
    report.save(out / "index.html")
    return metrics


def _report(
    grammar: int,
    row: dict[str, Any],
    dfa: DFA,
    strings: list[str],
    side_by_side: dict[str, Any],
    result: Any,
) -> Report:
    report = Report(
        f"captum-rnn demo: Tomita language {grammar}",
        f"A GRU trained on class-balanced strings of Tomita language {grammar} "
        f"({TOMITA_DESCRIPTIONS[grammar]}) of lengths 1-15. L* extracted the automaton "
        "below from the network, with equivalence queries that explore the network's own "
        "state space (Weiss, Goldberg and Yahav, 2018); its fidelity is measured on fresh "
        "class-balanced strings inside and beyond the training lengths.",
    )
    report.add_heading("The network and its automaton")
    report.add_metrics(
        {
            "network accuracy (lengths 1-15)": row["accuracy"],
            "states found / true minimum": f"{row['states']} / {row['minimal_states']}",
            "automaton equals the true language": row["exact"],
            "fidelity to the network, lengths 1-15": row["fidelity"],
            "fidelity to the network, lengths 16-30": row["fidelity_longer"],
            "automaton accuracy, lengths 16-30": row["dfa_accuracy_longer"],
            "network accuracy, lengths 16-30": row["network_accuracy_longer"],
            "membership queries": row["queries"],
            "extraction seconds": row["seconds"],
        }
    )
    if row["counterexamples"]:
        report.add_list(row["counterexamples"], "Disagreements the falsification pass found")
    report.add_figure(
        dfa.plot(title=f"Tomita {grammar}: extracted automaton"), "the extracted automaton"
    )
    report.add_heading("Held-out strings")
    ig = side_by_side["integrated_gradients"]
    for i, explanation in enumerate(ig):
        rows = {method: e[i] for method, e in side_by_side.items()}
        verdict = _CLASS_NAMES[int(dfa.accepts(list(strings[i])))]
        report.add_example(
            rows,
            f'"{strings[i]}": truth {explanation.class_name(explanation.label)}, '
            f"network {explanation.class_name(explanation.predicted)}, automaton {verdict}",
        )
    report.add_benchmark(result, "Which explanation method? Benchmark", plot=False)
    return report
