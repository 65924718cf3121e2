"""Global rule lists: a short ordered list of token / n-gram rules that mimics a model.

``if contains "not bad" then positive; else if contains "awful" or "dull" then negative;
...; else positive``. The list is fitted greedily (sequential covering): each new rule is
chosen among the n-grams of the examples no earlier rule captured, by the rise in
agreement with the model's labels it brings over sending them to the default class
(or, with ``criterion="precision"``, by a confidence bound on its precision); with
``max_terms > 1`` a rule then takes further n-grams ("contains any of") while each adds
agreement. The default is the majority label of what is left. Its fidelity is only meaningful on data
it was not fitted on: :func:`fit_rule_list` holds out a split, reports the rule list's
fidelity there beside the majority-class rule's, and the coverage of every rule.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_rnn._utils.files import atomic_write_text
from captum_rnn._utils.jsonio import load_json
from captum_rnn._utils.options import check_int
from captum_rnn.models.protocol import adapt_if_readable

__all__ = ["ListRule", "RuleList", "RuleListReport", "fit_rule_list"]

_FORMAT = "captum_rnn.RuleList"
_VERSION = 1


@dataclass(frozen=True)
class ListRule:
    """One rule of a :class:`RuleList`.

    Attributes:
        ngram: the tokens that must appear consecutively, or ``None`` for the default.
        label: the class predicted.
        label_name: its display name.
        precision: agreement with the model's labels on the examples this rule captures
            (reached in order: no earlier rule fired).
        coverage: fraction of all examples this rule captures.
        support: number of examples captured.
        alternatives: further n-grams; the rule fires when the sequence contains
            ``ngram`` or any of them (empty for a one-term rule).
    """

    ngram: tuple[str, ...] | None
    label: int
    label_name: str
    precision: float
    coverage: float
    support: int
    alternatives: tuple[tuple[str, ...], ...] = ()

    @property
    def ngrams(self) -> tuple[tuple[str, ...], ...]:
        """Every n-gram that fires the rule (empty for the default)."""
        return () if self.ngram is None else (self.ngram, *self.alternatives)

    def __str__(self) -> str:
        coverage = f"{self.coverage:.3f}" if 0 < self.coverage < 0.01 else f"{self.coverage:.2f}"
        stats = f"(precision {self.precision:.2f}, coverage {coverage})"
        if self.ngram is None:
            return f"else {self.label_name} {stats}"
        text = " or ".join(
            '"' + " ".join(g).replace("\\", "\\\\").replace('"', '\\"') + '"' for g in self.ngrams
        )
        return f"if contains {text} then {self.label_name} {stats}"


def _wilson_lower(hits: np.ndarray, n: np.ndarray, z: float = 1.96) -> np.ndarray:
    """Lower Wilson confidence bound of the precision ``hits / n`` (0 where ``n == 0``)."""
    n = np.maximum(n, 1).astype(np.float64)
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def _tokens_of(sequence: Any, position: int) -> list[str]:
    if isinstance(sequence, str):
        from captum_rnn.data import tokenize

        return tokenize(sequence)
    if isinstance(sequence, Tensor):
        sequence = sequence.tolist()
    if not isinstance(sequence, Sequence):
        raise TypeError(
            f"sequences[{position}] must be a str or a sequence of tokens, got "
            f"{type(sequence).__name__}"
        )
    return [str(t) for t in sequence]


def _ngrams(tokens: list[str], max_n: int) -> set[tuple[str, ...]]:
    return {
        tuple(tokens[i : i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)
    }


class RuleList:
    """An ordered list of "contains n-gram" rules with a default class.

    scikit-learn style: the constructor stores the settings, :meth:`fit` learns
    ``rules_`` (the default rule last).

    Args:
        max_rules: most rules before the default.
        max_ngram: longest n-gram a rule may test.
        min_support: fewest (remaining) training examples a rule must capture.
        class_names: display names of the classes.
        criterion: how the next rule is chosen among the n-grams of the examples no
            earlier rule captured. ``"gain"`` (default): the rule that moves the most
            of them from a wrong default to the right class, i.e. the greatest rise in
            training fidelity (it may pick broad, imprecise rules such as a frequent
            word); ``"precision"``: the highest lower confidence bound (Wilson, 95%)
            on its precision, which must beat the majority rate of those examples
            (sharper, more readable rules, usually lower fidelity).
        exclude: tokens no rule may contain (e.g. the unknown token, punctuation).
        max_terms: most n-grams one rule may test (it fires on any of them). With
            ``criterion="gain"`` a rule, once chosen, takes the n-gram that adds the
            most agreement among the examples it does not capture yet, while one adds
            some: ``if contains "awful" or "dull" or "worst" then negative``. Such
            rules fit lexical models (sentiment) far better than one n-gram each.

    Example:
        >>> texts = ["good film", "bad film", "good fun", "bad plot", "so bad", "good day"]
        >>> rl = RuleList(min_support=1).fit(texts, [1, 0, 1, 0, 0, 1])
        >>> rl.predict(["a good day", "a day"]).tolist()
        [1, 0]
    """

    def __init__(
        self,
        max_rules: int = 10,
        max_ngram: int = 2,
        min_support: int = 5,
        class_names: Sequence[str] | None = None,
        criterion: str = "gain",
        exclude: Sequence[str] = (),
        max_terms: int = 1,
    ) -> None:
        self.criterion = criterion
        self.max_terms = max_terms
        if isinstance(exclude, str):
            raise TypeError("exclude must be a list of tokens, not a single str")
        self.exclude = [str(t) for t in exclude]
        self.max_rules = max_rules
        self.max_ngram = max_ngram
        self.min_support = min_support
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        #: held-out validation, set by :func:`fit_rule_list`
        self.report: RuleListReport | None = None

    def _name(self, label: int) -> str:
        if self.class_names is not None and 0 <= label < len(self.class_names):
            return self.class_names[label]
        return f"class {label}"

    def _check(
        self, sequences: Any, labels: Any = None, n_classes: int | None = None
    ) -> tuple[list[list[str]], np.ndarray | None]:
        if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
            raise TypeError("sequences must be a list of texts or of token lists")
        tokens = [_tokens_of(s, i) for i, s in enumerate(sequences)]
        if labels is None:
            return tokens, None
        if isinstance(labels, Tensor):
            labels = labels.detach().cpu().numpy()
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != len(tokens):
            raise ValueError(f"labels has {y.shape[0]} entries for {len(tokens)} sequences")
        if y.size and (y.dtype.kind not in "iub" or y.min() < 0):
            raise ValueError("labels must be non-negative integer classes")
        if n_classes is not None and y.size and y.max() >= n_classes:
            raise ValueError(
                f"labels holds class {int(y.max())}, outside the classes [0, {n_classes}) "
                f"of this rule list (n_classes={n_classes}): were they given by another model?"
            )
        return tokens, y.astype(np.int64)

    def fit(self, sequences: Sequence[Any], labels: Any, n_classes: int | None = None) -> RuleList:
        """Fit the list to mimic ``labels`` (the model's predictions).

        Args:
            sequences: texts (split with ``captum_rnn.data.tokenize``) or token lists.
            labels: one class per sequence.
            n_classes: the model's number of classes (recorded, and checked when the list
                is loaded or scored); default: the largest label + 1, at least 2.

        Returns:
            ``self``.

        Raises:
            ValueError: for an empty set, mismatched labels, or labels outside
                ``[0, n_classes)``.
        """
        if n_classes is not None:
            n_classes = check_int("n_classes", n_classes, 2)
        for name, low in (("max_rules", 0), ("max_ngram", 1), ("min_support", 1), ("max_terms", 1)):
            check_int(name, getattr(self, name), low)
        if self.criterion not in ("precision", "gain"):
            raise ValueError(f"criterion must be 'precision' or 'gain', got {self.criterion!r}")
        if self.max_terms > 1 and self.criterion != "gain":
            raise ValueError(
                f"max_terms={self.max_terms} needs criterion='gain' (a rule grows while "
                "each n-gram adds agreement)"
            )
        tokens, y = self._check(sequences, labels, n_classes)
        if not tokens:
            raise ValueError("sequences is empty: a rule list needs examples to fit")
        assert y is not None
        # a model whose predictions on these examples are all one class still has two
        n_classes = max(2, int(y.max()) + 1) if n_classes is None else n_classes
        vocab: dict[tuple[str, ...], int] = {}
        ex_idx, ng_idx = [], []
        excluded = set(self.exclude)
        for i, toks in enumerate(tokens):
            for g in _ngrams(toks, self.max_ngram):
                if excluded and not excluded.isdisjoint(g):
                    continue
                ex_idx.append(i)
                ng_idx.append(vocab.setdefault(g, len(vocab)))
        ngrams = [None] * len(vocab)
        for g, j in vocab.items():
            ngrams[j] = g  # type: ignore[call-overload]
        ex = np.asarray(ex_idx, dtype=np.int64)
        ng = np.asarray(ng_idx, dtype=np.int64)
        remaining = np.ones(len(tokens), dtype=bool)
        chosen: list[tuple[tuple[tuple[str, ...], ...], int]] = []
        while len(chosen) < self.max_rules and remaining.any() and len(vocab):
            default = int(np.bincount(y[remaining], minlength=n_classes).argmax())
            live = remaining[ex]
            counts = np.bincount(
                ng[live] * n_classes + y[ex[live]], minlength=len(vocab) * n_classes
            ).reshape(len(vocab), n_classes)
            support = counts.sum(axis=1, keepdims=True)
            if self.criterion == "gain":
                score = (counts - counts[:, default : default + 1]).astype(np.float64)
                floor = 0.0
            else:
                score = _wilson_lower(counts, support)
                # a rule must beat sending its examples to the majority of what is left
                floor = float((y[remaining] == default).mean())
            score[support[:, 0] < self.min_support] = -np.inf
            best = np.unravel_index(int(score.argmax()), score.shape)
            if not score[best] > floor:
                break
            j, label = int(best[0]), int(best[1])
            captured = np.zeros(len(tokens), dtype=bool)
            captured[ex[ng == j]] = True
            captured &= remaining
            terms = [j]
            while len(terms) < self.max_terms:
                # the n-gram that moves the most of what the rule misses yet to its label
                free = remaining & ~captured
                live = free[ex]
                more = np.bincount(
                    ng[live] * n_classes + y[ex[live]], minlength=len(vocab) * n_classes
                ).reshape(len(vocab), n_classes)
                gain = (more[:, label] - more[:, default]).astype(np.float64)
                gain[more.sum(axis=1) < self.min_support] = -np.inf
                j = int(gain.argmax())
                if not gain[j] > 0:
                    break
                terms.append(j)
                captured[ex[ng == j]] = True
                captured &= remaining
            chosen.append((tuple(ngrams[t] for t in terms), label))  # type: ignore[misc]
            remaining &= ~captured
        default = (
            int(np.bincount(y[remaining], minlength=n_classes).argmax())
            if remaining.any()
            else int(np.bincount(y, minlength=n_classes).argmax())
        )
        self._rules = chosen
        self.default_ = default
        self.n_classes_ = n_classes
        self.rules_ = self._stats(tokens, y)
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "_rules"):
            raise RuntimeError("this RuleList is not fitted yet: call fit(sequences, labels)")

    def _apply_tokens(self, tokens: list[list[str]]) -> np.ndarray:
        fired = np.full(len(tokens), len(self._rules), dtype=np.int64)
        for i, toks in enumerate(tokens):
            grams = _ngrams(toks, self.max_ngram)
            for r, (terms, _) in enumerate(self._rules):
                if not grams.isdisjoint(terms):
                    fired[i] = r
                    break
        return fired

    def apply(self, sequences: Sequence[Any]) -> np.ndarray:
        """Index of the rule that fires for each sequence (``len(rules_) - 1``: default)."""
        self._fitted()
        tokens, _ = self._check(sequences)
        return self._apply_tokens(tokens)

    def predict(self, sequences: Sequence[Any]) -> np.ndarray:
        """The class the list predicts for each sequence."""
        fired = self.apply(sequences)
        labels = np.array([label for _, label in self._rules] + [self.default_], dtype=np.int64)
        return labels[fired]

    def score(self, sequences: Sequence[Any], labels: Any, balanced: bool = False) -> float:
        """Fidelity: agreement of :meth:`predict` with ``labels`` (the model's)."""
        from captum_rnn.rules._fidelity import fidelity

        self._fitted()
        _, y = self._check(sequences, labels, self.n_classes_)
        return fidelity(self.predict(sequences), y, balanced=balanced)

    def _stats(self, tokens: list[list[str]], y: np.ndarray) -> list[ListRule]:
        fired = self._apply_tokens(tokens)
        out = []
        for r, (terms, label) in enumerate([*self._rules, ((), self.default_)]):
            hit = fired == r
            support = int(hit.sum())
            precision = float((y[hit] == label).mean()) if support else 0.0
            out.append(
                ListRule(
                    ngram=terms[0] if terms else None,
                    label=label,
                    label_name=self._name(label),
                    precision=precision,
                    coverage=support / max(len(tokens), 1),
                    support=support,
                    alternatives=tuple(terms[1:]),
                )
            )
        return out

    def rule_stats(self, sequences: Sequence[Any], labels: Any) -> list[ListRule]:
        """The rules with precision and coverage measured on other data."""
        self._fitted()
        tokens, y = self._check(sequences, labels, self.n_classes_)
        return self._stats(tokens, y)  # type: ignore[arg-type]

    def __str__(self) -> str:
        if not hasattr(self, "rules_"):
            return "RuleList (not fitted)"
        return "\n".join(f"{i + 1}. {rule}" for i, rule in enumerate(self.rules_))

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the fitted list."""
        self._fitted()
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "settings": {
                "max_rules": self.max_rules,
                "max_ngram": self.max_ngram,
                "min_support": self.min_support,
                "class_names": self.class_names,
                "criterion": self.criterion,
                "exclude": self.exclude,
                "max_terms": self.max_terms,
            },
            "n_classes": self.n_classes_,
            "rules": [asdict(r) for r in self.rules_],
        }

    @classmethod
    def from_dict(cls, data: Any) -> RuleList:
        """Rebuild a fitted list from :meth:`to_dict` output.

        Raises:
            ValueError: if ``data`` is not a valid rule-list description.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a rule list: 'format' must be {_FORMAT!r}")
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported rule list version {data.get('version')!r}")
        try:
            rl = cls(**data["settings"])
            for r in data["rules"]:
                if isinstance(r["label"], bool) or not isinstance(r["label"], int):
                    raise ValueError(f"label must be an int class, got {r['label']!r}")
            rules = [
                ListRule(
                    ngram=None if r["ngram"] is None else tuple(str(t) for t in r["ngram"]),
                    label=r["label"],
                    label_name=str(r["label_name"]),
                    precision=float(r["precision"]),
                    coverage=float(r["coverage"]),
                    support=int(r["support"]),
                    alternatives=tuple(tuple(str(t) for t in g) for g in r.get("alternatives", ())),
                )
                for r in data["rules"]
            ]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid rule list data: {err}") from err
        if not rules or rules[-1].ngram is not None or rules[-1].alternatives:
            raise ValueError("invalid rule list data: the last rule must be the default")
        n_classes = data.get("n_classes", 2)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(
                f"invalid rule list data: n_classes must be an int >= 2, got {n_classes!r}"
            )
        bad = [r.label for r in rules if not 0 <= r.label < n_classes]
        if bad:
            raise ValueError(
                f"invalid rule list data: label {bad[0]} is outside the classes [0, {n_classes}) "
                f"of the list (n_classes={n_classes})"
            )
        if any(r.ngram is None for r in rules[:-1]):
            raise ValueError("invalid rule list data: only the last rule may be the default")
        rl._rules = [(r.ngrams, r.label) for r in rules[:-1]]
        rl.default_ = rules[-1].label
        rl.n_classes_ = n_classes
        rl.rules_ = rules
        return rl

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted list as UTF-8 JSON (atomically; never through a link)."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RuleList:
        """Read a list written by :meth:`save` (JSON; nothing is unpickled)."""
        return load_json(path, "rule list", cls.from_dict)


@dataclass
class RuleListReport:
    """Held-out validation of a rule list fitted to a model.

    Attributes:
        fidelity: agreement with the model on the held-out split.
        balanced_fidelity: the same, macro-averaged over the model's classes.
        majority_fidelity: held-out agreement of the rule "always the training
            majority class" (the baseline to beat).
        train_fidelity: agreement on the training split.
        n_train, n_held_out: split sizes.
        held_out_rules: the rules with precision and coverage on the held-out split.
    """

    fidelity: float
    balanced_fidelity: float
    majority_fidelity: float
    train_fidelity: float
    n_train: int
    n_held_out: int
    held_out_rules: list[ListRule]

    def __str__(self) -> str:
        return (
            f"held-out fidelity {self.fidelity:.3f} (balanced {self.balanced_fidelity:.3f}; "
            f"majority class {self.majority_fidelity:.3f}; train {self.train_fidelity:.3f}; "
            f"n={self.n_train}+{self.n_held_out})"
        )


def _predict_classes(
    forward_func: Callable[..., Tensor], ids: Tensor, batch_size: int
) -> tuple[np.ndarray, int]:
    """The model's class for each row of ``ids``, and its number of classes.

    Raises:
        ValueError: for scores of another shape, or NaN / infinite scores (argmax would
            read them as class 0), naming the first such sequence.
    """
    out = []
    with torch.no_grad():
        for i in range(0, ids.shape[0], batch_size):
            scores = forward_func(ids[i : i + batch_size])
            if not isinstance(scores, Tensor) or scores.dim() != 2 or scores.shape[1] < 2:
                raise ValueError(
                    "forward_func must return class scores of shape (batch, num_classes)"
                )
            finite = torch.isfinite(scores).all(dim=1)
            if not bool(finite.all()):
                row = i + int(torch.nonzero(~finite)[0])
                raise ValueError(
                    f"forward_func returned NaN or infinite scores for inputs[{row}] "
                    f"({int((~finite).sum())} of the {scores.shape[0]} sequences of its batch)"
                )
            out.append(scores.argmax(dim=1).cpu().numpy())
    return np.concatenate(out), int(scores.shape[1])


def fit_rule_list(
    forward_func: Callable[..., Tensor],
    inputs: Tensor | Sequence[str],
    vocab: Any = None,
    *,
    pad_index: int | None = None,
    held_out: float = 0.25,
    seed: int = 0,
    batch_size: int = 256,
    max_rules: int = 10,
    max_ngram: int = 2,
    min_support: int = 5,
    class_names: Sequence[str] | None = None,
    criterion: str = "gain",
    exclude: Sequence[str] | None = None,
    max_terms: int = 1,
    **hints: Any,
) -> RuleList:
    """Fit a rule list to a model's predictions and validate it on a held-out split.

    Args:
        forward_func: the model (any ``nn.Module`` over token ids, seen through the model
            contract: its layout, lengths argument and output kind; ids are given
            batch-first), or a function mapping token ids ``(batch, time)`` to class
            scores.
        inputs: token ids ``(n, time)`` padded with ``pad_index``, or texts (then
            ``vocab`` encodes them).
        vocab: a :class:`~captum_rnn.data.Vocabulary`: decodes ids into readable
            tokens, encodes texts.
        pad_index: the padding id (never part of a rule); default: the model's, else the
            vocabulary's; never assumed.
        held_out: fraction of the examples held out for validation.
        seed: seeds the split.
        batch_size: sequences per model call.
        max_rules, max_ngram, min_support, class_names, criterion, max_terms: see
            :class:`RuleList`.
        exclude: tokens no rule may contain; default: the vocabulary's unknown token
            (a rule on it reads "contains some rare word"), none without ``vocab``.
        hints: the model contract's hints (see :func:`captum_rnn.adapt`).

    Returns:
        The fitted :class:`RuleList`, with a :class:`RuleListReport` as ``.report``.

    Raises:
        ValueError: for empty inputs or a held-out fraction outside (0, 1).

    Example:
        >>> rl = fit_rule_list(model, ids, vocab=vocab, class_names=["neg", "pos"])  # doctest: +SKIP
        >>> print(rl.report)  # doctest: +SKIP
    """
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out!r}")
    if isinstance(inputs, Tensor):
        ids = inputs
        if ids.dim() != 2 or ids.dtype.is_floating_point:
            raise ValueError(f"inputs must be token ids of shape (n, time), got {tuple(ids.shape)}")
    else:
        if vocab is None:
            raise ValueError("texts need vocab= to be encoded into token ids")
        ids, _ = vocab.encode_batch(list(inputs))
    n = ids.shape[0]
    if n < 2:
        raise ValueError(f"inputs must hold at least 2 sequences (train and held out), got {n}")
    seq = adapt_if_readable(forward_func, **hints) if isinstance(forward_func, nn.Module) else None
    if pad_index is None:
        pad_index = seq.pad_id if seq is not None else getattr(vocab, "pad_index", None)
        if pad_index is None:
            raise ValueError(
                "cannot tell the padding id: pass pad_index= (or vocab=, or an nn.Module "
                "whose embedding has a padding_idx)"
            )
    if seq is not None:
        forward_func = lambda x: seq.probabilities(seq(x))  # noqa: E731
    device = next(
        (p.device for p in getattr(seq or forward_func, "parameters", list)()), ids.device
    )
    predicted, n_classes = _predict_classes(forward_func, ids.to(device), batch_size)
    itos = vocab.itos if vocab is not None else None
    sequences = []
    for row in ids.tolist():
        toks = [t for t in row if t != pad_index]
        sequences.append(
            [itos[t] if itos is not None and 0 <= t < len(itos) else str(t) for t in toks]
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    cut = min(n - 1, max(1, int(round(held_out * n))))
    test, train = order[:cut], order[cut:]
    if exclude is None:
        unk = getattr(vocab, "unk_token", None)
        exclude = [] if unk is None else [unk]
    rl = RuleList(max_rules, max_ngram, min_support, class_names, criterion, exclude, max_terms)
    rl.fit([sequences[i] for i in train], predicted[train], n_classes)
    test_seqs, test_y = [sequences[i] for i in test], predicted[test]
    majority = int(np.bincount(predicted[train]).argmax())
    rl.report = RuleListReport(
        fidelity=rl.score(test_seqs, test_y),
        balanced_fidelity=rl.score(test_seqs, test_y, balanced=True),
        majority_fidelity=float((test_y == majority).mean()),
        train_fidelity=rl.score([sequences[i] for i in train], predicted[train]),
        n_train=len(train),
        n_held_out=len(test),
        held_out_rules=rl.rule_stats(test_seqs, test_y),
    )
    return rl
