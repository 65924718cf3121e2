"""captum_rnn.benchmark: discovery, the table, the recommendation and its reason."""

import json
import time

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import captum_rnn
from captum_rnn import BenchmarkResult, benchmark
from captum_rnn.attr import available_methods, get_method
from captum_rnn.data import Vocabulary, planted_cues

from conftest import token_model

# <pad>, <unk>, good, bad, fine, awful, nice, then 43 more tokens with random scores.
_G = torch.Generator().manual_seed(0)
SCORES = [0.0, 0.0, 2.0, -1.0, 0.5, -2.0, 1.0] + torch.randn(43, generator=_G).tolist()


class LinearScorer(nn.Module):
    """logits [0, sum_t s[x_t]]: integrated gradients from padding gives exactly s."""

    def __init__(self):
        super().__init__()
        self.padding_idx, self.vocab_size, self.num_classes = 0, len(SCORES), 2
        self.embedding = nn.Embedding(len(SCORES), 1, padding_idx=0)
        with torch.no_grad():
            self.embedding.weight[:, 0] = torch.tensor(SCORES)

    def sequence_model_hints(self):  # the model contract (captum_rnn.adapt)
        return {"batch_first": True, "output": "logits"}

    def forward(self, x, lengths=None):
        emb = x if x.dtype.is_floating_point else self.embedding(x)
        lengths = torch.full((x.shape[0],), x.shape[1]) if lengths is None else lengths
        mask = torch.arange(emb.shape[1])[None, :] < lengths[:, None]
        z = (emb[..., 0] * mask).sum(1)
        return torch.stack([torch.zeros_like(z), z], dim=-1)


LEXICON_IDS = torch.tensor([[2, 3, 4, 5, 6], [6, 5, 2, 0, 0], [3, 4, 2, 6, 0], [5, 2, 4, 3, 6]])
# 30 sequences of 4 to 10 tokens over the 48 scored tokens.
IDS = torch.randint(2, len(SCORES), (30, 10), generator=_G)
IDS[torch.arange(10)[None, :] >= torch.randint(4, 11, (30, 1), generator=_G)] = 0


def _exact(model, x, lengths, target):
    """The true contribution of each token to the positive logit (target 1 here)."""
    emb = model.embedding(x)[..., 0] if not x.dtype.is_floating_point else x[..., 0]
    return emb.detach().double()


def exact_but_slow(model, x, lengths, target):
    time.sleep(0.05)
    return _exact(model, x, lengths, target)


def exact_and_fast(model, x, lengths, target):
    return 1.5 * _exact(model, x, lengths, target)  # same ranking, other units


def reversed_ranking(model, x, lengths, target):
    return -_exact(model, x, lengths, target)


FROZEN = _exact(LinearScorer(), IDS, None, None)


def frozen_truth(model, x, lengths, target):
    """Right for this model, but computed without looking at the model."""
    return FROZEN[: x.shape[0], : x.shape[1]]


def test_recommends_the_fastest_faithful_method_and_says_why():
    model = LinearScorer()
    result = benchmark(
        model,
        IDS,
        methods=[exact_but_slow, exact_and_fast, reversed_ranking],
        metrics=["comprehensiveness", "sufficiency", "loo_kendall", "randomization"],
        target=1,
        progress=False,
    )
    assert isinstance(result, BenchmarkResult) and isinstance(result, list)
    assert [r["method"] for r in result] == [
        "exact_but_slow",
        "exact_and_fast",
        "reversed_ranking",
        "random",
    ]
    assert result.metrics == [
        "faithfulness",
        "comprehensiveness",
        "sufficiency",
        "loo_kendall",
        "randomization",
    ]
    exact = result.row("exact_and_fast")
    assert exact["loo_kendall"] == pytest.approx(1.0, abs=0.01)  # float ties of repeats
    assert result.row("reversed_ranking")["loo_kendall"] == pytest.approx(-1.0, abs=0.01)
    assert exact["faithfulness"] == pytest.approx(exact["comprehensiveness"] - exact["sufficiency"])
    assert result.row("random")["reference"] and not exact["reference"]
    # Both exact methods rank alike; the fast one is recommended, and the reason says so.
    assert result.recommendation == "exact_and_fast"
    assert "fastest" in result.reason and "within 10%" in result.reason
    assert "exact_but_slow" in result.reason or "most faithful" in result.reason


def test_an_explanation_that_ignores_the_model_is_never_recommended():
    result = benchmark(
        LinearScorer(),
        IDS,
        methods=[frozen_truth, exact_but_slow],
        metrics=["comprehensiveness", "sufficiency", "randomization"],
        target=1,
        progress=False,
    )
    frozen = result.row("frozen_truth")
    assert frozen["randomization"] == pytest.approx(1.0)  # unchanged by new weights
    assert frozen["faithfulness"] == pytest.approx(result.row("exact_but_slow")["faithfulness"])
    assert result.recommendation == "exact_but_slow"
    assert "frozen_truth" in result.reason and "randomisation" in result.reason


def test_table_markdown_plot_and_json():
    result = benchmark(
        LinearScorer(),
        IDS,
        methods=[exact_and_fast, "saliency"],
        metrics=["comprehensiveness", "sufficiency", "deletion_auc", "insertion_auc", "infidelity"],
        target=1,
        progress=False,
    )
    text = result.to_markdown()
    header = text.splitlines()[0]
    assert "comprehensiveness \u2191" in header and "sufficiency \u2193" in header
    assert "deletion_auc \u2193" in header and "ms / sequence" in header
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 1 + len(result)
    assert "random (chance)" in text and "**Recommendation:" in text
    assert isinstance(result.plot(), Figure)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["recommendation"] == result.recommendation
    assert "<table" in result.to_html()
    assert result.methods == ["exact_and_fast", "saliency"]


def test_discovers_every_applicable_method_and_skips_failures():
    model = token_model("lstm-bi-additive")
    ids = torch.tensor([[2, 3, 4, 5, 6], [7, 8, 9, 0, 0]])

    def broken(model, x, lengths, target):
        raise RuntimeError("this method cannot run")

    names = captum_rnn.metrics._benchmark.applicable_methods(model)
    expected = sorted(n for n in available_methods() if get_method(n).name == n)
    assert names == expected and "ig" not in names and "integrated_gradients" in names
    result = benchmark(
        model,
        ids,
        metrics=["loo_kendall"],  # shared leave-one-out drops: the cheapest metric
        method_kwargs={"lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30}},
        progress=False,
    )
    assert set(result.methods) | set(result.skipped) == set(names)
    failing = benchmark(
        model, ids, methods=[broken, "saliency"], metrics=["loo_kendall"], progress=False
    )
    assert "broken" in failing.skipped and "cannot run" in failing.skipped["broken"]
    assert failing.methods == ["saliency"]


def test_plausibility_columns_from_planted_cues_and_a_lexicon():
    data = planted_cues(6, length=(4, 6), vocab_size=5, seed=0)
    model = token_model("gru-dot")  # 30 ids: enough for the 9-token vocabulary
    result = benchmark(model, data, methods=["saliency"], metrics=None, progress=False)
    for name in ("auprc", "token_f1", "token_iou", "loo_kendall", "randomization"):
        assert name in result.metrics

    vocab = Vocabulary(["good", "bad", "fine", "awful", "nice"])
    lexicon = {"good": 1.9, "bad": -2.5, "fine": 0.8, "awful": -3.0, "nice": 1.8}
    lex = benchmark(
        LinearScorer(),
        LEXICON_IDS,
        methods=["integrated_gradients"],
        metrics=["lexicon_spearman"],
        lexicon=lexicon,
        vocab=vocab,
        progress=False,
    )
    # IG on a linear model from the padding baseline returns exactly s, whose order over
    # the five words matches the lexicon: good 2 / 1.9, nice 1 / 1.8, ..., awful -2 / -3.
    assert lex.row("integrated_gradients")["lexicon_spearman"] == pytest.approx(1.0)


def test_bad_arguments_are_named():
    model = LinearScorer()
    with pytest.raises(ValueError, match="needs a rationale"):
        benchmark(model, IDS, methods=["saliency"], metrics=["auprc"], progress=False)
    with pytest.raises(ValueError, match="metrics must be taken from"):
        benchmark(model, IDS, methods=["saliency"], metrics=["accuracy"], progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        benchmark(model, IDS, methods=["no_such_method"], progress=False)
    with pytest.raises(ValueError, match="tolerance"):
        benchmark(model, IDS, methods=["saliency"], tolerance=1.5, progress=False)
    with pytest.raises(TypeError, match="data must be"):
        benchmark(model, 3.0, progress=False)


def test_ig_beats_random_on_the_cue_task(cue_task):
    model, data = cue_task
    subset = planted_cues(12, length=(6, 16), vocab_size=30, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = benchmark(model, subset, methods=["integrated_gradients", "saliency"], progress=False)
    ig, random = result.row("integrated_gradients"), result.row("random")
    assert ig["faithfulness"] > random["faithfulness"] + 0.3
    assert ig["auprc"] > random["auprc"] + 0.5
    assert ig["randomization"] < 0.5 < random["randomization"]
    assert result.recommendation in ("integrated_gradients", "saliency")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


def test_continuous_input():
    from conftest import continuous_model

    model = continuous_model()
    x = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([6, 4, 5])
    result = benchmark(
        model,
        (x, lengths),
        methods=["saliency", "integrated_gradients"],
        metrics=["comprehensiveness", "sufficiency", "infidelity", "randomization"],
        progress=False,
    )
    assert result.methods == ["saliency", "integrated_gradients"]
    assert all(r["ms_per_sequence"] >= 0 for r in result)
    assert result.attributions["saliency"].shape == (3, 6)
    assert (result.attributions["saliency"][1, 4:] == 0).all()  # padding
