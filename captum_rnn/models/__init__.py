"""Lightning modules that wrap recurrent and attention sequence models."""

from captum_rnn.models.attention import AdditiveAttention, DotAttention, masked_softmax
from captum_rnn.models.recurrent import RecurrentModel, RNNClassifier, RNNRegressor

__all__ = [
    "AdditiveAttention",
    "DotAttention",
    "RNNClassifier",
    "RNNRegressor",
    "RecurrentModel",
    "masked_softmax",
]
