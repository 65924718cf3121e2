"""Rules a sequence classifier follows: automata, local anchors and global rule lists,
each with its fidelity measured against the network.

Example:
    >>> from captum_rnn.rules import extract_dfa, tomita_dfa
    >>> from captum_rnn.data import tomita_accepts
    >>> net = lambda words: [tomita_accepts(1, w) for w in words]
    >>> dfa = extract_dfa(net, "01", empty=True)
    >>> dfa.equivalent(tomita_dfa(1)) is None
    True
"""

from typing import Any

from captum_rnn.rules._anchors import Anchor, RuleExtraction
from captum_rnn.rules._dfa import DFA, Word
from captum_rnn.rules._extract import ExtractionReport, extract_dfa
from captum_rnn.rules._fidelity import (
    Counterexample,
    FidelityReport,
    FidelitySplit,
    dfa_fidelity,
    fidelity,
)
from captum_rnn.rules._quantize import kmeans
from captum_rnn.rules._rule_list import ListRule, RuleList, RuleListReport, fit_rule_list
from captum_rnn.rules._tomita_dfas import tomita_dfa

__all__ = [
    "Anchor",
    "Counterexample",
    "DFA",
    "ExtractionReport",
    "FidelityReport",
    "FidelitySplit",
    "ListRule",
    "RuleExtraction",
    "RuleList",
    "RuleListReport",
    "Word",
    "dfa_fidelity",
    "extract_dfa",
    "fidelity",
    "fit_rule_list",
    "kmeans",
    "tomita_dfa",
]

# Moved to the demo in 0.2 (they train on one particular data set); kept one release.
_MOVED_TO_DEMO = {"run_tomita": "_tomita_task", "train_tomita": "_tomita_task"}


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_DEMO:
        from captum_rnn._utils.deprecation import moved

        return moved(name, f"captum_rnn.demo.{_MOVED_TO_DEMO[name]}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
