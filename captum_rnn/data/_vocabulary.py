"""Token <-> index mapping with a fixed padding index (0) and unknown index (1)."""

from __future__ import annotations

import json
import operator
import os
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from captum_rnn._utils.files import atomic_write_text
from captum_rnn._utils.jsonio import check, load_json, require
from captum_rnn._utils.options import check_int

from ._tokenizer import tokenize

__all__ = ["Vocabulary"]

_FORMAT = "captum_rnn.Vocabulary"
_VERSION = 1


class Vocabulary:
    """A token vocabulary whose padding index is always 0 and unknown index always 1.

    Lookups (:meth:`index`, :meth:`encode`, ``in``) match a token exactly, else by its
    Unicode NFC form, so composed and decomposed spellings of a word ("café" as U+00E9
    or as "e" + U+0301) get the same index.

    Args:
        tokens: the regular tokens, in the order they get indices 2, 3, ...;
            duplicates and the two special tokens are skipped.
        pad_token: the padding token (index 0).
        unk_token: the token unknown words map to (index 1).

    Example:
        >>> vocab = Vocabulary(["good", "bad"])
        >>> vocab.encode("good or bad")
        [2, 1, 3]
        >>> vocab.decode([2, 1, 3, 0])
        ['good', '<unk>', 'bad', '<pad>']
    """

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, compared by value

    def __init__(
        self,
        tokens: Iterable[str] = (),
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
    ) -> None:
        if not isinstance(pad_token, str) or not isinstance(unk_token, str):
            raise TypeError("pad_token and unk_token must be str")
        if pad_token == unk_token:
            raise ValueError(f"pad_token and unk_token must differ, both are {pad_token!r}")
        if isinstance(tokens, str):
            raise TypeError("tokens must be an iterable of str, not a single str")
        self._pad_token = pad_token
        self._unk_token = unk_token
        self._itos: list[str] = [pad_token, unk_token]
        self._stoi: dict[str, int] = {pad_token: 0, unk_token: 1}
        for position, token in enumerate(tokens):
            if not isinstance(token, str):
                raise TypeError(f"tokens[{position}] must be a str, got {type(token).__name__}")
            if token not in self._stoi:
                self._stoi[token] = len(self._itos)
                self._itos.append(token)
        self._nfc = _nfc_aliases(self._itos)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickles from before the NFC lookup lack the aliases
        self.__dict__.update(state)
        if "_nfc" not in state:
            self._nfc = _nfc_aliases(self._itos)

    @classmethod
    def build(
        cls,
        texts: Iterable[str | Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        tokenizer: Callable[[str], list[str]] = tokenize,
        **kw: Any,
    ) -> Vocabulary:
        """Count tokens in a corpus and build a vocabulary from the frequent ones.

        Tokens are ordered by descending count, ties alphabetically, so the result
        does not depend on the order of ``texts``.

        Args:
            texts: strings (split with ``tokenizer``) or already-tokenized lists.
            min_freq: keep tokens seen at least this many times.
            max_size: keep at most this many regular tokens (specials not counted).
            tokenizer: the function that splits a string into tokens.
            **kw: passed to the constructor (``pad_token``, ``unk_token``).

        Returns:
            The new vocabulary.

        Example:
            >>> Vocabulary.build(["a b b", "b c"], min_freq=2).itos
            ['<pad>', '<unk>', 'b']
        """
        min_freq = check_int("min_freq", min_freq, 1)
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0
        ):
            raise ValueError(f"max_size must be None or an int >= 0, got {max_size!r}")
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of texts, not a single str")
        counts: Counter[str] = Counter()
        for position, text in enumerate(texts):
            counts.update(_as_tokens(text, tokenizer, f"texts[{position}]"))
        specials = {kw.get("pad_token", "<pad>"), kw.get("unk_token", "<unk>")}
        ranked = sorted(
            (tok for tok, count in counts.items() if count >= min_freq and tok not in specials),
            key=lambda tok: (-counts[tok], tok),
        )
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls(ranked, **kw)

    # -- basic mapping -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self._find(token) is not None

    def _find(self, token: str) -> int | None:
        """The index of ``token``: exact, else of its NFC form, else ``None``."""
        found = self._stoi.get(token)
        if found is None:
            nfc = unicodedata.normalize("NFC", token)
            found = self._stoi.get(nfc)
            if found is None:
                found = self._nfc.get(nfc)
        return found

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (
            self._itos == other._itos
            and self._pad_token == other._pad_token
            and self._unk_token == other._unk_token
        )

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, pad_token={self._pad_token!r}, unk_token={self._unk_token!r})"

    @property
    def pad_index(self) -> int:
        """Index of the padding token: always 0."""
        return 0

    @property
    def unk_index(self) -> int:
        """Index of the unknown token: always 1."""
        return 1

    @property
    def pad_token(self) -> str:
        """The padding token."""
        return self._pad_token

    @property
    def unk_token(self) -> str:
        """The unknown token."""
        return self._unk_token

    @property
    def itos(self) -> list[str]:
        """Index -> token, as a new list."""
        return list(self._itos)

    @property
    def stoi(self) -> dict[str, int]:
        """Token -> index, as a new dict."""
        return dict(self._stoi)

    def index(self, token: str) -> int:
        """Return the index of ``token`` (or of its NFC form), else ``unk_index``.

        Example:
            >>> Vocabulary(["a"]).index("zzz")
            1
        """
        if not isinstance(token, str):
            return self._stoi.get(token, 1)
        found = self._find(token)
        return 1 if found is None else found

    def token(self, index: int) -> str:
        """Return the token at ``index``.

        Raises:
            ValueError: if ``index`` is outside ``[0, len(self))``.

        Example:
            >>> Vocabulary(["a"]).token(2)
            'a'
        """
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index must be an int, got {type(index).__name__}") from None
        if not 0 <= index < len(self._itos):
            raise ValueError(f"index {index} is outside the vocabulary [0, {len(self._itos)})")
        return self._itos[index]

    # -- encoding ------------------------------------------------------------------
    def encode(
        self,
        text_or_tokens: str | Sequence[str],
        tokenizer: Callable[[str], list[str]] = tokenize,
    ) -> list[int]:
        """Map a text (split with ``tokenizer``) or a list of tokens to indices.

        Args:
            text_or_tokens: a string, or an already-tokenized sequence of strings.
            tokenizer: the function that splits a string into tokens.

        Returns:
            One index per token; unknown tokens map to ``unk_index``.

        Example:
            >>> Vocabulary(["a", "b"]).encode(["b", "a", "c"])
            [3, 2, 1]
        """
        get, index = self._stoi.get, self.index
        return [
            found if (found := get(tok)) is not None else index(tok)
            for tok in _as_tokens(text_or_tokens, tokenizer, "text_or_tokens")
        ]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        """Map indices back to tokens; padding and unknown indices are kept.

        Args:
            ids: a list of ints or a 1-D integer tensor.

        Returns:
            One token per index.

        Example:
            >>> Vocabulary(["a"]).decode(torch.tensor([2, 0]))
            ['a', '<pad>']
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"ids must be a 1-D tensor, got shape {tuple(ids.shape)}")
            if ids.is_floating_point() or ids.is_complex():
                raise TypeError(f"ids must be an integer tensor, got dtype {ids.dtype}")
            ids = ids.tolist()
        size = len(self._itos)
        out = []
        for position, i in enumerate(ids):
            try:
                i = operator.index(i)  # ints, numpy integers
            except TypeError:
                raise TypeError(f"ids[{position}] must be an int, got {type(i).__name__}") from None
            if not 0 <= i < size:
                raise ValueError(f"ids[{position}] = {i} is outside the vocabulary [0, {size})")
            out.append(self._itos[i])
        return out

    def encode_batch(
        self,
        texts: Sequence[str | Sequence[str]],
        tokenizer: Callable[[str], list[str]] = tokenize,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode several texts into one right-padded batch.

        Args:
            texts: strings or already-tokenized lists.
            tokenizer: the function that splits a string into tokens.

        Returns:
            ``(ids, lengths)``: a LongTensor ``(batch, time)`` padded with
            ``pad_index`` to the longest text, and a LongTensor ``(batch,)``.

        Example:
            >>> ids, lengths = Vocabulary(["a", "b"]).encode_batch(["a b", "b"])
            >>> ids.tolist(), lengths.tolist()
            ([[2, 3], [3, 0]], [2, 1])
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of texts, not a single str")
        encoded = [self.encode(text, tokenizer) for text in texts]
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        width = max((len(e) for e in encoded), default=0)
        ids = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            if e:
                ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, lengths

    # -- persistence ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description of the vocabulary."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "pad_token": self._pad_token,
            "unk_token": self._unk_token,
            "itos": list(self._itos),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_dict` output, validating it.

        Raises:
            ValueError: naming the field, if ``data`` is not a valid vocabulary description.
        """
        if not isinstance(data, dict):
            raise ValueError(f"vocabulary data must be a JSON object, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a vocabulary file: 'format' must be {_FORMAT!r}")
        version = data.get("version")
        if isinstance(version, bool) or version != _VERSION:
            raise ValueError(f"unsupported vocabulary version {version!r}")
        pad = require(data, "pad_token", str)
        unk = require(data, "unk_token", str)
        if pad == unk:
            raise ValueError("'pad_token' and 'unk_token' must be two different strings")
        itos = require(data, "itos", list)
        for position, token in enumerate(itos):
            check(token, str, f"itos[{position}] (itos must be a list of strings)")
        if itos[:2] != [pad, unk]:
            raise ValueError("'itos' must start with pad_token then unk_token")
        if len(set(itos)) != len(itos):
            raise ValueError("'itos' holds duplicate tokens")
        return cls(itos[2:], pad_token=pad, unk_token=unk)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary to ``path`` as UTF-8 JSON.

        Example:
            >>> vocab.save("vocab.json")  # doctest: +SKIP
            >>> Vocabulary.load("vocab.json") == vocab  # doctest: +SKIP
            True
        """
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=0))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a vocabulary written by :meth:`save` (JSON; nothing is unpickled).

        Raises:
            ValueError: if the file is not valid JSON or not a valid vocabulary.
        """
        return load_json(path, "vocabulary", cls.from_dict)


def _nfc_aliases(itos: list[str]) -> dict[str, int]:
    """NFC form -> index, for tokens stored in another normalisation form."""
    aliases: dict[str, int] = {}
    for position, token in enumerate(itos):
        nfc = unicodedata.normalize("NFC", token)
        if nfc != token:
            aliases.setdefault(nfc, position)
    return aliases


def _as_tokens(
    text: str | Sequence[str], tokenizer: Callable[[str], list[str]], name: str
) -> list[str]:
    if isinstance(text, str):
        return tokenizer(text)
    if isinstance(text, torch.Tensor) or not isinstance(text, Iterable):
        raise TypeError(f"{name} must be a str or a sequence of str, got {type(text).__name__}")
    tokens = list(text)
    for position, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise TypeError(f"{name}[{position}] must be a str, got {type(tok).__name__}")
    return tokens
