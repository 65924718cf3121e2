"""``explain`` on an encoder-decoder: one :class:`Explanation` per source, one row per
target token (see :func:`captum_rnn.attr.attribute_seq2seq` for the computation)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from captum_rnn._utils.state import seeded
from captum_rnn.attr._seq2seq import SEQ2SEQ_METHODS, attribute_seq2seq
from captum_rnn.explanation import Explanation, Explanations
from captum_rnn.models.protocol import SequenceModel

__all__ = ["SEQ2SEQ_OPTIONS", "explain_seq2seq"]

#: The options ``explain`` takes for an encoder-decoder, besides ``target`` and ``method``.
SEQ2SEQ_OPTIONS = ("contrast", "bos_id", "eos_id", "max_length", "target_vocab")
#: Options of one method only.
_METHOD_OPTIONS = {
    "integrated_gradients": ("n_steps", "integration"),
    "kernel_shap": ("n_samples", "perturbations_per_eval"),
    "lime": ("n_samples", "perturbations_per_eval", "alpha"),
    "occlusion": ("window",),
}


def _target_batch(seq: SequenceModel, target: Any, batch: int, pad: int) -> Tensor | None:
    """Targets as batch-first ids: a tensor in the model's layout, one 1-D row, or lists."""
    if target is None:
        return None
    if isinstance(target, Tensor):
        if target.dim() == 1:
            return target[None]
        if target.dim() == 2 and not seq.batch_first:
            return target.transpose(0, 1)
        return target
    rows = [torch.as_tensor(row).long() for row in target]
    if rows and rows[0].dim() == 0:  # one sequence given as a flat list
        rows = [torch.stack(rows)]
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad)


def explain_seq2seq(
    seq: SequenceModel,
    src: Tensor,
    lengths: Tensor,
    method: str = "integrated_gradients",
    target: Any = None,
    vocab: Any = None,
    *,
    baselines: Any = None,
    labels: Any = None,
    **options: Any,
) -> Explanations:
    """Explain every target token of an encoder-decoder: its source and its target prefix.

    ``captum_rnn.explain(model, src, target=tgt)`` lands here when the model contract
    finds a target argument in the forward (``trg``, ``tgt``, ``decoder_input``... or
    ``target_arg=``); teacher forcing is forced on (``teacher_forcing_ratio=1``).

    Args:
        seq: the adapted encoder-decoder.
        src: batch-first source ids ``(batch, T_src)`` (``explain`` prepares them).
        lengths: true source lengths ``(batch,)``.
        method: ``"integrated_gradients"``, ``"saliency"``, ``"input_x_gradient"``,
            ``"feature_ablation"``, ``"occlusion"``, ``"kernel_shap"``, ``"lime"`` or
            ``"attention"``
            (the model's own cross-attention, in the same shape, for comparison).
        target: full targets ``<s> y_1 .. y_n </s>`` in the model's layout (time-major
            ``(L, batch)`` for a time-major model), a list of id lists, or ``None`` to
            decode greedily first (``bos_id=`` / ``eos_id=`` where the model has no
            ``bos_idx`` / ``eos_idx``).
        vocab: turns source ids into tokens.
        baselines: ``None`` (the padding embedding) or a source token id put at every
            real position.
        labels: optional true labels, stored on the explanations.
        options: ``contrast`` (a token id, one per output step, or ``(batch, steps)``:
            explain the target logit minus this foil's), ``n_steps``, ``integration``,
            ``bos_id``, ``eos_id``, ``max_length``, ``target_vocab`` (names the output
            tokens).

    Returns:
        :class:`~captum_rnn.Explanations`: per source, ``scores`` ``(n_outputs, T_src)``,
        ``prefix_scores`` ``(n_outputs, n_outputs)``, ``output_labels`` the target tokens,
        and per-output ``target``, ``predicted``, ``output`` (the explained logit or logit
        difference) and ``delta``.

    Example:
        >>> from captum_rnn import explain
        >>> from captum_rnn.models.seq2seq import Seq2SeqAttention
        >>> m = Seq2SeqAttention(9, 7, hidden_size=4, embedding_dim=3, bos_idx=2, eos_idx=3)
        >>> [e] = explain(m, torch.tensor([[4, 5, 6]]), target=torch.tensor([[2, 5, 6, 3]]))
        >>> len(e.output_labels), len(e.scores[0]), len(e.prefix_scores[0])
        (3, 3, 3)
    """
    accepted = (*SEQ2SEQ_OPTIONS, *_METHOD_OPTIONS.get(method, ()))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"explain() on an encoder-decoder with method={method!r} got unknown options "
            f"{unknown}; it takes {list(accepted)} (and the model contract's hints)"
        )
    if not isinstance(method, str) or method not in SEQ2SEQ_METHODS:
        raise ValueError(
            f"method must be one of {SEQ2SEQ_METHODS} for an encoder-decoder, got {method!r}"
        )
    target_vocab = options.pop("target_vocab", None)
    if baselines is None:
        src_baseline = None
    elif isinstance(baselines, int) and not isinstance(baselines, bool):
        ids = torch.where(src == seq.pad_id, src, torch.full_like(src, baselines))
        src_baseline = seq.embed(ids)
    else:
        raise TypeError("baselines for an encoder-decoder must be None or one source token id")
    pad = getattr(seq.target_embedding, "padding_idx", None)
    pad = seq.pad_id if pad is None else int(pad)
    tgt = _target_batch(seq, target, src.shape[0], pad)
    if labels is not None and len(labels) != src.shape[0]:
        raise ValueError(f"labels must have {src.shape[0]} entries, got {len(labels)}")
    with seeded():  # tutorial forwards flip teacher-forcing coins: the caller's RNG stays
        result = attribute_seq2seq(
            seq, src, lengths, tgt, method=method, src_baseline=src_baseline, **options
        )
    explanations = Explanations()
    for i in range(src.shape[0]):
        n = int(result.n_outputs[i])
        keep = (src[i] != seq.pad_id).nonzero()[:, 0].cpu()
        ids = src[i].cpu()[keep].tolist()
        out_ids = result.target[i, 1 : n + 1].tolist()

        def names(ids: list[int], v: Any) -> list[str]:
            return list(v.decode(ids)) if v is not None else [str(t) for t in ids]

        extra: dict[str, Any] = {
            "source_ids": ids,
            "target_ids": result.target[i, : n + 1].tolist(),
        }
        if result.contrast is not None:
            extra["contrast"] = result.contrast[i, :n].tolist()
        explanations.append(
            Explanation(
                tokens=names(ids, vocab),
                scores=result.source[i, :n][:, keep].cpu().tolist(),
                method=method,
                target=out_ids,
                predicted=result.predicted[i, :n].tolist(),
                probability=result.probability[i, :n].tolist(),
                output=result.value[i, :n].double().tolist(),
                delta=None if result.delta is None else result.delta[i, :n].tolist(),
                n_steps=None if result.n_steps is None else [result.n_steps] * n,
                label=labels[i] if labels is not None else None,
                extra=extra,
                output_labels=names(out_ids, target_vocab),
                prefix_scores=(
                    None if result.prefix is None else result.prefix[i, :n, :n].cpu().tolist()
                ),
            )
        )
    return explanations
