"""Faithfulness metrics against values computed by hand on closed-form models."""

import math

import pytest
import torch
from torch import nn

import captum_rnn
from captum_rnn.metrics import (
    comprehensiveness,
    comprehensiveness_sufficiency,
    deletion_auc,
    deletion_curve,
    get_metric,
    infidelity,
    insertion_curve,
    kendall_tau,
    leave_one_out,
    loo_kendall,
    sensitivity_max,
    sufficiency,
)

from conftest import continuous_model, padded_batch, token_model

# Per-token scores of the linear model: the positive-class logit is their sum.
SCORES = [0.0, 0.0, 2.0, -1.0, 0.5, 0.25, 1.5, 0.7]
LENGTH_WEIGHT, BIAS = 0.1, -0.3


class LinearScorer(nn.Module):
    """Two classes; logits ``[0, sum_t s[x_t] + c * length + b]``.

    The embedding is one-dimensional and holds ``s``, so the model also reads embedded
    input ``(batch, time, 1)``, as the captum-rnn models do.
    """

    def __init__(self, scores=SCORES, length_weight=LENGTH_WEIGHT, bias=BIAS):
        super().__init__()
        self.padding_idx = 0
        self.vocab_size = len(scores)
        self.num_classes = 2
        self.embedding = nn.Embedding(len(scores), 1, padding_idx=0)
        with torch.no_grad():
            self.embedding.weight[:, 0] = torch.tensor(scores)
        self.length_weight, self.bias = length_weight, bias

    def lengths_of(self, x):
        steps = torch.arange(1, x.shape[1] + 1)
        return ((x != 0) * steps).amax(dim=1)

    def sequence_model_hints(self):  # the model contract (captum_rnn.adapt)
        return {"batch_first": True, "output": "logits"}

    def forward(self, x, lengths=None):
        emb = x if x.dtype.is_floating_point else self.embedding(x)
        if lengths is None:
            lengths = self.lengths_of(x)
        mask = torch.arange(emb.shape[1])[None, :] < lengths[:, None]
        z = (emb[..., 0] * mask).sum(1) + self.length_weight * lengths + self.bias
        return torch.stack([torch.zeros_like(z), z], dim=-1)


class LinearSeries(nn.Module):
    """Continuous input: one output ``sum_t w . x_t + c * length``."""

    def __init__(self, w=(1.0, -2.0), length_weight=0.1):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.length_weight = length_weight

    def sequence_model_hints(self):  # the model contract (captum_rnn.adapt)
        return {"batch_first": True, "output": "regression"}

    def forward(self, x, lengths=None):
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1])
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        z = ((x @ self.w) * mask).sum(1) + self.length_weight * lengths
        return z[:, None]


def p(tokens):
    """The positive-class probability of a token list, by the formula."""
    z = sum(SCORES[t] for t in tokens) + LENGTH_WEIGHT * len(tokens) + BIAS
    return 1 / (1 + math.exp(-z))


A = [2, 3, 4, 5, 6]
B = [6, 3]
IDS = torch.tensor([A, B + [0, 0, 0]])
# Ranking of A by attribution: positions 4, 0, 2, 3, 1. Padding of B is huge: ignored.
ATTR = torch.tensor([[3.0, -2.0, 1.0, 0.0, 5.0], [0.1, 0.9, 100.0, 100.0, 100.0]])


def test_comprehensiveness_and_sufficiency_by_hand_with_deletion():
    model = LinearScorer()
    comp, suff = comprehensiveness_sufficiency(model, IDS, ATTR, target=1)
    # n = 5: fractions 0.1..0.5 round half up to k = 1, 1, 2, 2, 3.
    removed = {1: [2, 3, 4, 5], 2: [3, 4, 5], 3: [3, 5]}
    kept = {1: [6], 2: [2, 6], 3: [2, 4, 6]}
    ks = [1, 1, 2, 2, 3]
    expected_comp = sum(p(A) - p(removed[k]) for k in ks) / 5
    expected_suff = sum(p(A) - p(kept[k]) for k in ks) / 5
    # n = 2: every fraction rounds to k = 1 (at least one token).
    assert comp.tolist() == pytest.approx([expected_comp, p(B) - p([6])], abs=1e-6)
    assert suff.tolist() == pytest.approx([expected_suff, p(B) - p([3])], abs=1e-6)
    assert comprehensiveness(model, IDS, ATTR, target=1).tolist() == pytest.approx(comp.tolist())
    assert sufficiency(model, IDS, ATTR, target=1).tolist() == pytest.approx(suff.tolist())


def test_replacement_keeps_the_length_and_uses_the_baseline_token():
    model = LinearScorer()
    comp = comprehensiveness(
        model, IDS[:1], ATTR[:1], target=1, removal="replace", baseline=7, fractions=[0.2, 0.6]
    )
    # k = 1: token 6 -> 7; k = 3: tokens 6, 2, 4 -> 7; the length stays 5.
    expected = ((p(A) - p([2, 3, 4, 5, 7])) + (p(A) - p([7, 3, 7, 5, 7]))) / 2
    assert float(comp) == pytest.approx(expected, abs=1e-6)


def test_deleting_every_token_leaves_one_baseline_token():
    model = LinearScorer()
    comp, suff = comprehensiveness_sufficiency(model, torch.tensor([[4]]), torch.ones(1, 1), 1)
    assert float(comp) == pytest.approx(p([4]) - p([0]), abs=1e-6)  # [0]: padding, length 1
    assert float(suff) == pytest.approx(0.0, abs=1e-12)  # keeping all is the input itself


def test_raw_output_and_absolute_ranking():
    model = LinearScorer()
    comp = comprehensiveness(
        model, IDS[:1], ATTR[:1], 1, output="raw", absolute=True, fractions=[0.2]
    )
    # |attr| ranks position 4 first (5.0); the logit drops by s[6] + c.
    assert float(comp) == pytest.approx(SCORES[6] + LENGTH_WEIGHT, abs=1e-6)


def test_deletion_and_insertion_curves_by_hand():
    model = LinearScorer()
    deletion = deletion_curve(model, IDS[:1], ATTR[:1], 1, steps=None)
    left = [A, [2, 3, 4, 5], [3, 4, 5], [3, 5], [3], [0]]
    assert deletion.fractions[0].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert deletion.values[0].tolist() == pytest.approx([p(t) for t in left], abs=1e-6)
    values = [p(t) for t in left]
    trapezoid = sum(0.2 * (a + b) / 2 for a, b in zip(values, values[1:], strict=False))
    assert float(deletion.area[0]) == pytest.approx(trapezoid, abs=1e-6)

    insertion = insertion_curve(model, IDS[:1], ATTR[:1], 1, steps=None)
    inserted = [[0], [6], [2, 6], [2, 4, 6], [2, 4, 5, 6], A]
    assert insertion.values[0].tolist() == pytest.approx([p(t) for t in inserted], abs=1e-6)

    coarse = deletion_curve(model, IDS[:1], ATTR[:1], 1, steps=2)
    assert coarse.fractions[0].tolist() == pytest.approx([0.0, 0.6, 1.0])  # k = 0, 3, 5
    assert coarse.values[0].tolist() == pytest.approx([p(A), p([3, 5]), p([0])], abs=1e-6)
    assert deletion_auc(model, IDS, ATTR, 1).shape == (2,)
    grid, mean = deletion.mean_curve(points=6)
    assert mean.tolist() == pytest.approx(values, abs=1e-6)
    assert deletion.plot() is not None


def test_leave_one_out_drops_are_the_token_scores():
    model = LinearScorer()
    drops = leave_one_out(model, IDS, 1, output="raw")
    expected = torch.tensor([[SCORES[t] + LENGTH_WEIGHT for t in A], [1.6, -0.9, 0, 0, 0]])
    torch.testing.assert_close(drops, expected.double(), atol=1e-6, rtol=0)
    replaced = leave_one_out(model, IDS, 1, output="raw", removal="replace")
    expected = torch.tensor([[SCORES[t] for t in A], [1.5, -1.0, 0, 0, 0]])
    torch.testing.assert_close(replaced, expected.double(), atol=1e-6, rtol=0)


def test_loo_kendall_and_kendall_tau_by_hand():
    model = LinearScorer()
    drops = leave_one_out(model, IDS, 1, output="raw")
    tau = loo_kendall(model, IDS, drops, 1, output="raw")
    assert tau.tolist() == pytest.approx([1.0, 1.0])
    assert loo_kendall(model, IDS, -drops, 1, drops=drops).tolist() == pytest.approx([-1.0, -1.0])
    # Ties in a: pairs (1,2) tied; 5 concordant, 0 discordant: 5 / sqrt(5 * 6).
    a, b = torch.tensor([1.0, 2, 2, 3]), torch.tensor([1.0, 3, 2, 4])
    assert float(kendall_tau(a, b)) == pytest.approx(5 / math.sqrt(30))
    assert float(kendall_tau(a, -b)) == pytest.approx(-5 / math.sqrt(30))
    one = loo_kendall(model, torch.tensor([[4]]), torch.ones(1, 1), 1)
    assert math.isnan(float(one[0]))  # one token: undefined


def _raw_infidelity(*args, **kwargs):
    # The exact per-token scores are those of the logit: read the raw output (the
    # deprecated output="raw"; classifiers are scored by probabilities by default).
    with pytest.deprecated_call():
        return infidelity(*args, output="raw", **kwargs)


def test_infidelity_is_zero_for_the_exact_attribution():
    model = LinearScorer()
    exact = torch.tensor([[SCORES[t] for t in A], [1.5, -1.0, 9.0, 9.0, 9.0]])
    for noise in ("subset", "gaussian"):
        for normalize in (True, False):
            values = _raw_infidelity(model, IDS, exact, 1, noise=noise, normalize=normalize)
            assert values.tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    # Twice the truth: normalisation rescales it away; without it, removing every token
    # (scale=1) errs by exactly sum(s).
    assert _raw_infidelity(model, IDS, 2 * exact, 1).tolist() == pytest.approx([0, 0], abs=1e-6)
    raw = _raw_infidelity(model, IDS, 2 * exact, 1, scale=1.0, normalize=False)
    assert raw.tolist() == pytest.approx([3.25**2, 0.5**2], abs=1e-6)


def test_sensitivity_max_by_hand():
    model = LinearScorer()
    # The gradient of a linear model is constant: saliency never changes.
    assert sensitivity_max(model, IDS, "saliency", 1).tolist() == pytest.approx([0, 0], abs=1e-9)
    # input x gradient is the embedding itself: its change is the noise, bounded by
    # radius * std * sqrt(n) relative to the embedding's norm.
    values = sensitivity_max(model, IDS, "input_x_gradient", 1, radius=0.05)
    emb = model.embedding(IDS)[..., 0].detach()
    mask = IDS != 0
    std = float(emb[mask].std())
    for i, n in enumerate([5, 2]):
        bound = 0.05 * std * math.sqrt(n) / float(emb[i, :n].norm())
        assert 0 < float(values[i]) <= bound * (1 + 1e-6)


def test_continuous_input_by_hand():
    model = LinearSeries()
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.5, 0.5]]])
    value = [1.0, -2.0, 0.0, -0.5]  # w . x_t

    def z(steps):
        return sum(value[t] for t in steps) + 0.1 * len(steps)

    attr = torch.tensor([[0.3, 0.1, 0.9, 0.2]])  # ranks 2, 0, 3, 1
    comp, suff = comprehensiveness_sufficiency(model, x, attr, fractions=[0.25, 0.5])
    assert float(comp) == pytest.approx(
        ((z(range(4)) - z([0, 1, 3])) + (z(range(4)) - z([1, 3]))) / 2
    )
    assert float(suff) == pytest.approx(((z(range(4)) - z([2])) + (z(range(4)) - z([0, 2]))) / 2)
    # Replacement by a per-feature baseline: w . (0.5, 0.5) = -0.5 at each replaced step.
    replaced = comprehensiveness(
        model, x, attr, fractions=[0.5], removal="replace", baseline=torch.tensor([0.5, 0.5])
    )
    assert float(replaced) == pytest.approx(z(range(4)) - (-0.5 - 2.0 - 0.5 - 0.5 + 0.4))
    # Shorter true length: the padded step is never ranked or removed.
    comp2 = comprehensiveness(
        model, x, torch.tensor([[0.3, 0.1, 0.9, 50.0]]), lengths=[3], fractions=[0.34]
    )
    assert float(comp2) == pytest.approx(z([0, 1, 2]) - z([0, 1]))
    assert infidelity(model, x, torch.tensor([value]), noise="gaussian").item() == pytest.approx(
        0, abs=1e-9
    )


def test_metric_descriptions_declare_direction_and_range():
    assert get_metric("comprehensiveness").higher_is_better
    assert not get_metric("sufficiency").higher_is_better
    assert get_metric("deletion_auc").direction == "lower"
    assert get_metric("insertion_auc").range == (0.0, 1.0)
    assert get_metric("infidelity").range[1] == math.inf
    with pytest.raises(ValueError, match="metric must be one of"):
        get_metric("accuracy")


def _all_metrics(model, ids, attr, lengths=None):
    comp, suff = comprehensiveness_sufficiency(model, ids, attr, lengths=lengths)
    return torch.stack(
        [
            comp,
            suff,
            deletion_auc(model, ids, attr, lengths=lengths),
            deletion_auc(model, ids, attr, lengths=lengths, removal="replace"),
            loo_kendall(model, ids, attr, lengths=lengths),
            infidelity(model, ids, attr, lengths=lengths),
        ]
    )


def test_padding_length_changes_nothing_on_an_rnn():
    model = token_model("lstm-bi-additive")
    ids, lengths = padded_batch(batch=3, max_len=8)
    attr = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    short = _all_metrics(model, ids, attr)
    padded_ids = torch.cat([ids, torch.zeros(3, 30, dtype=torch.long)], dim=1)
    padded_attr = torch.cat([attr, torch.full((3, 30), 7.0)], dim=1)
    long = _all_metrics(model, padded_ids, padded_attr)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=0, equal_nan=True)
    # One sequence alone gives what it gives in the batch (infidelity, row 5, draws
    # its random perturbations per batch).
    alone = _all_metrics(model, ids[1:2, : int(lengths[1])], attr[1:2, : int(lengths[1])])
    torch.testing.assert_close(short[:5, 1:2], alone[:5], atol=1e-5, rtol=0, equal_nan=True)


def test_metrics_leave_the_model_as_it_was_and_use_eval_mode():
    model = captum_rnn.models.RNNClassifier(2, vocab_size=30, hidden_size=8, dropout=0.5)
    model.train()
    ids, _ = padded_batch(batch=2)
    attr = torch.rand(2, ids.shape[1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = comprehensiveness(model, ids, attr)
    second = comprehensiveness(model, ids, attr)
    torch.testing.assert_close(first, second)  # dropout off: deterministic
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    sensitivity_max(
        model,
        ids,
        "integrated_gradients",
        n_perturb_samples=2,
        method_kwargs={"n_steps": 8, "max_steps": 8},
    )
    assert model.training and all(p.grad is None for p in model.parameters())


def test_continuous_rnn_runs_every_metric():
    model = continuous_model()
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6, 4])
    explanations = captum_rnn.explain(model, x, lengths=lengths)
    values = _all_metrics(model, x, explanations, lengths=lengths)
    assert torch.isfinite(values).all()
    assert sensitivity_max(model, x, "saliency", lengths=lengths, n_perturb_samples=3).shape == (2,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(removal="cut"), "removal must be"),
        (dict(fractions=[0.0, 0.5]), "fractions must be"),
        (dict(output="softmax"), "output must be"),
        (dict(baseline=99), "outside the vocabulary"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        comprehensiveness(LinearScorer(), IDS, ATTR, 1, **kwargs)


def test_bad_inputs_and_attributions_are_named():
    model = LinearScorer()
    with pytest.raises(ValueError, match="attributions must have shape"):
        comprehensiveness(model, IDS, torch.ones(3, 5))
    with pytest.raises(ValueError, match="attributions contain NaN"):
        comprehensiveness(model, IDS, torch.full((2, 5), math.nan))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        comprehensiveness(model, torch.tensor([[1, 99]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="holds only padding"):
        comprehensiveness(model, torch.tensor([[0, 0]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="lengths must be in"):
        comprehensiveness(model, IDS, ATTR, lengths=[6, 2])
    with pytest.raises(ValueError, match="steps must be"):
        deletion_curve(model, IDS, ATTR, steps=0)
    with pytest.raises(ValueError, match="target must be in"):
        comprehensiveness(model, IDS, ATTR, target=2)
    with pytest.raises(ValueError, match="noise must be"):
        infidelity(model, IDS, ATTR, noise="salt")
    with pytest.raises(ValueError, match="method must be one of"):
        sensitivity_max(model, IDS, "no_such_method")
    two_outputs = captum_rnn.models.RNNRegressor(2, input_size=3, hidden_size=4).eval()
    with pytest.raises(ValueError, match="target is required"):
        comprehensiveness(two_outputs, torch.randn(1, 4, 3), torch.rand(1, 4))


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu():
    model = token_model("lstm-bi-additive")
    ids, _ = padded_batch(batch=3)
    attr = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0))
    cpu = _all_metrics(model, ids, attr)
    gpu = _all_metrics(model.cuda(), ids.cuda(), attr.cuda())
    # Infidelity (row 5) draws its perturbations from the device's generator.
    torch.testing.assert_close(cpu[:5], gpu[:5].cpu(), atol=1e-4, rtol=0, equal_nan=True)
    result = captum_rnn.benchmark(model, ids.cuda(), methods=["saliency"], progress=False)
    assert result.recommendation == "saliency" or result.recommendation is None


def test_kendall_tau_reads_values_equal_up_to_rounding_as_ties():
    """Two deletions leaving the same sequence have the same drop in exact arithmetic; a
    batch and a sequence alone round it differently (7e-9 apart here), which must not
    rank them."""
    scores = torch.tensor([[0.1, 0.3, 0.2, 0.4]], dtype=torch.float64)
    tied = torch.tensor([[0.5, 0.0036054710511905785, 0.0036054710511905785, 0.2]])
    noisy = tied.clone()
    noisy[0, 2] += 7e-9
    assert torch.equal(kendall_tau(scores, noisy), kendall_tau(scores, tied))
    apart = tied.clone()
    apart[0, 2] += 1e-3  # a real difference still counts
    assert not torch.equal(kendall_tau(scores, apart), kendall_tau(scores, tied))
