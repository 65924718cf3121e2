"""How good is an explanation? Faithfulness, plausibility and sanity metrics.

Every metric is declared once in a registry (``available_metrics()``,
``get_metric(name)``): whether higher or lower is better, its range and its cost.
Metrics take the user's own model (any ``nn.Module`` or ``LightningModule``; it goes
through :func:`captum_rnn.adapt`, whose hints ``pad_id``, ``batch_first``, ``output``,
``embedding``, ``num_classes``, ``lengths_arg`` and ``mask_arg`` they accept as
keywords), the inputs and the attributions (a tensor or ``Explanations``) and return
one value per sequence.

Example:
    >>> import torch, captum_rnn
    >>> from captum_rnn.models import RNNClassifier
    >>> from captum_rnn.metrics import comprehensiveness_sufficiency
    >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
    >>> ids = torch.tensor([[4, 5, 6, 7]])
    >>> explanations = captum_rnn.explain(model, ids)
    >>> comp, suff = comprehensiveness_sufficiency(model, ids, explanations)
"""

from typing import Any

from captum_rnn.metrics._attention_sanity import (
    AttentionSanityReport,
    attention_intervention,
    attention_sanity,
)
from captum_rnn.metrics._automaton_truth import (
    AutomatonTruth,
    AutomatonTruthSet,
    automaton_auprc,
    automaton_truth,
    automaton_truth_set,
)
from captum_rnn.metrics._base import Metric
from captum_rnn.metrics._benchmark import BenchmarkResult, benchmark
from captum_rnn.metrics._dataset_view import (
    DatasetAttributionSummary,
    dataset_attribution_summary,
)
from captum_rnn.metrics._examples import (
    MislabelDetection,
    checkpoint_loss_scores,
    flip_labels,
    flips_found,
    knn_fidelity,
    knn_majority,
    mislabel_detection,
    neighbor_label_agreement,
    tracin_self_influence,
)
from captum_rnn.metrics._faithfulness import (
    DEFAULT_FRACTIONS,
    PerturbationCurve,
    comprehensiveness,
    comprehensiveness_sufficiency,
    deletion_auc,
    deletion_curve,
    infidelity,
    insertion_auc,
    insertion_curve,
    kendall_tau,
    leave_one_out,
    loo_kendall,
    sensitivity_max,
    sufficiency,
)
from captum_rnn.metrics._per_output import (
    OutputStepContext,
    comprehensiveness_sufficiency_per_output,
)
from captum_rnn.metrics._plausibility import (
    LexiconAgreement,
    auprc,
    auroc,
    lexicon_agreement,
    spearman,
    token_f1,
    token_iou,
    top_k_mask,
)
from captum_rnn.metrics._registry import METRICS, available_metrics, get_metric
from captum_rnn.metrics._sanity import (
    RandomizationResult,
    data_randomization_test,
    explanation_similarity,
    label_randomized_copy,
    model_randomization_test,
    randomize_parameters,
)

__all__ = [
    "AttentionSanityReport",
    "AutomatonTruth",
    "AutomatonTruthSet",
    "BenchmarkResult",
    "DEFAULT_FRACTIONS",
    "DatasetAttributionSummary",
    "LexiconAgreement",
    "METRICS",
    "Metric",
    "MislabelDetection",
    "PerturbationCurve",
    "RandomizationResult",
    "attention_intervention",
    "attention_sanity",
    "auprc",
    "auroc",
    "automaton_auprc",
    "automaton_truth",
    "automaton_truth_set",
    "OutputStepContext",
    "available_metrics",
    "benchmark",
    "checkpoint_loss_scores",
    "comprehensiveness",
    "comprehensiveness_sufficiency",
    "comprehensiveness_sufficiency_per_output",
    "data_randomization_test",
    "dataset_attribution_summary",
    "deletion_auc",
    "deletion_curve",
    "explanation_similarity",
    "flip_labels",
    "flips_found",
    "get_metric",
    "infidelity",
    "insertion_auc",
    "insertion_curve",
    "kendall_tau",
    "knn_fidelity",
    "knn_majority",
    "label_randomized_copy",
    "leave_one_out",
    "lexicon_agreement",
    "loo_kendall",
    "mislabel_detection",
    "model_randomization_test",
    "neighbor_label_agreement",
    "randomize_parameters",
    "sensitivity_max",
    "spearman",
    "sufficiency",
    "token_f1",
    "token_iou",
    "top_k_mask",
    "tracin_self_influence",
]

# Rules' own fidelity moved to captum_rnn.rules in 0.2; kept one release.
_MOVED_TO_RULES = ("Counterexample", "FidelityReport", "FidelitySplit", "dfa_fidelity", "fidelity")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_RULES:
        from captum_rnn._utils.deprecation import moved

        return moved(name, "captum_rnn.rules._fidelity", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
