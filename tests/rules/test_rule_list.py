"""Global rule lists: planted rules recovered, held-out fidelity beats the majority rule."""

from __future__ import annotations

import random

import pytest
from _cue_net import cue_net, one_thread  # noqa: F401 (fixture)

from captum_rnn.rules import RuleList, fit_rule_list

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(n, seed):
    """Label 1 iff "not bad" or "great" occurs (and "awful" does not)."""
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(30)]
    texts, labels = [], []
    for _ in range(n):
        toks = rng.choices(filler, k=rng.randint(4, 10))
        cue = rng.choice(["great", "not bad", "awful", "bad", None])
        if cue:
            toks.insert(rng.randrange(len(toks) + 1), cue)
        text = " ".join(toks)
        texts.append(text)
        labels.append(int(cue in ("great", "not bad")))
    return texts, labels


@pytest.mark.parametrize("criterion", ["gain", "precision"])
def test_planted_rules_are_recovered(criterion):
    texts, labels = planted(600, 0)
    rl = RuleList(max_rules=4, min_support=3, class_names=["neg", "pos"], criterion=criterion)
    rl.fit(texts, labels)
    heads = [r.ngram for r in rl.rules_[:-1]]
    assert ("great",) in heads
    assert ("not", "bad") in heads or ("not",) in heads  # "not" occurs only in "not bad"
    test_texts, test_labels = planted(300, 1)
    assert rl.score(test_texts, test_labels) == 1.0
    assert rl.rules_[-1].ngram is None and rl.rules_[-1].label_name == "neg"
    assert sum(r.coverage for r in rl.rules_) == pytest.approx(1.0)
    assert str(rl).startswith("1. if contains")


def test_save_load_and_errors(tmp_path):
    texts, labels = planted(200, 2)
    rl = RuleList(min_support=2).fit(texts, labels)
    rl.save(tmp_path / "rules.json")
    again = RuleList.load(tmp_path / "rules.json")
    assert again.predict(texts).tolist() == rl.predict(texts).tolist()
    with pytest.raises(ValueError, match="empty"):
        RuleList().fit([], [])
    with pytest.raises(ValueError, match="labels"):
        RuleList().fit(["a b"], [0, 1])
    with pytest.raises(RuntimeError, match="fit"):
        RuleList().predict(["a"])
    with pytest.raises(ValueError, match="format"):
        RuleList.from_dict({"format": "x"})
    with pytest.raises(ValueError, match="criterion"):
        RuleList(criterion="entropy").fit(texts, labels)


def test_rule_list_of_a_network_beats_the_majority_rule():
    model, held = cue_net()
    from captum_rnn.data import planted_cues

    data = planted_cues(400, length=(6, 16), vocab_size=30, seed=7)
    width = max(len(s) for s in data.sequences) + 5  # extra padding: never a rule
    import torch

    ids = torch.zeros(len(data.sequences), width, dtype=torch.long)
    for i, s in enumerate(data.sequences):
        ids[i, : len(s)] = s
    rl = fit_rule_list(model, ids, vocab=data.vocab, class_names=["bad", "good"], max_rules=5)
    report = rl.report
    assert report.n_held_out == 100 and report.n_train == 300
    assert report.fidelity > report.majority_fidelity + 0.3
    assert report.fidelity >= 0.9
    assert all(r.ngram is None or "<pad>" not in r.ngram for r in rl.rules_)
    assert any(r.ngram in (("good",), ("bad",)) for r in rl.rules_)
    assert sum(r.support for r in report.held_out_rules) == report.n_held_out


def test_excluded_tokens_never_appear_in_rules(tmp_path):
    texts, labels = planted(600, 3)
    rl = RuleList(max_rules=4, min_support=3, exclude=["great"]).fit(texts, labels)
    assert all("great" not in r.ngram for r in rl.rules_[:-1])
    assert ("great",) in [
        r.ngram for r in RuleList(max_rules=4, min_support=3).fit(texts, labels).rules_[:-1]
    ]
    rl.save(tmp_path / "rules.json")
    assert RuleList.load(tmp_path / "rules.json").exclude == ["great"]
    with pytest.raises(TypeError, match="exclude"):
        RuleList(exclude="great")
