"""Lightning modules that wrap recurrent and attention sequence models."""

from captum_rnn.models.attention import AdditiveAttention, DotAttention, masked_softmax
from captum_rnn.models.protocol import OUTPUT_KINDS, SequenceModel, adapt
from captum_rnn.models.recurrent import RecurrentModel, RNNClassifier, RNNRegressor
from captum_rnn.models.seq2seq import Seq2SeqAttention
from captum_rnn.models.transformer import AttentionTap, TransformerClassifier

__all__ = [
    "AdditiveAttention",
    "AttentionTap",
    "OUTPUT_KINDS",
    "DotAttention",
    "RNNClassifier",
    "RNNRegressor",
    "RecurrentModel",
    "Seq2SeqAttention",
    "SequenceModel",
    "TransformerClassifier",
    "adapt",
    "masked_softmax",
]
