"""The Tomita task: train a recurrent network on a Tomita language, extract its automaton.

Shared by ``examples/tomita_automata.py`` and the demo's Tomita task.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["run_tomita", "train_tomita"]

_CELLS = ("rnn", "lstm", "gru")


def _encode(strings: list[str], vocab: Any) -> Tensor:
    from torch.nn.utils.rnn import pad_sequence

    seqs = [torch.tensor(vocab.encode(list(s)), dtype=torch.long) for s in strings]
    return pad_sequence(seqs, batch_first=True, padding_value=vocab.pad_index)


def train_tomita(
    grammar: int,
    cell: str = "gru",
    *,
    hidden_size: int = 32,
    max_length: int = 15,
    n_train: int = 2000,
    max_epochs: int = 100,
    seed: int = 0,
) -> tuple[Any, float, float]:
    """Train a binary ``RNNClassifier`` on class-balanced strings of a Tomita language.

    Training stops a few epochs after the training set is classified perfectly (a
    margin for generalisation), or after ``max_epochs``.

    Args:
        grammar: the Tomita language, 1 to 7.
        cell: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        hidden_size: recurrent units.
        max_length: training strings have lengths ``1 .. max_length``.
        n_train: training strings.
        max_epochs: cap on epochs.
        seed: seeds data and initialisation (deterministic on CPU).

    Returns:
        ``(model in eval mode, test accuracy on 1000 fresh balanced strings of the
        training lengths, training seconds)``.

    Example:
        >>> model, accuracy, seconds = train_tomita(1, "gru", n_train=200, max_epochs=2)
        >>> model.training
        False
    """
    from captum_rnn.data import tomita, tomita_vocabulary
    from captum_rnn.models import RNNClassifier

    if grammar not in range(1, 8) or isinstance(grammar, bool):
        raise ValueError(f"grammar must be 1..7, got {grammar!r}")
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {_CELLS}, got {cell!r}")
    vocab = tomita_vocabulary()
    strings, labels = tomita(grammar, n_train, 1, max_length, seed=seed)
    x, y = _encode(strings, vocab), torch.tensor(labels)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = RNNClassifier(
        2, vocab_size=len(vocab), embedding_dim=4, hidden_size=hidden_size, cell=cell
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    start, perfect = time.perf_counter(), 0
    for _ in range(max_epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), 100):
            idx = order[i : i + 100]
            xb = x[idx][:, : int((x[idx] != vocab.pad_index).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            perfect = perfect + 1 if bool((model(x).argmax(1) == y).all()) else 0
        if perfect > 3:
            break
    seconds = time.perf_counter() - start
    test, test_labels = tomita(grammar, 1000, 1, max_length, seed=seed + 1)
    with torch.no_grad():
        accuracy = (model(_encode(test, vocab)).argmax(1) == torch.tensor(test_labels)).float()
    return model, float(accuracy.mean()), seconds


def run_tomita(
    grammar: int,
    cell: str = "gru",
    out: str | os.PathLike[str] | None = None,
    quick: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a network on a Tomita language, extract its automaton with L*, validate it.

    The network is trained on class-balanced strings of lengths 1-15; the automaton is
    extracted by L* whose equivalence queries explore the network's state space (Weiss
    et al. 2018); fidelity is measured on fresh class-balanced strings (balanced by
    the true language) of lengths 1-15 and 16-30. With ``out``, the state diagram is
    saved as ``tomita{grammar}_{cell}.png``, ``.dot`` and ``.json``.

    Args:
        grammar: the Tomita language, 1 to 7.
        cell: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        out: a folder for the diagrams (created if missing); None saves nothing.
        quick: a smaller network, fewer training strings and epochs, fewer held-out
            words (for demos and smoke runs; the network may be imperfect).
        seed: seeds training and extraction.

    Returns:
        A JSON-ready dict: ``grammar``, ``cell``, ``description``, ``accuracy``
        (network, test strings of lengths 1-15), ``train_seconds``, ``seconds``
        (extraction), ``queries``, ``states``, ``minimal_states`` (of the true
        language), ``exact`` (the automaton is the true language), ``converged``,
        ``fidelity`` and ``fidelity_longer`` (balanced agreement with the network on
        lengths 1-15 and 16-30), ``dfa_accuracy_longer`` and
        ``network_accuracy_longer`` (against the true language, 16-30),
        ``counterexamples`` (str, at most 5), ``files`` (paths saved), and ``dfa``
        (the automaton, as ``DFA.to_dict()``).

    Example:
        >>> row = run_tomita(1, "gru", quick=True)
        >>> row["states"] >= 1 and 0.0 <= row["fidelity"] <= 1.0
        True
    """
    model, accuracy, train_seconds = train_tomita(
        grammar,
        cell,
        hidden_size=16 if quick else 32,
        n_train=1000 if quick else 2000,
        max_epochs=30 if quick else 100,
        seed=seed,
    )
    return extract_tomita(model, grammar, cell, accuracy, train_seconds, out, quick, seed)


def extract_tomita(
    model: Any,
    grammar: int,
    cell: str,
    accuracy: float,
    train_seconds: float,
    out: str | os.PathLike[str] | None = None,
    quick: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """The extraction and validation half of :func:`run_tomita`, for a trained model.

    Args and returns as :func:`run_tomita`; ``accuracy`` and ``train_seconds`` are
    copied into the result.
    """
    from captum_rnn.data import TOMITA_DESCRIPTIONS, tomita_vocabulary
    from captum_rnn.rules._extract import extract_dfa
    from captum_rnn.rules._tomita_dfas import tomita_dfa

    truth = tomita_dfa(grammar)
    dfa = extract_dfa(
        model,
        "01",
        vocab=tomita_vocabulary(),
        max_length=15,
        longer_length=30,
        reference=truth,
        falsify=1000 if quick else 2000,
        time_limit=10.0,
        seed=seed,
    )
    report = dfa.report
    fid = report.fidelity
    files: list[str] = []
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"tomita{grammar}_{cell}"
        title = "\n".join(
            textwrap.wrap(f"Tomita {grammar} ({cell.upper()}): {TOMITA_DESCRIPTIONS[grammar]}", 70)
        )
        fig = dfa.plot(title=title)
        fig.savefig(f"{stem}.png", dpi=110)
        Path(f"{stem}.dot").write_text(dfa.to_dot(f"tomita{grammar}_{cell}"), encoding="utf-8")
        dfa.save(f"{stem}.json")
        files = [f"{stem}.png", f"{stem}.dot", f"{stem}.json"]
    return {
        "grammar": grammar,
        "cell": cell,
        "description": TOMITA_DESCRIPTIONS[grammar],
        "accuracy": accuracy,
        "train_seconds": train_seconds,
        "seconds": report.seconds,
        "queries": report.queries,
        "states": dfa.num_states,
        "minimal_states": truth.num_states,
        "exact": dfa.equivalent(truth) is None,
        "converged": report.converged,
        "fidelity": fid.in_range.fidelity,
        "fidelity_longer": fid.longer.fidelity,
        "dfa_accuracy_longer": fid.longer.dfa_accuracy,
        "network_accuracy_longer": fid.longer.network_accuracy,
        "counterexamples": [str(c) for c in report.counterexamples[:5]],
        "files": files,
        "dfa": dfa.to_dict(),
    }
