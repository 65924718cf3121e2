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


def test_classes_are_recorded_and_checked(tmp_path):
    import json

    import numpy as np
    import torch

    texts, labels = planted(200, 4)
    # a model that predicted one class on these examples is still a binary model:
    # the list records 2 classes and reads back (it recorded 1 and could not be loaded)
    one = RuleList(min_support=2).fit(texts, [0] * len(texts))
    assert one.n_classes_ == 2
    one.save(tmp_path / "one.json")
    assert RuleList.load(tmp_path / "one.json").predict(texts).tolist() == [0] * len(texts)
    rl = RuleList(min_support=2).fit(texts, labels)
    # labels from a model with more classes than the list's
    with pytest.raises(ValueError, match=r"labels holds class 2, outside the classes \[0, 2\)"):
        rl.score(texts, [2] + labels[1:])
    with pytest.raises(ValueError, match=r"outside the classes \[0, 2\)"):
        rl.rule_stats(texts, [5] * len(texts))
    with pytest.raises(ValueError, match=r"labels holds class 3, outside the classes \[0, 3\)"):
        RuleList().fit(texts, [3] + labels[1:], n_classes=3)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        RuleList().fit(texts, labels, n_classes=1)
    data = rl.to_dict()
    data["rules"][0]["label"] = 1.7  # read as 1 before
    with pytest.raises(ValueError, match="label must be an int class, got 1.7"):
        RuleList.from_dict(json.loads(json.dumps(data)))

    # fit_rule_list records the model's classes, not the largest class it happened to predict
    def three_classes(x):
        return torch.stack(
            [(x == 4).any(1), (x != 4).all(1), torch.zeros(len(x), dtype=bool)], 1
        ).float()

    ids = torch.randint(3, 8, (40, 5), generator=torch.Generator().manual_seed(0))
    fitted = fit_rule_list(three_classes, ids, pad_index=0, min_support=1)
    assert fitted.n_classes_ == 3 and fitted.to_dict()["n_classes"] == 3

    def nan_for_row_3(x):  # argmax read a NaN row as class 0
        scores = three_classes(x)
        scores[3] = np.nan
        return scores

    with pytest.raises(ValueError, match=r"NaN or infinite scores for inputs\[3\]"):
        fit_rule_list(nan_for_row_3, ids, pad_index=0)
