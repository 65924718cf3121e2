"""Membership oracles: "does the network accept this word?", answered in batches and cached.

Words are tuples of symbol indices (positions in the alphabet). Three kinds of model:

* a package :class:`~captum_rnn.models.RNNClassifier` that reads its input left to
  right and classifies its last state (unidirectional, ``pooling="last"``): white-box.
  Its recurrent state is stepped one symbol at a time for whole batches of words, and
  the state after every prefix is kept in a trie, so a word that extends a known one
  costs one batched step. The states are what the abstraction-refinement equivalence
  oracle of Weiss et al. (2018) explores.
* any other ``nn.Module`` over token ids returning two class scores: one padded
  forward per batch of words (black-box).
* any callable that scores a list of words: called once per batch (black-box). When it
  scores every prefix of every word (``prefix_scores=True``: one forward of a recurrent
  network gives that), a batch answers all the prefixes of its words as well.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_rnn._utils.options import check_int
from captum_rnn.models.protocol import SequenceModel, adapt

__all__ = ["MembershipOracle", "evaluation_mode", "make_oracle", "resolve_alphabet"]

Indices = tuple[int, ...]


@contextlib.contextmanager
def evaluation_mode(model: Any) -> Iterator[None]:
    """Eval mode and no autograd for the block; the model's modes are restored after."""
    if not isinstance(model, nn.Module):
        with torch.no_grad():
            yield
        return
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes.items():
            m.training = mode


class MembershipOracle:
    """Base class: labels words (tuples of symbol indices), caching every answer.

    Attributes:
        alphabet: the symbols, in index order.
        queries: distinct non-empty words the network has classified.
        calls: batched calls made to the network.
        empty_label: the label used for the empty word.
    """

    has_states = False
    #: answering a word also labels all its prefixes at no extra cost
    prefix_free = False

    def __init__(self, alphabet: Sequence[Any], empty_label: bool) -> None:
        self.alphabet = tuple(alphabet)
        self.k = len(self.alphabet)
        self.empty_label = bool(empty_label)
        self.queries = 0
        self.calls = 0
        self._cache: dict[Indices, bool] = {(): self.empty_label}

    def labels(self, words: Sequence[Indices]) -> np.ndarray:
        """Accept (True) / reject for each word, querying the network for new ones."""
        cache = self._cache
        missing = list(dict.fromkeys(w for w in words if w not in cache))
        if missing:
            answers = self._score(missing)
            self.queries += len(missing)
            for w, y in zip(missing, answers, strict=True):
                cache[w] = bool(y)
        return np.fromiter((cache[w] for w in words), dtype=bool, count=len(words))

    def answered(self) -> tuple[list[Indices], np.ndarray]:
        """Every word answered so far (the empty word and, in prefix mode, every prefix
        included) and its label: a free test of any hypothesis."""
        cache = self._cache
        return list(cache), np.fromiter(cache.values(), dtype=bool, count=len(cache))

    def _score(self, words: list[Indices]) -> np.ndarray:
        raise NotImplementedError

    def prefix_labels(self, words: Sequence[Indices]) -> np.ndarray:
        """``(n, T)`` labels of every prefix: entry ``[i, t]`` for ``words[i][: t + 1]``
        (False past a word's end). Meant for oracles with :attr:`prefix_free`."""
        width = max((len(w) for w in words), default=0)
        prefixes = list(dict.fromkeys(w[:t] for w in words for t in range(1, len(w) + 1)))
        answer = dict(zip(prefixes, self.labels(prefixes).tolist(), strict=True))
        out = np.zeros((len(words), width), dtype=bool)
        for i, w in enumerate(words):
            out[i, : len(w)] = [answer[w[:t]] for t in range(1, len(w) + 1)]
        return out

    @property
    def steps(self) -> int | None:
        """Recurrent steps computed (white-box only)."""
        return None


def describe_word(alphabet: Sequence[Any], word: Indices) -> str:
    """``"the word '0101'"`` (symbols joined when each is one character), for messages."""
    if not word:
        return "the empty word"
    symbols = [alphabet[a] for a in word]
    if all(isinstance(s, str) and len(s) == 1 for s in symbols):
        return f"the word {''.join(symbols)!r}"
    return f"the word {tuple(symbols)!r}"


def _refuse_non_finite(
    scores: np.ndarray, valid: np.ndarray, name: str, describe: Callable[[int], str]
) -> None:
    """Raise a ValueError naming the first word whose scores (where ``valid``, a mask
    over the first axes of ``scores``) are NaN or infinite: read as reject, such a
    word would turn into a reject-all automaton without a word said."""
    if scores.dtype.kind not in "fc":
        return
    finite = np.isfinite(scores)
    if finite.ndim > valid.ndim:
        finite = finite.reshape(*valid.shape, -1).all(axis=-1)
    bad = valid & ~finite
    if not bad.any():
        return
    where = np.argwhere(bad)
    first = tuple(int(i) for i in where[0])
    value = scores[first]
    kind = "NaN" if np.isnan(value).any() else "an infinite score"
    rows = int(bad.reshape(bad.shape[0], -1).any(axis=1).sum())
    raise ValueError(
        f"{name} returned {kind} for {describe(*first)} ({rows} of {bad.shape[0]} words "
        "in the batch had NaN or infinite scores); a word cannot be accepted or rejected "
        "on such a score"
    )


def _binary_from_scores(
    scores: Any, n: int, name: str, describe: Callable[[int], str] | None = None
) -> np.ndarray:
    """Turn a model's scores for ``n`` words into accept/reject.

    Args:
        scores: ``(n,)`` acceptance probabilities/labels or ``(n, 2)`` class scores.
        n: the number of words.
        name: how messages call the model.
        describe: names word ``i`` in messages.

    Returns:
        A bool array ``(n,)``.

    Raises:
        ValueError: for NaN or infinite scores (naming the word), or a wrong shape.
    """
    if isinstance(scores, Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores)
    if scores.dtype == object:  # e.g. a list holding None or 0-d tensors
        try:
            scores = scores.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} returned scores that are not numbers: {scores.reshape(-1)[:3]!r}"
            ) from None
    if scores.ndim >= 1 and scores.shape[0] == n:
        _refuse_non_finite(
            scores, np.ones(n, dtype=bool), name, describe or (lambda i: f"word {i}")
        )
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1 and scores.shape[0] == n:
        if scores.dtype == bool:
            return scores
        return scores.astype(np.float64) > 0.5
    if scores.ndim == 2 and scores.shape[0] == n:
        if scores.shape[1] != 2:
            raise ValueError(
                f"{name} must be a binary classifier: it returned {scores.shape[1]} class "
                "scores per sequence, expected 2"
            )
        return scores.argmax(axis=1) == 1
    raise ValueError(
        f"{name} returned scores of shape {scores.shape} for {n} sequences; expected "
        f"({n},) acceptance probabilities or ({n}, 2) class scores"
    )


def _binary_from_prefix_scores(
    scores: Any, lengths: list[int], describe: Callable[[int, int], str] | None = None
) -> list[np.ndarray]:
    """Turn a model's per-prefix scores ``(n, T)`` / ``(n, T, 2)`` into accept/reject rows.

    ``describe(i, t)`` names the prefix of ``t + 1`` symbols of word ``i`` in messages;
    NaN or infinite scores of a prefix (never those past a word's end) are refused.
    """
    if isinstance(scores, Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores)
    n, longest = len(lengths), max(lengths)
    if scores.ndim in (2, 3) and scores.shape[0] == n and scores.shape[1] >= longest:
        valid = np.arange(scores.shape[1])[None, :] < np.asarray(lengths)[:, None]
        _refuse_non_finite(
            scores, valid, "the model", describe or (lambda i, t: f"prefix {t + 1} of word {i}")
        )
    if scores.ndim == 3 and scores.shape[2] == 2:
        scores = scores.argmax(axis=2) == 1
    elif scores.ndim == 3 and scores.shape[2] == 1:
        scores = scores[:, :, 0]
    if scores.ndim != 2 or scores.shape[0] != n or scores.shape[1] < longest:
        raise ValueError(
            f"with prefix_scores=True the model must return, for {n} sequences of up to "
            f"{longest} symbols, ({n}, {longest}) acceptance probabilities of every prefix "
            f"or ({n}, {longest}, 2) class scores; it returned shape {scores.shape}"
        )
    accept = scores if scores.dtype == bool else scores.astype(np.float64) > 0.5
    return [accept[i, :length] for i, length in enumerate(lengths)]


def _cover(covered: set[Indices], word: Indices) -> None:
    """Add the proper prefixes of ``word`` to a prefix-closed set."""
    for t in range(len(word) - 1, 0, -1):
        p = word[:t]
        if p in covered:
            break
        covered.add(p)


class CallableOracle(MembershipOracle):
    """Black-box: ``fn(words)`` scores a list of words (str for one-character symbols).

    With ``prefix_scores=True``, ``fn`` returns the score of every prefix of every word
    (``(n, T)`` or ``(n, T, 2)``, column ``t`` for the first ``t + 1`` symbols), as a
    recurrent network does in one forward: a batch of words then answers every prefix
    too, and a word that is a prefix of another one asked with it is not sent.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Any],
        alphabet: Sequence[Any],
        empty: bool | str,
        batch_size: int,
        prefix_scores: bool = False,
    ) -> None:
        self.fn = fn
        self.batch_size = batch_size
        self.prefix_free = bool(prefix_scores)
        self._symbols = tuple(alphabet)
        chars = all(isinstance(s, str) and len(s) == 1 for s in alphabet)
        self._format = (
            (lambda w: "".join(alphabet[a] for a in w))
            if chars
            else (lambda w: tuple(alphabet[a] for a in w))
        )
        if chars and len(alphabet) <= 256 and all(ord(s) < 128 for s in alphabet):
            # ASCII symbols: one C-level translation per word instead of a join
            table = bytes(range(256)).maketrans(
                bytes(range(len(alphabet))), "".join(alphabet).encode("ascii")
            )
            self._format = lambda w: bytes(w).translate(table).decode("ascii")
        if empty == "network":
            if self.prefix_free:
                raise ValueError(
                    "empty='network' cannot be asked with prefix_scores=True (a prefix score "
                    "has at least one symbol): pass empty=True, empty=False or empty='auto'"
                )
            self.calls = 0
            label = bool(self._call([()])[0])
        else:
            label = bool(empty) if isinstance(empty, bool) else False
        super().__init__(alphabet, label)

    def _call(self, words: list[Indices]) -> np.ndarray:
        out = []
        for i in range(0, len(words), self.batch_size):
            chunk = words[i : i + self.batch_size]
            scores = self.fn([self._format(w) for w in chunk])
            self.calls += 1
            out.append(
                _binary_from_scores(
                    scores,
                    len(chunk),
                    "the model",
                    lambda j, c=chunk: describe_word(self._symbols, c[j]),
                )
            )
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)

    def _score(self, words: list[Indices]) -> np.ndarray:
        return self._call(words)

    def labels(self, words: Sequence[Indices]) -> np.ndarray:
        if not self.prefix_free:
            return super().labels(words)
        cache = self._cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            # longest first: a word that is a prefix of one already asked comes free
            missing.sort(key=len, reverse=True)
            covered: set[Indices] = set()
            asked = []
            for w in missing:
                if w in covered:
                    continue
                asked.append(w)
                _cover(covered, w)
            self._ask_prefixes(asked)
        return np.fromiter((cache[w] for w in words), dtype=bool, count=len(words))

    def _ask_prefixes(self, words: list[Indices]) -> list[np.ndarray]:
        """Ask the network for ``words`` (prefix mode); cache every prefix; the rows."""
        cache, out = self._cache, []
        for i in range(0, len(words), self.batch_size):
            chunk = words[i : i + self.batch_size]
            scores = self.fn([self._format(w) for w in chunk])
            self.calls += 1
            rows = _binary_from_prefix_scores(
                scores,
                [len(w) for w in chunk],
                lambda j, t, c=chunk: describe_word(self._symbols, c[j][: t + 1]),
            )
            for w, row in zip(chunk, rows, strict=True):
                labels = row.tolist()
                # longest first: once a prefix is cached, so are all shorter ones
                for t in range(len(w), 0, -1):
                    p = w[:t]
                    if p in cache:
                        break
                    cache[p] = labels[t - 1]
                    self.queries += 1
            out.extend(rows)
        return out

    def prefix_labels(self, words: Sequence[Indices]) -> np.ndarray:
        if not self.prefix_free:
            return super().prefix_labels(words)
        # a cached word has all its prefixes cached; the others are asked in one go
        cache = self._cache
        width = max((len(w) for w in words), default=0)
        out = np.zeros((len(words), width), dtype=bool)
        todo: dict[Indices, list[int]] = {}
        for i, w in enumerate(words):
            if w in cache:
                out[i, : len(w)] = [cache[w[:t]] for t in range(1, len(w) + 1)]
            else:
                todo.setdefault(w, []).append(i)
        if todo:
            # longest first; a word that is a prefix of one asked is read from the cache
            asked, covered, later = [], set(), []
            for w in sorted(todo, key=len, reverse=True):
                if w in covered:
                    later.append(w)
                    continue
                asked.append(w)
                _cover(covered, w)
            for w, row in zip(asked, self._ask_prefixes(asked), strict=True):
                out[todo[w], : len(w)] = row
            for w in later:
                out[todo[w], : len(w)] = [cache[w[:t]] for t in range(1, len(w) + 1)]
        return out


class TokenModelOracle(MembershipOracle):
    """Black-box over a token model seen through the model contract (any layout, lengths
    or mask argument, logits / probabilities / one logit): accept = P(class 1) > 0.5."""

    def __init__(
        self,
        model: SequenceModel,
        alphabet: Sequence[Any],
        token_ids: Sequence[int],
        empty: bool | str,
        batch_size: int,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.pad = model.pad_id
        self.device = _device_of(model)
        self._ids_cpu = torch.tensor(list(token_ids), dtype=torch.long)
        if empty == "network":
            raise ValueError(
                "empty='network' needs a model that can read the empty sequence; this model "
                "cannot: pass empty=True, empty=False or empty='auto'"
            )
        super().__init__(alphabet, bool(empty) if isinstance(empty, bool) else False)
        # one probe forward checks that the model is a binary classifier
        self._score([(0,)])
        if model.ignores_trailing_padding is None:  # a two-symbol word, padded by 3
            word = self._ids_cpu[[0, len(self._ids_cpu) - 1]][None, :]
            padded = torch.cat([word, torch.full((1, 3), self.pad, dtype=torch.long)], dim=1)
            model.check_trailing_padding(
                padded.to(self.device), torch.tensor([2], device=self.device), 2
            )

    def _chunks(self, words: list[Indices]) -> Iterator[list[int]]:
        """Indices of ``words`` in batches of at most ``batch_size``, shortest first; words
        of one length per batch for a model that reads trailing padding (it would answer
        a word differently beside longer ones than alone)."""
        order = sorted(range(len(words)), key=lambda i: len(words[i]))
        i = 0
        while i < len(order):
            chunk = order[i : i + self.batch_size]
            if not self.model.ignores_trailing_padding:
                chunk = [j for j in chunk if len(words[j]) == len(words[chunk[0]])]
            yield chunk
            i += len(chunk)

    def _score(self, words: list[Indices]) -> np.ndarray:
        out = np.zeros(len(words), dtype=bool)
        for chunk in self._chunks(words):
            width = max(len(words[j]) for j in chunk)
            x = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, j in enumerate(chunk):
                x[row, : len(words[j])] = torch.tensor(words[j], dtype=torch.long)
            x = self._ids_cpu[x]
            x[_pad_mask(chunk, words, width)] = self.pad
            scores = self.model(x.to(self.device))
            self.calls += 1
            _refuse_non_finite(
                scores.detach().float().cpu().numpy(),
                np.ones(len(chunk), dtype=bool),
                "the model",
                lambda row, c=chunk: describe_word(self.alphabet, words[c[row]]),
            )
            self.model.observe(scores)
            if scores.shape[-1] != 1 and self.model.num_classes != 2:
                raise ValueError(
                    f"model must be a binary classifier: it returned {scores.shape[-1]} class "
                    "scores per sequence, expected 2"
                )
            out[chunk] = _binary_from_scores(
                self.model.probabilities(scores),
                len(chunk),
                "the model",
                lambda row, c=chunk: describe_word(self.alphabet, words[c[row]]),
            )
        return out


def _pad_mask(chunk: list[int], words: list[Indices], width: int) -> Tensor:
    lengths = torch.tensor([len(words[j]) for j in chunk])
    return torch.arange(width)[None, :] >= lengths[:, None]


class RecurrentOracle(MembershipOracle):
    """White-box oracle over a unidirectional package RNN that classifies its last state.

    Every prefix's recurrent state is stored once (a trie of words, one row of
    ``H`` per node); new words are completed with one batched recurrent step per
    missing symbol position.
    """

    has_states = True
    prefix_free = True

    def __init__(
        self,
        model: nn.Module,
        alphabet: Sequence[Any],
        token_ids: Sequence[int],
        empty: bool | str,
        batch_size: int,
    ) -> None:
        self.model = model
        self.rnn = model.rnn
        self.device = _device_of(model)
        ids = torch.tensor(list(token_ids), dtype=torch.long, device=self.device)
        self.inputs = model.embedding(ids)  # (k, embedding_dim)
        self.layers = self.rnn.num_layers
        self.hidden = self.rnn.hidden_size
        self.lstm = isinstance(self.rnn, nn.LSTM)
        self.dim = self.layers * self.hidden * (2 if self.lstm else 1)
        self._edges: dict[int, int] = {}  # node * k + symbol -> child node
        self._H = torch.zeros(1024, self.dim, device=self.device, dtype=self.inputs.dtype)
        self._lab = np.zeros(1024, dtype=bool)
        self._n = 1
        root_label = bool(self._labels_of(self._H[:1], lambda _: "the empty word")[0])
        self.network_empty_label = root_label
        label = root_label if empty in ("network", "auto") else bool(empty)
        super().__init__(alphabet, label)
        self._lab[0] = label
        self._asked: set[int] = set()

    # -------------------------------------------------------------- network steps
    def _labels_of(self, states: Tensor, describe: Callable[[int], str]) -> np.ndarray:
        h = states[:, : self.layers * self.hidden].reshape(-1, self.layers, self.hidden)[:, -1]
        logits = self.model.head(self.model.representation(h))
        # argmax reads a NaN row as class 0: every word would be rejected without a word said
        _refuse_non_finite(
            logits.detach().float().cpu().numpy(),
            np.ones(logits.shape[0], dtype=bool),
            "the model",
            describe,
        )
        return (logits.argmax(dim=1) == 1).cpu().numpy()

    def step(self, states: Tensor, symbols: Tensor) -> Tensor:
        """Advance flat states ``(B, dim)`` by one symbol index each ``(B,)``."""
        b = states.shape[0]
        x = self.inputs[symbols.to(self.device)][:, None, :]
        flat = states.to(self.device)
        size = self.layers * self.hidden
        h = flat[:, :size].reshape(b, self.layers, self.hidden).transpose(0, 1).contiguous()
        if self.lstm:
            c = flat[:, size:].reshape(b, self.layers, self.hidden).transpose(0, 1).contiguous()
            _, (h, c) = self.rnn(x, (h, c))
            parts = [h.transpose(0, 1).reshape(b, size), c.transpose(0, 1).reshape(b, size)]
            return torch.cat(parts, dim=1)
        _, h = self.rnn(x, h)
        return h.transpose(0, 1).reshape(b, size)

    def state_labels(self, states: Tensor) -> np.ndarray:
        """The network's accept/reject for arbitrary flat states."""
        return self._labels_of(states.to(self.device), lambda i: f"recurrent state {i}")

    @property
    def steps(self) -> int:
        return self._n - 1

    @property
    def H(self) -> Tensor:
        """Stored states, one row per trie node (row 0: the empty word)."""
        return self._H[: self._n]

    def _grow(self, extra: int) -> None:
        need = self._n + extra
        if need <= self._H.shape[0]:
            return
        cap = max(need, 2 * self._H.shape[0])
        H = torch.zeros(cap, self.dim, device=self.device, dtype=self._H.dtype)
        H[: self._n] = self._H[: self._n]
        lab = np.zeros(cap, dtype=bool)
        lab[: self._n] = self._lab[: self._n]
        self._H, self._lab = H, lab

    # -------------------------------------------------------------- words -> nodes
    def child(self, node: int, symbol: int) -> int | None:
        """The trie node of ``node``'s word extended by ``symbol``, if computed."""
        return self._edges.get(node * self.k + symbol)

    def nodes(self, words: Sequence[Indices]) -> np.ndarray:
        """Trie node (row of :attr:`H`) of each word, computing missing prefixes."""
        edges, k = self._edges, self.k
        get = edges.get
        out = np.zeros(len(words), dtype=np.int64)
        pending: list[tuple[int, int, int]] = []  # (word index, node, position)
        for i, w in enumerate(words):
            node = 0
            for pos, a in enumerate(w):
                nxt = get(node * k + a)
                if nxt is None:
                    pending.append((i, node, pos))
                    break
                node = nxt
            else:
                out[i] = node
        while pending:
            keys: dict[int, int] = {}
            witness: list[Indices] = []  # a word prefix per key, for messages
            for i, node, pos in pending:
                key = node * k + words[i][pos]
                if key not in keys:
                    keys[key] = len(keys)
                    witness.append(words[i][: pos + 1])
            parents = torch.tensor([key // k for key in keys], dtype=torch.long)
            symbols = torch.tensor([key % k for key in keys], dtype=torch.long)
            new_states = self.step(self._H[parents.to(self.device)], symbols)
            self.calls += 1
            self._grow(len(keys))
            start = self._n
            self._H[start : start + len(keys)] = new_states
            self._lab[start : start + len(keys)] = self._labels_of(
                new_states, lambda j, w=witness: describe_word(self.alphabet, w[j])
            )
            for key, j in keys.items():
                edges[key] = start + j
            self._n += len(keys)
            still = []
            for i, node, pos in pending:
                w = words[i]
                for p in range(pos, len(w)):
                    nxt = get(node * k + w[p])
                    if nxt is None:
                        still.append((i, node, p))
                        break
                    node = nxt
                else:
                    out[i] = node
            pending = still
        return out

    def labels(self, words: Sequence[Indices]) -> np.ndarray:
        nodes = self.nodes(words)
        self._asked.update(int(v) for v in nodes if v)
        self.queries = len(self._asked)
        return self._lab[nodes].copy()

    def node_labels(self, nodes: np.ndarray) -> np.ndarray:
        """Labels of trie nodes (counted as membership queries)."""
        self._asked.update(int(v) for v in nodes if v)
        self.queries = len(self._asked)
        return self._lab[nodes].copy()


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def resolve_alphabet(
    alphabet: Any, vocab: Any = None, *, needs_ids: bool
) -> tuple[tuple[Any, ...], list[int] | None]:
    """Symbols in order and, for token models, the token id of each symbol.

    Args:
        alphabet: a sequence of symbols (a str means its characters) or a mapping
            ``{symbol: token_id}``.
        vocab: a :class:`~captum_rnn.data.Vocabulary` or a mapping ``{symbol: id}``.
        needs_ids: whether token ids are required (token models).

    Raises:
        ValueError/TypeError naming ``alphabet`` or ``vocab``.
    """
    from captum_rnn.data import Vocabulary

    if isinstance(alphabet, Mapping):
        symbols = tuple(alphabet)
        ids: list[Any] | None = [alphabet[s] for s in symbols]
    elif isinstance(alphabet, str):
        symbols, ids = tuple(alphabet), None
    elif isinstance(alphabet, Sequence) or hasattr(alphabet, "__iter__"):
        symbols, ids = tuple(alphabet), None
    else:
        raise TypeError(
            f"alphabet must be a sequence of symbols or a {{symbol: token_id}} mapping, "
            f"got {type(alphabet).__name__}"
        )
    if not symbols:
        raise ValueError("alphabet must hold at least one symbol")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"alphabet holds duplicate symbols: {list(symbols)!r}")
    if ids is None and vocab is not None:
        if isinstance(vocab, Sequence) and not isinstance(vocab, (str, Vocabulary)):
            vocab = {token: i for i, token in enumerate(vocab)}  # a list of tokens
        if isinstance(vocab, Vocabulary):
            missing = [s for s in symbols if s not in vocab]
            if missing:
                raise ValueError(
                    f"alphabet symbol {missing[0]!r} is not in the vocabulary "
                    f"({len(vocab)} tokens); the alphabet must match the model's vocabulary"
                )
            ids = [vocab.index(s) for s in symbols]
            specials = [s for s, i in zip(symbols, ids, strict=True) if i in (vocab.pad_index,)]
            if specials:
                raise ValueError(f"alphabet symbol {specials[0]!r} is the padding token")
        elif isinstance(vocab, Mapping):
            missing = [s for s in symbols if s not in vocab]
            if missing:
                raise ValueError(f"alphabet symbol {missing[0]!r} is not in vocab")
            ids = [vocab[s] for s in symbols]
        else:
            raise TypeError(
                "vocab must be a Vocabulary, a {token: id} mapping or a list of tokens, got "
                f"{type(vocab).__name__}"
            )
    if ids is None and needs_ids:
        if all(isinstance(s, int) and not isinstance(s, bool) for s in symbols):
            ids = list(symbols)
        else:
            raise ValueError(
                "alphabet symbols must be mapped to the model's token ids: pass vocab= (a "
                "Vocabulary), or alphabet as a {symbol: token_id} mapping, or token ids"
            )
    if ids is not None:
        for s, i in zip(symbols, ids, strict=True):
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"token id of alphabet symbol {s!r} must be an int, got {i!r}")
        if len(set(ids)) != len(ids):
            raise ValueError("two alphabet symbols map to the same token id")
        ids = [int(i) for i in ids]
    return symbols, ids


def _is_package_recurrent(model: Any) -> bool:
    from captum_rnn.models.recurrent import RecurrentModel

    return isinstance(model, RecurrentModel)


def make_oracle(
    model: Any,
    alphabet: Any,
    vocab: Any = None,
    empty: bool | str = "auto",
    batch_size: int = 2048,
    white_box: bool = True,
    prefix_scores: bool = False,
    hints: dict[str, Any] | None = None,
) -> MembershipOracle:
    """Build the membership oracle for ``model`` (see the module docstring).

    Args:
        model: a package ``RNNClassifier`` with 2 classes over token ids, any
            ``nn.Module`` mapping padded token ids ``(batch, time)`` to ``(batch, 2)``
            scores, or a callable scoring a list of words.
        alphabet: the symbols (or ``{symbol: token_id}``).
        vocab: maps symbols to token ids for token models: a ``Vocabulary``, a
            ``{token: id}`` mapping or a list of tokens (position = id).
        empty: the label of the empty word: ``True``/``False``, ``"network"`` (ask the
            network), or ``"auto"`` (a provisional label; see ``extract_dfa``).
        batch_size: most words per network call.
        white_box: use the recurrent state when the model allows it.
        prefix_scores: the callable scores every prefix of every word (see
            :class:`CallableOracle`); callables only.
        hints: the model contract's hints for an ``nn.Module`` (``pad_id``,
            ``batch_first``, ``output``, ...; see :func:`captum_rnn.adapt`): the model is
            called in its own layout with its lengths or mask, and a word is accepted when
            the probability of class 1 exceeds 0.5 (logits, probabilities, log-probabilities
            or one logit alike).

    Raises:
        ValueError/TypeError naming ``model``, ``alphabet`` or ``vocab``.
    """
    if not (isinstance(empty, bool) or empty in ("auto", "network")):
        raise ValueError(f"empty must be True, False, 'auto' or 'network', got {empty!r}")
    batch_size = check_int("batch_size", batch_size, 1)
    if not isinstance(prefix_scores, bool):
        raise TypeError(f"prefix_scores must be True or False, got {prefix_scores!r}")
    if prefix_scores and (isinstance(model, nn.Module) or not callable(model)):
        raise ValueError(
            "prefix_scores=True is for a callable that returns the score of every prefix "
            "of every word; a package RNNClassifier is already read prefix by prefix"
        )
    if isinstance(model, nn.Module):
        seq = adapt(model, **(hints or {}))
        if not seq.is_token_model:
            raise ValueError(
                "model reads continuous input; extract_dfa needs a model over token ids"
            )
        out = model.head.out_features if _is_package_recurrent(model) else 2
        if seq.output == "regression" or out != 2:
            raise ValueError(
                f"model must be a binary classifier (2 classes), got "
                f"{type(model).__name__} with {out} outputs ({seq.output})"
            )
        symbols, ids = resolve_alphabet(alphabet, vocab, needs_ids=True)
        size, pad = seq.vocab_size, seq.pad_id
        for s, i in zip(symbols, ids, strict=True):  # type: ignore[arg-type]
            if size is not None and not 0 <= i < size:
                raise ValueError(
                    f"alphabet symbol {s!r} maps to token id {i}, outside the model's "
                    f"vocabulary [0, {size})"
                )
            if i == pad:
                raise ValueError(f"alphabet symbol {s!r} maps to the padding id {pad}")
        steppable = (
            white_box
            and _is_package_recurrent(model)
            and not model.rnn.bidirectional
            and model.pooling == "last"
        )
        if steppable:
            return RecurrentOracle(model, symbols, ids, empty, batch_size)  # type: ignore[arg-type]
        return TokenModelOracle(seq, symbols, ids, empty, batch_size)  # type: ignore[arg-type]
    if callable(model):
        symbols, _ = resolve_alphabet(alphabet, None, needs_ids=False)
        return CallableOracle(model, symbols, empty, batch_size, prefix_scores)
    raise TypeError(
        f"model must be a binary sequence classifier (nn.Module) or a callable scoring a "
        f"list of sequences, got {type(model).__name__}"
    )
