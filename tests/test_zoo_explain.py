"""explain() on users' own models (tests/zoo/): correct numbers, not only no crash."""

from __future__ import annotations

import pytest
import torch
import zoo
from captum.attr import IntegratedGradients, LayerIntegratedGradients

import captum_rnn

TOKEN = [n for n in zoo.NAMES if zoo.build(n).token]
CONTINUOUS = [n for n in zoo.NAMES if not zoo.build(n).token]
STEPS = dict(n_steps=24, max_steps=24)


def _batch_first(case, x):
    return x if case.batch_first else x.transpose(0, 1)


def _state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
    )


@pytest.mark.parametrize("name", TOKEN)
def test_token_models_complete_and_skip_padding(name):
    case = zoo.build(name)
    before = _state(case.model)
    explanations = captum_rnn.explain(case.model, case.inputs, **case.hints, **STEPS)
    ids = _batch_first(case, case.inputs)
    lengths = case.lengths
    assert [len(e.scores) for e in explanations] == lengths.tolist()
    for i, e in enumerate(explanations):
        assert e.tokens == [str(t) for t in ids[i, : lengths[i]].tolist()]
    # completeness: sum of scores - delta = F(x) - F(padding everywhere)
    with torch.no_grad():
        out = case.call(case.inputs, lengths)
        base = case.call(torch.full_like(case.inputs, case.pad_id), lengths)
    column = 0 if out.shape[1] == 1 else None
    for i, e in enumerate(explanations):
        t = column if column is not None else e.target
        difference = float(out[i, t] - base[i, t])
        assert sum(e.scores) - e.delta == pytest.approx(difference, abs=1e-4)
    after = _state(case.model)
    assert after[1] == before[1]
    assert all(torch.equal(after[0][k], v) for k, v in before[0].items())


def test_log_probability_model_equals_layer_ig_by_hand():
    case = zoo.build("nll_gru")
    assert captum_rnn.adapt(case.model).mask_arg is None
    explanations = captum_rnn.explain(case.model, case.inputs, target=1, **STEPS)
    lig = LayerIntegratedGradients(case.model, case.embedding)
    expected = lig.attribute(
        case.inputs,
        baselines=torch.full_like(case.inputs, case.pad_id),
        target=1,
        n_steps=STEPS["n_steps"],
    ).sum(-1)
    for i, e in enumerate(explanations):
        n = int(case.lengths[i])
        torch.testing.assert_close(
            torch.tensor(e.scores, dtype=torch.float64),
            expected[i, :n].double(),
            rtol=1e-5,
            atol=1e-7,
        )
    seq = captum_rnn.adapt(case.model)
    seq.observe(case.call(case.inputs, None))
    assert seq.output == "log_probs" and seq.num_classes == 3


@pytest.mark.parametrize("name", CONTINUOUS)
def test_continuous_models_equal_integrated_gradients_by_hand(name):
    case = zoo.build(name)
    x = case.inputs
    explanations = captum_rnn.explain(case.model, x, target=1, **case.hints, **STEPS)
    expected = IntegratedGradients(lambda inp: case.call(inp, None)).attribute(
        x, baselines=torch.zeros_like(x), target=1, n_steps=STEPS["n_steps"]
    )
    for i, e in enumerate(explanations):
        torch.testing.assert_close(
            torch.tensor(e.feature_scores, dtype=torch.float64),
            expected[i].double(),
            rtol=1e-5,
            atol=1e-7,
        )


def test_a_time_major_hand_written_cell_needs_and_takes_its_hints():
    case = zoo.build("char_rnn")
    with pytest.raises(ValueError, match="pad_id="):
        captum_rnn.explain(case.model, case.inputs)
    with pytest.raises(ValueError, match="batch_first="):
        captum_rnn.explain(case.model, case.inputs, pad_id=0)
    [e] = captum_rnn.explain(case.model, case.inputs[:, :1], **case.hints, **STEPS)
    assert len(e.scores) == int(case.lengths[0])
    # not near zero everywhere: IG through the hand-written loop sees every step
    assert max(abs(s) for s in e.scores) > 1e-3


def test_a_seq2seq_model_explains_every_target_token_or_names_the_hint():
    case = zoo.build(zoo.SEQ2SEQ)
    with pytest.raises(ValueError, match="bos_id="):  # no target and no <s> to generate from
        captum_rnn.explain(case.model, case.inputs, **case.hints)
    exps = captum_rnn.explain(
        case.model, case.inputs[:, :2], target=case.labels[:, :2], **case.hints
    )
    n = int((case.labels[1:, 0] != case.pad_id).sum())
    assert len(exps[0].output_labels) == n and exps[0].target == case.labels[1 : n + 1, 0].tolist()
    with torch.no_grad():  # teacher forced, with the tutorial's dummy step 0 skipped
        logits = case.model(case.inputs[:, :1], case.labels[:, :1], 1.0)[1 : n + 1, 0]
    expected = logits.gather(-1, case.labels[1 : n + 1, :1])[:, 0].double()
    torch.testing.assert_close(
        torch.tensor(exps[0].output, dtype=torch.double), expected, atol=1e-5, rtol=1e-5
    )
    assert max(abs(d) for d in exps[0].delta) < 0.05 * float(expected.abs().max())


def test_a_lightning_module_with_dict_batches_explains_like_a_module():
    case = zoo.build("mfcc_lightning")
    a = captum_rnn.explain(case.model, case.inputs[:4], method="occlusion")
    b = captum_rnn.explain(case.model, case.inputs[:4], method="occlusion", features="cell")
    assert all(len(e.scores) == case.inputs.shape[1] for e in a + b)
    assert all(e.probability is not None and 0 <= e.probability <= 1 for e in a)


def test_a_forward_taking_its_hidden_state_works_through_every_entry_point():
    """PyTorch's word-language-model style (``forward(input, hidden)``) through the
    ``forward_kwargs`` hint: explain, benchmark, metrics and counterfactuals; the model's
    own call (``init_hidden`` per batch) is what gets explained."""
    case = zoo.build("hidden_lstm")
    m, x = case.model, case.inputs[:, :5]
    before = _state(m)
    for method in ("saliency", "occlusion", "lime", "decomposition"):
        explanations = captum_rnn.explain(m, x, method=method, **case.hints)
        assert [len(e.scores) for e in explanations] == case.lengths[:5].tolist()
    result = captum_rnn.benchmark(m, x, methods=["saliency", "occlusion"], progress=False,
                                  **case.hints)  # fmt: skip
    assert result.recommendation in ("saliency", "occlusion", None)
    cfs = captum_rnn.counterfactuals(m, x, train_dataset=case.train_data, **case.hints)
    with torch.no_grad():
        for cf in cfs:
            new = int(case.call(cf.counterfactual[:, None], None).argmax(1))
            old = int(case.call(cf.original[:, None], None).argmax(1))
            assert (new, old) == (cf.prediction, cf.original_prediction)
            assert (new != old) == cf.flipped
    # a non-zero initial state: the decomposition (relative to a zero state) refuses it
    ones = {"hidden": lambda b: (torch.ones(1, b, 16), torch.ones(1, b, 16))}
    with pytest.raises(ValueError, match="non-zero initial state"):
        captum_rnn.explain(m, x, method="decomposition", forward_kwargs=ones)
    after = _state(m)
    assert after[1] == before[1] and all(torch.equal(after[0][k], v) for k, v in before[0].items())
