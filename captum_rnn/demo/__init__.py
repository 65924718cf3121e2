"""The demo and its tasks: the only part of captum-rnn that knows particular data sets.

``captum-rnn demo`` (:mod:`captum_rnn.demo.cli`) trains a model on one task, explains it
with every family of the library and writes an HTML report:

* ``sentiment`` (default, :mod:`captum_rnn.demo._sentiment`): a bidirectional attention
  LSTM on human-rated movie snippets;
* ``tomita`` (:mod:`captum_rnn.demo._tomita`): a regular language and its automaton;
* ``vowels`` (:mod:`captum_rnn.demo._vowels`): speaker recognition on speech frames.

Nothing in the library imports this package (``docs/ARCHITECTURE.md``).
"""

from captum_rnn.demo._sentiment import TASKS, DemoConfig, run_demo
from captum_rnn.demo._tomita import run_tomita_demo
from captum_rnn.demo._tomita_task import run_tomita, train_tomita
from captum_rnn.demo._vowels import run_vowels_demo
from captum_rnn.demo.report import Report, write_report

__all__ = [
    "TASKS",
    "DemoConfig",
    "Report",
    "run_demo",
    "run_tomita",
    "run_tomita_demo",
    "run_vowels_demo",
    "train_tomita",
    "write_report",
]
