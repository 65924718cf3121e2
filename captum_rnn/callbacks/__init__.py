"""Lightning callbacks: explanations logged while a model trains, and whole data sets
explained with ``trainer.predict`` on one process or many.

* :class:`ExplanationLogger` explains a fixed probe set every few epochs and logs
  figures, a table and scalars (IG convergence delta, explanation stability,
  faithfulness) to TensorBoard, W&B, MLflow, CSV or any other logger.
* :class:`FaithfulnessMonitor` and :class:`RuleExtractionMonitor` log faithfulness
  scores, and the fidelity and size of extracted rules, every few epochs.
* :class:`ExplainingModule` + :class:`ExplanationWriter` explain every sequence of a
  data set through ``trainer.predict`` (one shard per rank and batch, NPZ);
  :func:`read_explanations` merges the shards in dataset order.

Every callback reads one registry: methods are found by name when the trainer starts,
any of ``captum_rnn.attr.available_methods()`` (gradient, perturbation, attention and
``"rule_extraction"``; subclass :class:`captum_rnn.attr.AttributionMethod` with a
``name`` to add one), plus ``"nearest_examples"``, the one example-based explainer (it
answers with training examples, not scores). :func:`available_explainers` lists them.
A callable ``explainer=(model, inputs, lengths, target) -> attributions`` may stand in
for a name.

The model is any ``nn.Module`` or ``LightningModule`` over sequences, your own
included, seen through the model contract (:func:`captum_rnn.adapt`): every callback
takes its hints (``pad_id=``, ``batch_first=``, ``output=`` ... or ``model_hints=``)
and ``batch_to_inputs=`` for batches other than tensors, ``(x, y)``,
``(x, lengths, y)`` and dicts with common keys.

Example:
    >>> import pytorch_lightning as pl
    >>> from captum_rnn.callbacks import ExplanationLogger
    >>> trainer = pl.Trainer(max_epochs=3, callbacks=[ExplanationLogger(range(8))])  # doctest: +SKIP
"""

from captum_rnn.callbacks._explainers import available_explainers
from captum_rnn.callbacks._explaining_module import ExplainingModule, explain_batch
from captum_rnn.callbacks._logger import ExplanationLogger, rank_correlation
from captum_rnn.callbacks._monitors import FaithfulnessMonitor, RuleExtractionMonitor
from captum_rnn.callbacks._streaming import StreamingExplanationCallback
from captum_rnn.callbacks._writer import ExplanationWriter, read_explanations

__all__ = [
    "ExplainingModule",
    "ExplanationLogger",
    "ExplanationWriter",
    "FaithfulnessMonitor",
    "RuleExtractionMonitor",
    "StreamingExplanationCallback",
    "available_explainers",
    "explain_batch",
    "rank_correlation",
    "read_explanations",
]
