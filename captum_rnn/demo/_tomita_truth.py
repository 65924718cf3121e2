"""Attribution methods against the automaton ground truth of Tomita networks.

For a network trained on a Tomita language and its extracted automaton, score every
attribution method's AUPRC against the automaton's exact important positions
(:func:`captum_rnn.metrics.automaton_truth_set`), run
:func:`captum_rnn.benchmark` on the same words, and check that its recommendation is
within a tolerance of the best method's AUPRC. Shared by ``examples/tomita_automata.py``
and ``benchmarks/automaton_truth.py``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["score_tomita_attributions"]


def score_tomita_attributions(
    model: Any,
    grammar: int,
    dfa: Any,
    *,
    n_words: int = 40,
    min_length: int = 4,
    max_length: int = 12,
    kind: str = "relevant",
    tolerance: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """AUPRC of every method against ``dfa``'s ground truth, and the benchmark's pick.

    Args:
        model: the trained network (an ``RNNClassifier`` over ``tomita_vocabulary()``).
        grammar: its Tomita language (for sampling class-balanced held-out words).
        dfa: the automaton whose decision is the ground truth (the extracted one).
        n_words: held-out words scored.
        min_length, max_length: their lengths.
        kind: ``"relevant"`` or ``"flips"`` (see ``automaton_truth_set``).
        tolerance: how far (in AUPRC) the recommendation may fall below the best.
        seed: seeds the words, the methods and the benchmark.

    Returns:
        A dict: ``auprc`` (method -> mean AUPRC, ``"random"`` included), ``skipped``
        (method -> error), ``best`` and ``best_auprc``, ``recommended`` and
        ``recommended_auprc`` (``benchmark``'s pick and its AUPRC in the table),
        ``within`` (the pick is within ``tolerance`` of the best), ``agreement``
        (share of the words and of all their one-symbol substitutions on which the
        network decides like ``dfa``), ``reason`` (the benchmark's).
    """
    from captum_rnn.data import tomita, tomita_vocabulary
    from captum_rnn.metrics import automaton_auprc, automaton_truth_set, benchmark

    vocab = tomita_vocabulary()
    words, _ = tomita(grammar, n_words, min_length, max_length, seed=seed + 7)
    data = automaton_truth_set(dfa, words, vocab, kind=kind)
    skipped: dict[str, str] = {}
    scores = automaton_auprc(
        model,
        data,
        seed=seed,
        on_error=lambda name, error: skipped.__setitem__(name, f"{type(error).__name__}: {error}"),
        pad_id=vocab.pad_index,
    )
    result = benchmark(model, data, seed=seed, progress=False, pad_id=vocab.pad_index)
    methods = {m: v for m, v in scores.items() if m != "random"}
    best = max(methods, key=methods.get)
    picked = result.recommendation
    picked_auprc = methods.get(picked, float("nan")) if picked else float("nan")
    return {
        "grammar": grammar,
        "auprc": scores,
        "skipped": skipped,
        "best": best,
        "best_auprc": methods[best],
        "recommended": picked,
        "recommended_auprc": picked_auprc,
        "within": picked is not None and picked_auprc >= methods[best] - tolerance,
        "agreement": _agreement(model, dfa, words, vocab),
        "reason": result.reason,
        "benchmark": result,
    }


def _agreement(model: Any, dfa: Any, words: list[str], vocab: Any) -> float:
    """Share of ``words`` and their one-symbol substitutions the network decides as ``dfa``."""
    from torch.nn.utils.rnn import pad_sequence

    variants = []
    for word in words:
        variants.append(word)
        for i, symbol in enumerate(word):
            for other in dfa.alphabet:
                if other != symbol:
                    variants.append(word[:i] + other + word[i + 1 :])
    ids = [torch.tensor(vocab.encode(list(w))) for w in variants]
    x = pad_sequence(ids, batch_first=True, padding_value=vocab.pad_index)
    with torch.no_grad():
        predicted = model(x).argmax(-1).numpy().astype(bool)
    return float((predicted == dfa.accepts_batch(variants)).mean())
