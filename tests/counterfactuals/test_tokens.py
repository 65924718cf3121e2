import importlib.util
import io
import statistics

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import captum_rnn
from captum_rnn import Counterfactual, counterfactuals, token_counterfactual
from captum_rnn._counterfactuals._tokens import apply_edits, automaton_candidates
from tests.counterfactuals._tomita_nets import (
    sample_words,
    tomita_net,
    true_edits,
    true_substitutions,
)
from tests.rules._cue_net import cue_net, one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

GRAMMARS = (2, 3, 4, 5, 6, 7)


def test_flips_are_verified_and_minimal():
    model, held = cue_net()
    flips = 0
    for seq in held.sequences[:5]:
        cf = token_counterfactual(model, seq, max_edits=1)
        pred = int(model(seq[None]).argmax(-1))
        flips += cf.flipped
        if cf.flipped:
            assert int(model(cf.counterfactual[None]).argmax(-1)) != pred
            assert len(cf.edits) == int((cf.counterfactual != seq).sum()) == 1
        else:
            assert torch.equal(cf.counterfactual, seq)
    assert flips >= 4  # one swap of the cue word flips the class


def _training_words(vocab):
    return [torch.tensor(vocab.encode(list(w))) for w in sample_words(200, seed=99, shortest=1)]


@pytest.mark.parametrize("method", ["auto", "search"])
def test_tomita_counterfactuals_flip_with_the_true_fewest_substitutions(method):
    flipped = exact = 0
    sizes, total = [], 0
    for grammar in GRAMMARS:
        model, vocab = tomita_net(grammar)
        words = sample_words(15, seed=grammar)
        ids = [vocab.encode(list(w)) for w in words]
        cfs = counterfactuals(
            model, ids, vocab=vocab, train_dataset=_training_words(vocab), method=method
        )
        for word, cf in zip(words, cfs, strict=True):
            truth = true_substitutions(grammar, word)
            if truth is None:  # no word of this length is in the other class
                assert not cf.flipped and cf.edits == []
                continue
            total += 1
            assert cf.tokens == list(word)
            # verified: the model's class on the counterfactual is what the result says
            with torch.no_grad():
                before = int(model(cf.original[None]).argmax(-1))
                after = int(model(cf.counterfactual[None]).argmax(-1))
            assert (before, after) == (cf.original_prediction, cf.prediction)
            assert cf.flipped == (after != before)
            if not cf.flipped:
                continue
            flipped += 1
            sizes.append(len(cf.edits))
            exact += len(cf.edits) == truth
            assert len(cf.edits) >= truth  # nothing beats the true minimum
            assert set(cf.counterfactual_tokens) <= {"0", "1"}  # tokens seen in training
            assert cf.counterfactual.tolist() == apply_edits(cf.original.tolist(), cf.edits)
            if cf.minimal:  # a proof is never wrong
                assert len(cf.edits) == truth
    assert flipped >= 0.95 * total
    assert exact >= 0.9 * flipped
    assert statistics.median(sizes) <= 2
    if method == "auto":  # the automaton found most of them
        assert sum(cf.method == "automaton" for cf in cfs) >= len(cfs) // 2


def test_insertions_and_deletions_reach_the_true_edit_distance():
    exact = total = 0
    for grammar in (3, 4, 7):
        model, vocab = tomita_net(grammar)
        words = sample_words(6, seed=10 + grammar, shortest=3, longest=7)
        cfs = counterfactuals(model, [vocab.encode(list(w)) for w in words], edits="edit")
        for word, cf in zip(words, cfs, strict=True):
            assert cf.flipped
            total += 1
            assert cf.counterfactual.tolist() == apply_edits(cf.original.tolist(), cf.edits)
            substitutions = true_substitutions(grammar, word)
            assert substitutions is None or len(cf.edits) <= substitutions
            exact += len(cf.edits) == true_edits(grammar, word, len(cf.edits))
            with torch.no_grad():
                assert int(model(cf.counterfactual[None]).argmax(-1)) == cf.prediction
    assert exact >= 0.9 * total


def test_target_class_is_reached_or_left_alone():
    model, vocab = tomita_net(4)
    words = ["1111", "10001"]  # accepted, rejected
    ids = [vocab.encode(list(w)) for w in words]
    same = counterfactuals(model, ids, target=1, dfa=False)
    assert same[0].edits == [] and not same[0].flipped  # already class 1
    assert same[1].flipped and same[1].prediction == 1
    assert len(same[1].edits) == true_substitutions(4, "10001")


@settings(max_examples=60, deadline=None)
@given(
    states=st.integers(1, 4),
    symbols=st.integers(2, 3),
    data=st.data(),
)
def test_automaton_programme_matches_brute_force(states, symbols, data):
    import itertools

    table = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, states - 1), min_size=symbols, max_size=symbols),
                min_size=states,
                max_size=states,
            )
        )
    )
    goal = np.array(data.draw(st.lists(st.booleans(), min_size=states, max_size=states)))
    word = data.draw(st.lists(st.integers(0, symbols - 1), min_size=1, max_size=6))

    def run(w):
        q = 0
        for a in w:
            q = table[q, a]
        return q

    distances = [
        sum(a != b for a, b in zip(word, w, strict=True))
        for w in itertools.product(range(symbols), repeat=len(word))
        if goal[run(w)]
    ]
    symbols_ids = [10 + a for a in range(symbols)]
    cost, lists = automaton_candidates(table, 0, goal, word, symbols_ids, "substitute", 50)
    if not distances:
        assert cost is None and lists == []
        return
    assert cost == min(distances)
    assert lists
    for edits in lists:
        assert len(edits) == cost
        edited = apply_edits([10 + a for a in word], edits)
        assert goal[run([i - 10 for i in edited])]


def test_result_round_trips_through_json_and_renders_escaped(tmp_path):
    model, vocab = tomita_net(2)
    cf = counterfactuals(model, [vocab.encode(list("1010"))], vocab=vocab, edits="edit")[0]
    path = tmp_path / "cf.json"
    cf.save(path)
    back = Counterfactual.load(path)
    assert back.to_dict() == cf.to_dict()
    assert torch.equal(back.counterfactual, cf.counterfactual)
    cf.tokens = ["<script>", "&", "0", "1"]
    page = cf.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page
    cf.counterfactual_tokens = ["$\\frac$", "$5 or $10"] + ["a$b"] * (len(cf.counterfactual) - 2)
    fig = cf.plot()
    fig.savefig(io.BytesIO(), format="png")  # a "$" in a token never reaches mathtext
    drawn = [t.get_text() for t in fig.axes[0].texts]
    assert "$\\frac$" in drawn and "<script>" in drawn
    named = counterfactuals(
        model, [vocab.encode(list("1010"))], vocab=vocab, class_names=["reject", "<accept>"]
    )[0]
    assert named.title().startswith(("reject -> <accept>", "<accept> -> reject"))
    assert "&lt;accept&gt;" in named.to_html() and "<accept>" not in named.to_html()
    named.save(tmp_path / "named.json")
    assert Counterfactual.load(tmp_path / "named.json").class_names == ["reject", "<accept>"]
    old = cf.to_dict()
    del old["class_names"]  # a file written before class names were saved
    assert Counterfactual.from_dict(old).class_names is None
    with pytest.raises(ValueError, match="class_names"):
        counterfactuals(model, [vocab.encode(list("10"))], class_names=["one"])
    (tmp_path / "bad.json").write_text('{"format": "captum_rnn.counterfactual/1", "kind": "x"}')
    with pytest.raises(ValueError, match="kind"):
        Counterfactual.load(tmp_path / "bad.json")


def test_bad_arguments_name_the_keyword():
    model, vocab = tomita_net(2)
    ids = [vocab.encode(list("10"))]
    with pytest.raises(ValueError, match="method"):
        counterfactuals(model, ids, method="native_guide")
    with pytest.raises(ValueError, match="edits"):
        counterfactuals(model, ids, edits="swap")
    with pytest.raises(ValueError, match="max_edits"):
        counterfactuals(model, ids, max_edits=0)
    with pytest.raises(TypeError, match="unknown keyword"):
        counterfactuals(model, ids, colour="red")
    with pytest.raises(ValueError, match="target"):
        counterfactuals(model, ids, target=[0, 1])


def test_model_state_and_exports_are_kept():
    model, vocab = tomita_net(5)
    model.train()
    flags = [m.training for m in model.modules()]
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    try:
        counterfactuals(model, [vocab.encode(list("0110"))])
        assert [m.training for m in model.modules()] == flags
        for p, g in zip(model.parameters(), grads, strict=True):
            assert (p.grad is None) == (g is None) and (g is None or torch.equal(p.grad, g))
        assert torch.equal(torch.get_rng_state(), rng)
    finally:
        model.eval()
    assert captum_rnn.counterfactuals is counterfactuals
    # one public name, no module behind it to shadow or be shadowed
    assert importlib.util.find_spec("captum_rnn.counterfactuals") is None
    assert captum_rnn.Counterfactual is Counterfactual


@settings(max_examples=40, deadline=None)
@given(states=st.integers(1, 3), data=st.data())
def test_automaton_programme_with_insertions_and_deletions_matches_brute_force(states, data):
    import itertools

    from tests.counterfactuals._tomita_nets import levenshtein

    table = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, states - 1), min_size=2, max_size=2),
                min_size=states,
                max_size=states,
            )
        )
    )
    goal = np.array(data.draw(st.lists(st.booleans(), min_size=states, max_size=states)))
    word = data.draw(st.lists(st.integers(0, 1), min_size=1, max_size=3))

    def run(w):
        q = 0
        for a in w:
            q = table[q, a]
        return q

    cost, lists = automaton_candidates(table, 0, goal, word, [5, 6], "edit", 20)
    if not goal.any() or cost is None:
        assert cost is None and not any(goal[run(w)] for w in [(), (0,), (1,)])
        return
    text = "".join(map(str, word))
    best = min(
        levenshtein(text, "".join(map(str, w)))
        for n in range(len(word) + cost + 1)
        for w in itertools.product((0, 1), repeat=n)
        if goal[run(w)]
    )
    assert cost == best
    for edits in lists:
        assert len(edits) == cost
        edited = apply_edits([5 + a for a in word], edits)
        assert goal[run([i - 5 for i in edited])]


def test_automaton_edits_write_only_allowed_tokens():
    # accept iff the word holds symbol 2 (token 12); only tokens 10 and 11 may be written
    table = np.array([[0, 0, 1], [1, 1, 1]])
    goal = np.array([False, True])
    word = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]  # long: unreachable costs must not overflow
    cost, lists = automaton_candidates(
        table, 0, goal, word, [10, 11, 12], "edit", 5, allowed=np.array([True, True, False])
    )
    assert cost is None and lists == []
    cost, lists = automaton_candidates(table, 0, goal, word, [10, 11, 12], "substitute", 5)
    assert cost == 1 and all(e[0][2] == 12 for e in lists)
