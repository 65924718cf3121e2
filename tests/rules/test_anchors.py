"""RuleExtraction: anchors that hold on held-out perturbations, padding never in a rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _cue_net import cue_net, one_thread  # noqa: F401 (fixture)
from captum.attr import Attribution

from captum_rnn.attr import Anchor, RuleExtraction
from captum_rnn.models import RNNClassifier

pytestmark = pytest.mark.usefixtures("one_thread")


def token_model(cell="gru", attention="dot"):
    # made here, not imported from a conftest: another conftest.py named module can shadow it
    torch.manual_seed(0)
    return RNNClassifier(
        2, vocab_size=30, embedding_dim=8, hidden_size=12, cell=cell, attention=attention
    ).eval()


def pad_to(ids, width):
    out = torch.zeros(ids.shape[0], width, dtype=torch.long)
    out[:, : ids.shape[1]] = ids
    return out


def held_out_batch(held, n=10):
    seqs = held.sequences[:n]
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return ids


def test_anchors_reach_the_requested_precision_on_held_out_perturbations():
    model, held = cue_net()
    ids = held_out_batch(held)
    rules = RuleExtraction(model)
    assert isinstance(rules, Attribution)
    mask = rules.attribute(ids, precision=0.9, seed=0)
    assert mask.shape == ids.shape and set(mask.unique().tolist()) <= {0.0, 1.0}
    anchors = rules.explain(
        ids, precision=0.9, seed=0, vocab=held.vocab, class_names=["negative", "positive"]
    )
    assert all(a.reached for a in anchors)
    # fresh perturbations, drawn with another seed than the search
    precision = rules.evaluate(ids, mask, n_samples=600, seed=123)
    assert (precision >= 0.85).all(), precision
    # a rule for a "good" sequence holds the planted cue token
    cue = held.cue_ids[1]
    with torch.no_grad():
        predicted = model(ids).argmax(1)
    for i, a in enumerate(anchors):
        assert a.label == int(predicted[i])
        if a.label == 1 and predicted[i] == held.labels[i]:
            assert cue in a.token_ids
            assert str(a).startswith('contains "good"') and "-> positive (precision" in str(a)


def test_padding_is_never_in_a_rule_and_does_not_change_it():
    model, held = cue_net()
    ids = held_out_batch(held, 4)
    rules = RuleExtraction(model)
    short = rules.attribute(ids, precision=0.9)
    long = rules.attribute(pad_to(ids, ids.shape[1] + 30), precision=0.9)
    assert torch.equal(long[:, : ids.shape[1]], short)
    assert long[:, ids.shape[1] :].abs().sum() == 0
    assert (short[ids == 0] == 0).all()
    a = rules.explain(ids, precision=0.9)
    b = rules.explain(pad_to(ids, ids.shape[1] + 7), precision=0.9)
    assert [x.positions for x in a] == [y.positions for y in b]


def test_coverage_on_data_and_rule_objects():
    model, held = cue_net()
    ids = held_out_batch(held, 6)
    corpus = held_out_batch(held, 40)
    anchors = RuleExtraction(model).explain(ids, precision=0.9, coverage_data=corpus)
    for a in anchors:
        assert isinstance(a, Anchor)
        expected = sum(all(t in set(row.tolist()) for t in a.token_ids) for row in corpus) / 40
        assert a.coverage == pytest.approx(expected)
        assert a.to_dict()["precision"] == a.precision
    empty = Anchor((), (), (), 0, "neg", 1.0, 0.9, 1.0, 64, True)
    assert str(empty) == "always -> neg (precision 1.00, coverage 1.00)"


def test_explaining_changes_nothing_and_is_deterministic():
    model = token_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([[4, 5, 6, 7, 0], [8, 9, 10, 0, 0]])
    rules = RuleExtraction(model.eval())
    a = rules.attribute(ids, precision=0.8, seed=3)
    assert torch.equal(a, rules.attribute(ids, precision=0.8, seed=3))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and all(p.requires_grad for p in model.parameters())


def test_target_and_additional_forward_args():
    calls = []

    def forward(x, lengths):
        calls.append(lengths.shape[0] == x.shape[0])
        # class 1 exactly when token 5 is present
        return torch.stack([(x != 5).all(1).float(), (x == 5).any(1).float()], dim=1)

    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 9, 3]])
    lengths = torch.tensor([3, 4])
    rules = RuleExtraction(forward)
    mask = rules.attribute(ids, additional_forward_args=(lengths,), precision=0.95, pad_index=0)
    assert mask[0].tolist() == [0.0, 1.0, 0.0, 0.0] and all(calls)
    forced = rules.explain(
        ids,
        target=[1, 1],
        additional_forward_args=(lengths,),
        precision=0.95,
        max_samples=2000,
        pad_index=0,
    )
    assert forced[0].reached and not forced[1].reached  # no token of row 1 makes class 1


def test_bad_input_errors():
    rules = RuleExtraction(token_model("lstm", None))
    with pytest.raises(TypeError, match="integer token ids"):
        rules.attribute(torch.rand(2, 3))
    with pytest.raises(ValueError, match="shape"):
        rules.attribute(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="only padding"):
        rules.attribute(torch.tensor([[4, 5], [0, 0]]))
    with pytest.raises(ValueError, match="padding id"):
        rules.attribute(torch.tensor([[4, 5]]), replacement=0)
    with pytest.raises(ValueError, match="target"):
        rules.attribute(torch.tensor([[4, 5]]), target=[0, 1])
    with pytest.raises(ValueError, match="precision"):
        rules.attribute(torch.tensor([[4, 5]]), precision=1.5)
    with pytest.raises(ValueError, match="class scores"):
        RuleExtraction(lambda x: x.sum(1).float()).attribute(torch.tensor([[4, 5]]), pad_index=0)
    with pytest.raises(ValueError, match="pad_index="):  # a callable's padding is never assumed
        RuleExtraction(lambda x: x.float()).attribute(torch.tensor([[4, 5]]))


def test_excluded_tokens_are_perturbed_but_never_in_a_rule():
    model, held = cue_net()
    ids = held_out_batch(held, 6)
    rules = RuleExtraction(model)
    found = rules.explain(ids, precision=0.9, seed=0)
    cues = {int(c) for c in held.cue_ids.values()}  # class -> cue token id
    used = {t for a in found for t in a.token_ids}
    assert used & cues  # the cue tokens carry the rules ...
    masks = rules.attribute(ids, precision=0.9, seed=0, exclude=sorted(cues))
    again = rules.explain(ids, precision=0.9, seed=0, exclude=sorted(cues))
    # ... and once excluded they never appear, though the search still runs
    assert not {t for a in again for t in a.token_ids} & cues
    assert not bool((masks.bool() & torch.isin(ids, torch.tensor(sorted(cues)))).any())
    assert all(0.0 <= a.precision <= 1.0 for a in again)


class TutorialLSTM(torch.nn.Module):
    """Time-major packed LSTM, pad id 1, unknown id 0, one logit: class 1 iff token 5."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 1, padding_idx=1)
        with torch.no_grad():
            self.embedding.weight.zero_()
            self.embedding.weight[5, 0] = 10.0
        self.rnn = torch.nn.LSTM(1, 1)
        self.fc = torch.nn.Linear(1, 1)

    def forward(self, text, text_lengths):
        emb = self.embedding(text)  # (time, batch, 1)
        mask = (torch.arange(text.shape[0])[:, None] < text_lengths[None, :]).float()
        return self.fc((emb[..., 0] * mask).amax(0, keepdim=True).T) - 5.0


def test_a_users_time_major_one_logit_model_with_pad_one():
    model = TutorialLSTM()
    with torch.no_grad():
        model.fc.weight.fill_(1.0)
        model.fc.bias.zero_()
    rules = RuleExtraction(model, output="logits")
    ids = torch.tensor([[2, 5, 3, 1], [4, 6, 1, 1]])  # batch-first; the contract moves it
    mask = rules.attribute(ids, precision=0.95, max_samples=2000)
    assert mask[0].tolist() == [0.0, 1.0, 0.0, 0.0]  # the anchor of row 0 is token 5
    assert float(mask[1, 2:].sum()) == 0.0  # padding (id 1) never in a rule
    [anchor] = rules.explain(ids[:1], precision=0.95, max_samples=2000)
    assert anchor.reached and anchor.label == 1 and anchor.token_ids == (5,)


def test_extract_dfa_on_a_users_one_logit_model_reads_its_probabilities():
    from captum_rnn.rules import extract_dfa

    model = TutorialLSTM()
    with torch.no_grad():
        model.fc.weight.fill_(1.0)
        model.fc.bias.zero_()
    # the language "contains b" over {a, b} with a -> 2, b -> 5; pad 1, unknown 0
    dfa = extract_dfa(model, {"a": 2, "b": 5}, output="logits", empty=False, max_length=6)
    for word in ["", "a", "b", "ab", "aab", "aaaa", "baaa"]:
        assert dfa.accepts(word) == ("b" in word), word
    # a list of tokens as the vocabulary: position = id
    tokens = ["<unk>", "<pad>", "a", "x", "y", "b"]
    again = extract_dfa(model, "ab", vocab=tokens, output="logits", empty=False, max_length=6)
    assert again.equivalent(dfa) is None


def test_fit_rule_list_on_a_users_model_takes_its_padding():
    from captum_rnn.rules import fit_rule_list

    model = TutorialLSTM()
    with torch.no_grad():
        model.fc.weight.fill_(1.0)
        model.fc.bias.zero_()
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([0, 2, 3, 4, 5, 6])[torch.randint(0, 6, (300, 8), generator=g)]
    lengths = torch.randint(3, 9, (300,), generator=g)
    ids[torch.arange(8)[None, :] >= lengths[:, None]] = 1  # pad id 1 after each sequence
    rules = fit_rule_list(model, ids, output="logits", max_rules=3, criterion="precision")
    assert rules.report.fidelity == 1.0
    assert all("1" not in (rule.ngram or ()) for rule in rules.rules_)  # padding never in a rule
    with pytest.raises(ValueError, match="pad_index="):
        fit_rule_list(lambda x: torch.stack([x.sum(1), -x.sum(1)], 1).float(), ids)


def test_labels_and_targets_outside_the_classes_are_refused(tmp_path):
    import json

    from captum_rnn.rules import RuleList, extract_dfa

    model = TutorialLSTM()
    rules = RuleExtraction(model, output="logits")
    for bad in (7, -1, np.int64(2), torch.tensor(7), [0, 2]):
        with pytest.raises(
            ValueError, match=r"target -?\d is outside the model's classes \[0, 2\)"
        ):
            rules.attribute(torch.tensor([[2, 5], [3, 4]]), target=bad)
    for bad in (1.0, True, "1", torch.tensor([1.0, 0.0])):
        with pytest.raises(ValueError, match="target must be None, an int"):
            rules.attribute(torch.tensor([[2, 5], [3, 4]]), target=bad)
    # numpy and tensor ints are ints
    assert rules.attribute(torch.tensor([[2, 5]]), target=np.int64(1)).shape == (1, 2)
    rl = RuleList(max_rules=1, min_support=1).fit([["a"], ["b"], ["a"]], [1, 0, 1])
    for bad in (99, -7):
        data = rl.to_dict()
        data["rules"][0]["label"] = bad
        path = tmp_path / f"rules{bad}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=rf"label {bad} is outside the classes \[0, 2\)"):
            RuleList.load(path)
    for limit in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="time_limit"):
            extract_dfa(lambda ws: [True] * len(ws), "01", time_limit=limit)
    with pytest.raises(ValueError, match="NaN"):
        extract_dfa(lambda ws: [float("nan")] * len(ws), "01", empty=False)


def test_nan_scores_are_refused_not_read_as_class_zero():
    nan = lambda x: torch.full((x.shape[0], 2), float("nan"))  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        RuleExtraction(nan).attribute(torch.tensor([[2, 3]]), pad_index=0)
