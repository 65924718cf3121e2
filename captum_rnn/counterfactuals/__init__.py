"""Counterfactual explanations (tokens so far)."""

from captum_rnn.counterfactuals._tokens import Counterfactual, token_counterfactual

__all__ = ["Counterfactual", "token_counterfactual"]
