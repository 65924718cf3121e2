"""Rules that test several n-grams ("contains any of"): a planted disjunction is found
whole, and the list beats the majority class and one-n-gram rules on held-out data."""

from __future__ import annotations

import json
import random

import pytest
import torch

from captum_rnn.data import Vocabulary
from captum_rnn.rules import RuleList, fit_rule_list

CUES = [("great",), ("superb",), ("not", "bad"), ("a", "gem")]


def planted(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Label 1 iff one of the cue n-grams occurs; "bad" and "gem" also occur alone."""
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(25)] + ["bad", "gem", "not", "a"]
    texts, labels = [], []
    for _ in range(n):
        toks = rng.choices(filler, k=rng.randint(3, 9))
        text = " ".join(toks)
        if rng.random() < 0.35:
            cue = " ".join(rng.choice(CUES))
            at = rng.randrange(len(toks) + 1)
            text = " ".join([*toks[:at], cue, *toks[at:]])
        words = text.split()
        grams = {tuple(words[i : i + k]) for k in (1, 2) for i in range(len(words))}
        texts.append(text)
        labels.append(int(any(c in grams for c in CUES)))
    return texts, labels


def test_one_rule_finds_the_whole_disjunction():
    texts, labels = planted(800, 0)
    test_texts, test_labels = planted(400, 1)
    rl = RuleList(max_rules=1, min_support=5, max_terms=4, class_names=["neg", "pos"])
    rl.fit(texts, labels)
    assert set(rl.rules_[0].ngrams) == set(CUES)
    assert rl.rules_[0].label == 1 and rl.rules_[-1].ngram is None
    assert rl.score(test_texts, test_labels) == 1.0
    # one n-gram per rule, same number of rules: strictly worse; majority worse still
    single = RuleList(max_rules=1, min_support=5).fit(texts, labels)
    majority = max(sum(test_labels), len(test_labels) - sum(test_labels)) / len(test_labels)
    assert majority < single.score(test_texts, test_labels) < 1.0
    assert str(rl).startswith('1. if contains "')
    assert ' or "' in str(rl).splitlines()[0]


def test_terms_survive_save_and_load(tmp_path):
    texts, labels = planted(300, 2)
    rl = RuleList(max_rules=2, min_support=3, max_terms=3).fit(texts, labels)
    assert any(r.alternatives for r in rl.rules_)
    rl.save(tmp_path / "rules.json")
    again = RuleList.load(tmp_path / "rules.json")
    assert again.predict(texts).tolist() == rl.predict(texts).tolist()
    assert [r.ngrams for r in again.rules_] == [r.ngrams for r in rl.rules_]
    data = json.loads((tmp_path / "rules.json").read_text())
    data["rules"][-1]["alternatives"] = [["x"]]  # a default cannot test n-grams
    with pytest.raises(ValueError, match="default"):
        RuleList.from_dict(data)


def test_bad_max_terms_is_named():
    with pytest.raises(ValueError, match="max_terms"):
        RuleList(max_terms=0).fit(["a b"], [0])
    with pytest.raises(ValueError, match="max_terms=3 needs criterion='gain'"):
        RuleList(max_terms=3, criterion="precision").fit(["a b"], [0])


def test_fit_rule_list_on_a_model_with_a_known_rule():
    texts, _ = planted(1200, 3)
    vocab = Vocabulary.build(texts, min_freq=1)
    ids, _ = vocab.encode_batch(texts)
    cue_ids = [[vocab.stoi[t] for t in cue] for cue in CUES]

    def model(x: torch.Tensor) -> torch.Tensor:
        hit = torch.zeros(x.shape[0], dtype=torch.bool)
        for cue in cue_ids:
            if len(cue) == 1:
                hit |= (x == cue[0]).any(1)
            else:
                hit |= ((x[:, :-1] == cue[0]) & (x[:, 1:] == cue[1])).any(1)
        return torch.stack([(~hit).float(), hit.float()], 1)

    rl = fit_rule_list(model, ids, vocab=vocab, max_rules=1, max_terms=4, min_support=5)
    assert rl.report.fidelity == 1.0 > rl.report.majority_fidelity
    one = fit_rule_list(model, ids, vocab=vocab, max_rules=1, min_support=5)
    assert one.report.fidelity < rl.report.fidelity
