"""Reference automata of the seven Tomita languages, built from the data module's tables.

The minimal complete automata live once, in :mod:`captum_rnn.data.datasets._tomita`
(which decides membership with them); this module only wraps them as :class:`DFA`.
"""

from __future__ import annotations

from captum_rnn.data.datasets._tomita import _DFAS, _check_grammar
from captum_rnn.rules._dfa import DFA

__all__ = ["tomita_dfa"]


def tomita_dfa(grammar: int) -> DFA:
    """The minimal complete DFA of Tomita language ``grammar`` over ``"0"``, ``"1"``.

    State 0 is the start; sink states are included (Tomita 3 has 5 states, see
    ``captum_rnn.data.TOMITA_DESCRIPTIONS``).

    Args:
        grammar: 1 to 7.

    Returns:
        The minimal DFA, its states numbered breadth-first from the start.

    Raises:
        ValueError: for a grammar outside 1..7.

    Example:
        >>> [tomita_dfa(g).num_states for g in range(1, 8)]
        [2, 3, 5, 4, 4, 3, 5]
    """
    _check_grammar(grammar)
    table, accepting = _DFAS[grammar]
    dfa = DFA("01", table, accepting).minimize()
    return dfa
