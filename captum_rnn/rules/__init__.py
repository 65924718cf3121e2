"""Automata and rule lists extracted from sequence classifiers, with their fidelity.

Example:
    >>> from captum_rnn.rules import extract_dfa, tomita_dfa
    >>> from captum_rnn.data import tomita_accepts
    >>> net = lambda words: [tomita_accepts(1, w) for w in words]
    >>> dfa = extract_dfa(net, "01", empty=True)
    >>> dfa.equivalent(tomita_dfa(1)) is None
    True
"""

from captum_rnn.rules._dfa import DFA, Word
from captum_rnn.rules._extract import ExtractionReport, extract_dfa
from captum_rnn.rules._quantize import kmeans
from captum_rnn.rules._rule_list import ListRule, RuleList, RuleListReport, fit_rule_list
from captum_rnn.rules._tomita_dfas import tomita_dfa
from captum_rnn.rules._tomita_task import run_tomita, train_tomita

__all__ = [
    "DFA",
    "ExtractionReport",
    "ListRule",
    "RuleList",
    "RuleListReport",
    "Word",
    "extract_dfa",
    "fit_rule_list",
    "kmeans",
    "run_tomita",
    "tomita_dfa",
    "train_tomita",
]
