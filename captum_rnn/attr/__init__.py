"""Attribution methods for sequence models, in Captum's shapes."""

from captum_rnn.attr._linear import WeightedRidge
from captum_rnn.attr._methods import (
    AttributionMethod,
    MethodResult,
    available_methods,
    get_method,
)

__all__ = [
    "AttributionMethod",
    "MethodResult",
    "WeightedRidge",
    "available_methods",
    "get_method",
]
