"""Attributions for sequence models, in Captum's shapes: gradient and perturbation
methods (the registry behind ``captum_rnn.explain``), attention weights, rollout and
flow, and the recurrent states of LSTM/GRU layers.

Example-based explanations live in :mod:`captum_rnn.influence`, rules and anchors in
:mod:`captum_rnn.rules`; ``NearestExamples`` and ``RuleExtraction`` are also importable
from here, where Captum users look for them.

Example:
    >>> from captum_rnn.attr import available_methods
    >>> "integrated_gradients" in available_methods()
    True
"""

from typing import Any

from captum_rnn.attr import _extremal_mask, _timeshap  # noqa: F401  (register their methods)
from captum_rnn.attr import _rule_method as _rule_method  # registers "rule_extraction"
from captum_rnn.attr._attention import (
    AttentionFlow,
    AttentionRollout,
    AttentionWeights,
    GradientAttentionRollout,
    capture_attention,
)
from captum_rnn.attr._contextual import ContextualDecomposition
from captum_rnn.attr._decomposition import Decomposition, RecurrentDecomposition
from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.attr._methods import (
    AttributionMethod,
    MethodResult,
    available_methods,
    get_method,
)
from captum_rnn.attr._rollout import attention_flow, attention_rollout, fuse_attention
from captum_rnn.attr._seq2seq import (
    SEQ2SEQ_METHODS,
    Seq2SeqAttribution,
    attribute_seq2seq,
    seq2seq_attention,
)
from captum_rnn.attr._states import (
    GATE_NAMES,
    RecurrentTrace,
    UnitTokenResponses,
    recurrent_states,
    unit_token_responses,
)
from captum_rnn.attr._streaming import StreamingExplainer
from captum_rnn.attr._temporal import (
    ground_truth_auprc,
    normalize_steps,
    time_forward_attributions,
)
from captum_rnn.influence import NearestExamples
from captum_rnn.rules import Anchor, RuleExtraction

__all__ = [
    # gradient and perturbation methods: the registry behind explain()
    "AttributionMethod",
    "MethodResult",
    "WeightedRidge",
    "Decomposition",
    "RecurrentDecomposition",
    "ContextualDecomposition",
    "StreamingExplainer",
    "available_methods",
    "get_method",
    # encoder-decoders: every target token to the source and the target prefix
    "SEQ2SEQ_METHODS",
    "Seq2SeqAttribution",
    "attribute_seq2seq",
    "seq2seq_attention",
    # time series: the time-forward view and tint's ground-truth score
    "ground_truth_auprc",
    "normalize_steps",
    "time_forward_attributions",
    # attention
    "AttentionFlow",
    "AttentionRollout",
    "AttentionWeights",
    "GradientAttentionRollout",
    "attention_flow",
    "attention_rollout",
    "capture_attention",
    "fuse_attention",
    # recurrent states
    "GATE_NAMES",
    "RecurrentTrace",
    "UnitTokenResponses",
    "recurrent_states",
    "unit_token_responses",
    # names the design keeps here for Captum users (their home is influence / rules)
    "Anchor",
    "NearestExamples",
    "RuleExtraction",
]

# Moved in 0.2 to captum_rnn.influence; kept one release.
_MOVED_TO_INFLUENCE = {
    "Credibility": "_credibility",
    "conformal_p_values": "_credibility",
    "deep_knn_credibility": "_credibility",
    "knn_nonconformity": "_credibility",
    "novelty_scores": "_credibility",
    "Neighbors": "_nearest",
    "PrototypeEvaluation": "_nearest",
    "median_gamma": "_prototypes",
    "mmd_criticisms": "_prototypes",
    "mmd_prototypes": "_prototypes",
    "nearest_prototype_predict": "_prototypes",
    "rbf_kernel": "_prototypes",
    "witness": "_prototypes",
    "ExactIndex": "_search",
    "FaissIndex": "_search",
    "HnswIndex": "_search",
    "exact_search": "_search",
    "make_index": "_search",
    "recall_at_k": "_search",
    "ExampleStore": "_store",
    "StaleStoreError": "_store",
    "model_fingerprint": "_store",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_INFLUENCE:
        from captum_rnn._utils.deprecation import moved

        return moved(name, f"captum_rnn.influence.{_MOVED_TO_INFLUENCE[name]}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
