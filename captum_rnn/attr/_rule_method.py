"""``explain(..., method="rule_extraction")``: the tokens of each sequence's local rule.

Wraps :class:`captum_rnn.rules.RuleExtraction` (anchors) as a registered
:class:`~captum_rnn.attr.AttributionMethod`, so ``explain`` and every callback find it
by name. The score of a step is 1 when its token is in the sequence's anchor, else 0,
spread evenly over the step's embedding dimensions (as the attention methods do):
summing over them gives the 0/1 mask once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from captum_rnn.attr._methods import AttributionMethod, MethodResult

__all__ = ["RuleExtractionMethod"]


class RuleExtractionMethod(AttributionMethod):
    """``explain(..., method="rule_extraction")``: a 0/1 mask of each anchor's tokens.

    Token models only. Options are those of ``RuleExtraction.attribute`` (the padding
    id comes from the model contract). ``replacement`` defaults to id 1, or 0 when the
    padding id is 1, so perturbed tokens never become padding.
    """

    name = "rule_extraction"
    uses_gradients = False
    options = (
        "precision",
        "replacement",
        "mask_prob",
        "beam_size",
        "max_anchor_size",
        "batch_size",
        "max_samples",
        "delta",
        "epsilon",
        "epsilon_stop",
        "seed",
        "exclude",
    )

    def attribute(
        self, inputs: Tensor, baselines: Tensor, target: Tensor, lengths: Tensor, **kwargs: Any
    ) -> MethodResult:
        from captum_rnn.rules import RuleExtraction

        if self.ids is None:
            raise ValueError(
                "method 'rule_extraction' explains token models (rules are sets of tokens); "
                "this model reads continuous features"
            )
        seq = self.model
        pad = int(seq.pad_id)
        kwargs.setdefault("replacement", 0 if pad == 1 else 1)

        def forward(ids: Tensor, lengths: Tensor) -> Tensor:
            return seq(ids, lengths)

        with torch.no_grad():
            mask = RuleExtraction(forward).attribute(
                self.ids, target=target, additional_forward_args=(lengths,), pad_index=pad, **kwargs
            )
        mask = torch.as_tensor(mask, device=inputs.device).to(inputs.dtype)
        mask = mask * self.real_steps(lengths, inputs.shape[1]).to(inputs.dtype)
        dim = inputs.shape[-1]
        return MethodResult((mask[..., None] / dim).expand_as(inputs).clone())
