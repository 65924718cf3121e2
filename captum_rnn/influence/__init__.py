"""Example-based explanations, the ``captum.influence`` kind: which training sequences
does the model treat as alike? Nearest examples, their stores and search indexes,
prototypes and criticisms, and a credibility score.

Example:
    >>> import torch
    >>> from captum_rnn.influence import exact_search
    >>> indices, scores = exact_search(torch.eye(3), torch.eye(3), k=1)
    >>> indices.flatten().tolist()
    [0, 1, 2]
"""

from captum_rnn.influence._credibility import (
    Credibility,
    conformal_p_values,
    deep_knn_credibility,
    knn_nonconformity,
    novelty_scores,
)
from captum_rnn.influence._nearest import NearestExamples, Neighbors, PrototypeEvaluation
from captum_rnn.influence._prototypes import (
    median_gamma,
    mmd_criticisms,
    mmd_prototypes,
    nearest_prototype_predict,
    rbf_kernel,
    witness,
)
from captum_rnn.influence._search import (
    ExactIndex,
    FaissIndex,
    HnswIndex,
    exact_search,
    make_index,
    recall_at_k,
)
from captum_rnn.influence._store import ExampleStore, StaleStoreError, model_fingerprint

__all__ = [
    "Credibility",
    "ExactIndex",
    "ExampleStore",
    "FaissIndex",
    "HnswIndex",
    "NearestExamples",
    "Neighbors",
    "PrototypeEvaluation",
    "StaleStoreError",
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
    "witness",
]
