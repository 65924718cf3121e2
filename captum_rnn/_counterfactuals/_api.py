"""``counterfactuals(model, inputs)``: one verified counterfactual per input sequence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_rnn._counterfactuals._result import Counterfactual
from captum_rnn._counterfactuals._series import SERIES_METHODS, SeriesSearch
from captum_rnn._counterfactuals._tokens import (
    TokenSearch,
    apply_edits,
    automaton_candidates,
    build,
)
from captum_rnn._explain import prepare_inputs
from captum_rnn._utils.grad import gradient_context
from captum_rnn._utils.options import check_int
from captum_rnn._utils.state import preserve_state
from captum_rnn.models.protocol import SequenceModel, adapt, pop_hints
from captum_rnn.rules import DFA, extract_dfa

__all__ = ["counterfactuals", "token_counterfactual"]

TOKEN_METHODS = ("auto", "automaton", "search")
_MAX_AUTOMATON_ALPHABET = 12


def _training_sequences(train_dataset: Any) -> list[Tensor]:
    """The sequences of a training set: a list of tensors, a dataset whose items are
    tensors or tuples starting with one, or an object with ``sequences``/``series``."""
    for name in ("sequences", "series"):
        if isinstance(getattr(train_dataset, name, None), list):
            return [torch.as_tensor(s) for s in getattr(train_dataset, name)]
    try:
        count = len(train_dataset)
    except TypeError:
        raise TypeError(
            "train_dataset must be a list of sequences or a dataset with len() and items "
            f"(sequence, label); got {type(train_dataset).__name__}"
        ) from None
    out = []
    for i in range(count):
        item = train_dataset[i]
        if isinstance(item, (tuple, list)) and item and isinstance(item[0], Tensor):
            item = item[0]
        out.append(torch.as_tensor(item))
    if not out:
        raise ValueError("train_dataset is empty")
    return out


def _resolve_target(target: Any, n: int) -> list[int | None]:
    if target is None or isinstance(target, int) and not isinstance(target, bool):
        return [target] * n
    values = target.tolist() if isinstance(target, Tensor) else list(target)
    if len(values) != n or not all(
        v is None or isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"target must be None, an int class or {n} ints (one per input)")
    return values


def _token_candidates(seq: SequenceModel, vocab: Any, train: list[Tensor] | None) -> list[int]:
    if vocab is not None and not hasattr(vocab, "encode"):
        ids = sorted({int(v) for v in vocab})
    else:
        ids = list(range(seq.vocab_size or 0))
    if train is not None:
        seen = set(torch.cat([t.flatten() for t in train]).tolist())
        ids = [i for i in ids if i in seen]
    ids = [i for i in ids if i != seq.pad_id and 0 <= i < (seq.vocab_size or 0)]
    if not ids:
        raise ValueError("no replacement tokens: vocab= / train_dataset= leave no token ids")
    return ids


def _automaton(
    seq: SequenceModel, model: nn.Module, alphabet: list[int], dfa: Any, hints: dict
) -> DFA | None:
    if isinstance(dfa, DFA):
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in dfa.alphabet):
            raise ValueError(
                "dfa= must be an automaton over the model's token ids (its alphabet holds "
                f"{list(dfa.alphabet)[:5]!r}); extract it with extract_dfa(model, {{id: id}})"
            )
        return dfa
    if dfa is False or dfa is None and len(alphabet) > _MAX_AUTOMATON_ALPHABET:
        return None
    if seq.num_classes != 2:
        return None
    try:
        return extract_dfa(model, {a: a for a in alphabet}, time_limit=5.0, falsify=500, **hints)
    except (ValueError, TypeError):
        return None


def _automaton_hits(
    search: TokenSearch, automaton: DFA, ids: list[int], base: int, max_edits: int | None
) -> tuple[tuple | None, int | None]:
    """Verified automaton candidates: ``(hit, the automaton's edit count)``."""
    index = {s: i for i, s in enumerate(automaton.alphabet)}
    if any(t not in index for t in ids) or search.target not in (None, 0, 1) or base > 1:
        return None, None
    goal_class = (1 - base) if search.target is None else search.target
    goal = np.zeros(automaton.num_states, dtype=bool)
    for q in automaton.states:
        goal[q] = (q in automaton.accepting) == bool(goal_class)
    table = np.array(automaton.transitions, dtype=np.int64)
    symbols = [int(s) for s in automaton.alphabet]
    word = [index[t] for t in ids]
    allowed = np.isin(symbols, search.candidates)
    cost, lists = automaton_candidates(
        table, automaton.start, goal, word, symbols, search.ops, limit=search.batch_size,
        max_cost=max_edits, allowed=allowed,
    )  # fmt: skip
    if cost is None or not lists:
        return None, cost
    seqs = [apply_edits(ids, e) for e in lists]
    probs = search.probabilities(seqs)
    strength = search.reached(probs, base)
    j = int(strength.argmax())
    if strength[j] == -float("inf"):
        return None, cost
    return (seqs[j], lists[j], int(probs[j].argmax())), cost


def counterfactuals(
    model: nn.Module,
    inputs: Any,
    *,
    target: int | Sequence[int | None] | None = None,
    vocab: Any = None,
    train_dataset: Any = None,
    max_edits: int | None = None,
    method: str = "auto",
    lengths: Any = None,
    dfa: DFA | bool | None = None,
    edits: str = "substitute",
    neighbours: int = 5,
    budget: int = 20000,
    batch_size: int = 1024,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    **hints: Any,
) -> list[Counterfactual]:
    """The smallest change to each input that changes the model's class, verified.

    Token models: the fewest token edits (substitutions; with ``edits="edit"`` also
    insertions and deletions). With an automaton of the network (``dfa=``, or extracted
    with :func:`~captum_rnn.rules.extract_dfa` for a binary classifier over at most 12
    replacement tokens), a dynamic programme over the automaton's states gives the fewest
    edits to a state of the other class and every word reached with them; otherwise (and
    when none of those flips the network) a breadth-first search over 1, 2, ... edits,
    ranked by the gradient (Captum's ``Saliency``). A result is ``minimal=True`` when all
    smaller edit sets were run on the network without a flip.

    Series models: values of the nearest unlike training neighbour spliced in (see
    ``method``); every changed value lies inside the training range of its feature.

    Every counterfactual is run on the model: ``flipped`` says what the model answered.
    Predictions are of each sequence alone, without padding.

    Args:
        model: any sequence classifier (seen through :func:`captum_rnn.adapt`).
        inputs: token ids ``(batch, time)``/``(time,)`` or series
            ``(batch, time, features)``/``(time, features)`` in the model's own layout,
            padded with its pad id (or with ``lengths``); strings with a ``vocab``.
        target: the class to reach (one int, or one per input); ``None``: any other class.
        vocab: a :class:`~captum_rnn.data.Vocabulary` (strings in, tokens shown), or the
            replacement token ids.
        train_dataset: training sequences (a list, or a dataset of ``(sequence, label)``).
            Tokens: replacements are restricted to tokens seen in it. Series: required;
            the unlike neighbours come from it and its range bounds every value.
        max_edits: tokens: most edits searched (default: as many as ``budget`` allows).
        method: tokens: ``"auto"``, ``"automaton"`` or ``"search"``; series:
            ``"auto"``/``"native_guide"``, ``"comte"`` or ``"window"``.
        lengths: true lengths ``(batch,)`` for padded series.
        dfa: an automaton of the network over its token ids (accepting = class 1), e.g.
            from :func:`~captum_rnn.rules.extract_dfa` with the alphabet ``{id: id}``;
            edits write only replacement tokens (see ``vocab``/``train_dataset``).
            ``False`` never extracts one.
        edits: tokens: ``"substitute"`` or ``"edit"``.
        neighbours: series: unlike neighbours tried, nearest first.
        budget: most candidate sequences run on the model per input.
        batch_size: most sequences per forward.
        feature_names: series: names shown in plots and HTML.
        class_names: one name per class, shown in the counterfactuals' titles and HTML.
        hints: the model contract's hints (``pad_id``, ``batch_first``, ...).

    Returns:
        One :class:`Counterfactual` per input.

    Raises:
        ValueError/TypeError: naming the argument that does not fit.

    Example:
        >>> cfs = counterfactuals(model, ids, train_dataset=train)  # doctest: +SKIP
        >>> cfs[0].edits, cfs[0].flipped, cfs[0].minimal  # doctest: +SKIP
        ([(3, 5, 7)], True, True)
    """
    unknown = dict(hints)
    hints = pop_hints(unknown)
    if unknown:
        raise TypeError(f"counterfactuals() got unknown keyword arguments {sorted(unknown)}")
    seq = adapt(model, **hints)
    budget = check_int("budget", budget, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if max_edits is not None:
        max_edits = check_int("max_edits", max_edits, 1)
    if edits not in ("substitute", "edit"):
        raise ValueError(f"edits must be 'substitute' or 'edit', got {edits!r}")
    string_vocab = vocab if hasattr(vocab, "encode") else None
    with preserve_state(seq.module), gradient_context(seq.module):
        batch, lengths, real = prepare_inputs(seq, inputs, lengths, string_vocab)
        first = seq(batch[:1], lengths[:1])
        seq.observe(first)
        if not seq.is_classifier:
            raise ValueError("counterfactuals need a classifier; pass output='logits' if it is one")
        targets = _resolve_target(target, batch.shape[0])
        train = None if train_dataset is None else _training_sequences(train_dataset)
        if seq.is_token_model:
            if method not in TOKEN_METHODS:
                raise ValueError(
                    f"method must be one of {TOKEN_METHODS} for tokens, got {method!r}"
                )
            found = _tokens(
                seq, model, batch, real, targets, vocab, train, max_edits, method, dfa,
                edits, budget, batch_size, hints,
            )  # fmt: skip
            return _named(found, class_names, seq.num_classes)
        if method == "auto":
            method = "native_guide"
        if method not in SERIES_METHODS:
            raise ValueError(
                f"method must be one of {('auto', *SERIES_METHODS)} for series, got {method!r}"
            )
        if train is None:
            raise ValueError("series counterfactuals need train_dataset= (the training series)")
        check_int("neighbours", neighbours, 1)
        searches: dict[int | None, SeriesSearch] = {}
        names = list(feature_names) if feature_names is not None else None
        out = []
        for i in range(batch.shape[0]):
            if targets[i] not in searches:
                searches[targets[i]] = SeriesSearch(
                    seq, train, target=targets[i], method=method, neighbours=neighbours,
                    budget=budget, batch_size=batch_size,
                )  # fmt: skip
            x = batch[i, : int(lengths[i])].detach().float().cpu()
            out.append(searches[targets[i]].run(x, names))
        return _named(out, class_names, seq.num_classes)


def _named(
    found: list[Counterfactual], class_names: Sequence[str] | None, num_classes: int | None
) -> list[Counterfactual]:
    """The counterfactuals with ``class_names`` set (checked against the classes)."""
    if class_names is None:
        return found
    names = list(class_names)
    if not all(isinstance(n, str) for n in names) or (
        num_classes is not None and len(names) != num_classes
    ):
        raise ValueError(
            f"class_names must be {num_classes} strings, one per class, got {class_names!r}"
        )
    for cf in found:
        cf.class_names = names
    return found


def _tokens(
    seq, model, batch, real, targets, vocab, train, max_edits, method, dfa, ops, budget,
    batch_size, hints,
) -> list[Counterfactual]:  # fmt: skip
    candidates = _token_candidates(seq, vocab, train)
    names = (lambda ids: list(vocab.decode(ids))) if hasattr(vocab, "decode") else None
    automaton = None
    if method in ("auto", "automaton"):
        automaton = _automaton(seq, model, candidates, dfa, hints)
        if method == "automaton" and automaton is None:
            raise ValueError(
                "method='automaton' needs dfa= or a binary classifier over at most "
                f"{_MAX_AUTOMATON_ALPHABET} replacement tokens"
            )
    out = []
    for i in range(batch.shape[0]):
        ids = batch[i][real[i]].tolist()
        search = TokenSearch(
            seq, candidates, target=targets[i], ops=ops, budget=budget, batch_size=batch_size
        )
        base = int(search.probabilities([ids])[0].argmax())
        if targets[i] is not None and targets[i] == base:
            out.append(build(search, ids, base, None, None, "search", names))
            continue
        limit = max_edits if max_edits is not None else len(ids) + (ops == "edit")
        ranking = search.ranking(ids, base)
        hit, how, minimal = None, "search", None
        if automaton is not None:
            hit, cost = _automaton_hits(search, automaton, ids, base, max_edits)
            if hit is not None:
                how = "automaton"
                size = len(hit[1])
                if size == 1:
                    minimal = True
                else:
                    smaller, minimal = search.prove(ids, base, size, ranking)
                    if smaller is not None:
                        hit, how, minimal = smaller, "search", True
        if hit is None:
            hit, exhaustive = search.search(ids, base, limit, ranking)
            minimal = True if hit is not None and exhaustive else None
        out.append(build(search, ids, base, hit, minimal, how, names))
    return out


def token_counterfactual(
    model: nn.Module, ids: Tensor, *, vocab: list[int] | None = None, max_edits: int = 2
) -> Counterfactual:
    """Fewest substitutions of ``ids`` (1-D, unpadded) that change the predicted class
    (breadth-first search; :func:`counterfactuals` for batches, automata and series).

    Args:
        model: a token classifier (seen through the model contract).
        ids: token ids ``(T,)``.
        vocab: candidate replacement ids; default all ids but the pad id.
        max_edits: largest edit count searched.

    Returns:
        Counterfactual, ``flipped`` verified by running the model.

    Example:
        >>> cf = token_counterfactual(model, torch.tensor([1, 2, 1]))  # doctest: +SKIP
    """
    return counterfactuals(model, ids, vocab=vocab, max_edits=max_edits, method="search")[0]
