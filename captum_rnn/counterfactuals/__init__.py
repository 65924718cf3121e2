"""Counterfactuals: the smallest change to a sequence that changes the model's class,
verified on the model; for tokens proven minimal where every smaller edit set was run.

Example:
    >>> from captum_rnn.counterfactuals import counterfactuals  # doctest: +SKIP
    >>> cf = counterfactuals(model, ids, train_dataset=train)[0]  # doctest: +SKIP
    >>> cf.edits, cf.flipped, cf.minimal  # doctest: +SKIP
    ([(3, 5, 7)], True, True)
"""

from captum_rnn.counterfactuals._api import counterfactuals, token_counterfactual
from captum_rnn.counterfactuals._result import Counterfactual

__all__ = ["Counterfactual", "counterfactuals", "token_counterfactual"]
