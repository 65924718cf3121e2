"""Attribution methods for sequence models, in Captum's shapes."""

from captum_rnn.attr._attention import (
    AttentionFlow,
    AttentionRollout,
    AttentionWeights,
    GradientAttentionRollout,
    capture_attention,
)
from captum_rnn.attr._credibility import (
    Credibility,
    conformal_p_values,
    deep_knn_credibility,
    knn_nonconformity,
    novelty_scores,
)
from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.attr._methods import (
    AttributionMethod,
    MethodResult,
    available_methods,
    get_method,
)
from captum_rnn.attr._nearest import NearestExamples, Neighbors, PrototypeEvaluation
from captum_rnn.attr._prototypes import (
    median_gamma,
    mmd_criticisms,
    mmd_prototypes,
    nearest_prototype_predict,
    rbf_kernel,
    witness,
)
from captum_rnn.attr._rollout import attention_flow, attention_rollout, fuse_attention
from captum_rnn.attr._rules import Anchor, RuleExtraction
from captum_rnn.attr._search import (
    ExactIndex,
    FaissIndex,
    HnswIndex,
    exact_search,
    make_index,
    recall_at_k,
)
from captum_rnn.attr._states import (
    GATE_NAMES,
    RecurrentTrace,
    UnitTokenResponses,
    recurrent_states,
    unit_token_responses,
)
from captum_rnn.attr._store import ExampleStore, StaleStoreError, model_fingerprint

__all__ = [
    # attention explanations (issue 3)
    "AttentionFlow",
    "AttentionRollout",
    "AttentionWeights",
    "GradientAttentionRollout",
    "attention_flow",
    "attention_rollout",
    "capture_attention",
    "fuse_attention",
    # local rules (issue 4)
    "Anchor",
    "RuleExtraction",
    # example-based explanations (issue 5)
    "Credibility",
    "ExactIndex",
    "ExampleStore",
    "FaissIndex",
    "GATE_NAMES",
    "HnswIndex",
    "NearestExamples",
    "Neighbors",
    "PrototypeEvaluation",
    "RecurrentTrace",
    "StaleStoreError",
    "UnitTokenResponses",
    "conformal_p_values",
    "deep_knn_credibility",
    "exact_search",
    "knn_nonconformity",
    "make_index",
    "median_gamma",
    "mmd_criticisms",
    "mmd_prototypes",
    "model_fingerprint",
    "nearest_prototype_predict",
    "novelty_scores",
    "rbf_kernel",
    "recall_at_k",
    "recurrent_states",
    "unit_token_responses",
    "witness",
    "AttributionMethod",
    "MethodResult",
    "WeightedRidge",
    "available_methods",
    "get_method",
]
