"""captum-rnn: explain recurrent and attention sequence models with Captum and Lightning.

Any ``nn.Module`` over sequences works: ``adapt(model)`` reads what it can off the model
(the model contract, ``docs/ARCHITECTURE.md``) and names the hint to pass where it cannot.

Example:
    >>> import torch, captum_rnn
    >>> from captum_rnn.models import RNNClassifier
    >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4)
    >>> explanations = captum_rnn.explain(model, torch.tensor([[4, 5, 6]]))
"""

from captum_rnn._counterfactuals import Counterfactual, counterfactuals, token_counterfactual
from captum_rnn._explain import explain
from captum_rnn._utils.grad import GradientContext, gradient_context
from captum_rnn.explanation import Explanation, Explanations
from captum_rnn.metrics._benchmark import BenchmarkResult, benchmark
from captum_rnn.models.protocol import SequenceModel, adapt

__version__ = "0.1.0"

__all__ = [
    "BenchmarkResult",
    "Counterfactual",
    "Explanation",
    "Explanations",
    "GradientContext",
    "SequenceModel",
    "__version__",
    "adapt",
    "benchmark",
    "counterfactuals",
    "explain",
    "gradient_context",
    "token_counterfactual",
]
