"""A zoo of user models written the way popular tutorials write them.

Each module holds one model class in tutorial style plus ``make(seed) -> ZooCase``, which
generates tiny planted-cue data, trains the model by hand for a second or two and returns it in
eval mode with a held-out batch in the model's own layout. Nothing here imports captum_rnn: the
point is to check that the library copes with models it did not write.

    >>> import zoo
    >>> case = zoo.build("imdb_lstm")
    >>> out = case.call(case.inputs, case.lengths)
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class ZooCase:
    name: str
    model: nn.Module  # trained, in eval mode
    inputs: Tensor  # held-out batch in the model's own layout, padded with pad_id
    lengths: Tensor | None  # true lengths (B,); None when every sequence has full length
    labels: Tensor  # (B,) true labels; (trg_len, B) target ids for the seq2seq case
    hints: dict  # keywords a user must pass to captum_rnn.adapt
    pad_id: int | None  # padding id for token models, None for continuous inputs
    token: bool  # token ids (True) or continuous features (False)
    batch_first: bool
    call: Callable[[Tensor, Tensor | None], Tensor]  # how the user calls the model by hand
    embedding: nn.Module | None  # the input embedding layer
    train_data: tuple  # (train_inputs, train_lengths, train_labels), same layout


NAMES: tuple[str, ...] = (
    "imdb_lstm",
    "char_rnn",
    "mfcc_lightning",
    "nll_gru",
    "stacked_lstm",
    "hidden_lstm",
    "transformer_tutorial",
    "hf_style_gru",
)
SEQ2SEQ = "seq2seq_gru"
ALL: tuple[str, ...] = (*NAMES, SEQ2SEQ)
#: Models with one output per step: a time-major tagger and a multi-step forecaster.
STEP_OUTPUTS: tuple[str, ...] = ("pos_tagger", "multistep_forecaster")


def build(name: str, seed: int = 0) -> ZooCase:
    """The trained case ``name`` (one of ``ALL``), built once per (name, seed)."""
    if name not in (*ALL, *STEP_OUTPUTS):
        raise KeyError(f"unknown zoo model {name!r}; expected one of {(*ALL, *STEP_OUTPUTS)}")
    return _build(name, int(seed))


@functools.lru_cache
def _build(name: str, seed: int) -> ZooCase:
    module = importlib.import_module(f"zoo.{name}")
    return module.make(seed)


__all__ = ["ALL", "NAMES", "SEQ2SEQ", "STEP_OUTPUTS", "ZooCase", "build"]
