"""Counterfactuals: the smallest change to a sequence that changes the model's class,
verified on the model; for tokens proven minimal where every smaller edit set was run.

The public names are ``captum_rnn.counterfactuals``, ``captum_rnn.token_counterfactual``
and ``captum_rnn.Counterfactual`` (this package is private, as ``_explain`` is: the
function's name would otherwise shadow it).

Example:
    >>> import captum_rnn  # doctest: +SKIP
    >>> cf = captum_rnn.counterfactuals(model, ids, train_dataset=train)[0]  # doctest: +SKIP
    >>> cf.edits, cf.flipped, cf.minimal  # doctest: +SKIP
    ([(3, 5, 7)], True, True)
"""

from captum_rnn._counterfactuals._api import counterfactuals, token_counterfactual
from captum_rnn._counterfactuals._result import Counterfactual

__all__ = ["Counterfactual", "counterfactuals", "token_counterfactual"]
