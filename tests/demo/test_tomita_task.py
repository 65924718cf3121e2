"""run_tomita: the example's and the demo's Tomita task, on a quick setting."""

from __future__ import annotations

import json

import pytest
import torch

from captum_rnn.demo import run_tomita, train_tomita
from captum_rnn.rules import DFA, tomita_dfa


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_run_tomita_quick_writes_diagrams_and_a_json_row(tmp_path):
    row = run_tomita(1, "gru", tmp_path / "out", quick=True, seed=0)
    json.dumps(row)  # JSON-ready
    assert row["grammar"] == 1 and row["cell"] == "gru"
    assert row["minimal_states"] == tomita_dfa(1).num_states == 2
    assert 0.0 <= row["fidelity"] <= 1.0 and 0.0 <= row["fidelity_longer"] <= 1.0
    dfa = DFA.from_dict(row["dfa"])
    assert dfa.num_states == row["states"]
    assert row["exact"] == (dfa.equivalent(tomita_dfa(1)) is None)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["tomita1_gru.dot", "tomita1_gru.json", "tomita1_gru.png"]
    assert (tmp_path / "out" / "tomita1_gru.dot").read_text().startswith("digraph")
    assert DFA.load(tmp_path / "out" / "tomita1_gru.json") == dfa


def test_train_tomita_is_deterministic_and_checks_its_arguments():
    a, acc_a, _ = train_tomita(4, "lstm", hidden_size=4, n_train=200, max_epochs=2, seed=3)
    b, acc_b, _ = train_tomita(4, "lstm", hidden_size=4, n_train=200, max_epochs=2, seed=3)
    assert acc_a == acc_b and not a.training
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ValueError, match="grammar"):
        train_tomita(8)
    with pytest.raises(ValueError, match="cell"):
        train_tomita(1, "transformer")
