"""explain(outputs=...): every output step of a tagger or forecaster, one row each.

The all-outputs matrix is checked against a loop of one-output Captum calls at the same
settings, on users' models from tests/zoo (a time-major LSTM tagger, a GRU forecaster)
and on random tiny models (hypothesis)."""

from __future__ import annotations

import html

import pytest
import torch
import zoo
from captum.attr import FeatureAblation, IntegratedGradients, LayerIntegratedGradients
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn
from zoo.pos_tagger import WINDOW

import captum_rnn
from captum_rnn.explanation import Explanation, Explanations

IG = dict(n_steps=16)


def _close(ours, reference):
    ours, reference = torch.as_tensor(ours).double(), torch.as_tensor(reference).double()
    scale = float(reference.abs().max()) or 1.0
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def tagger():
    return zoo.build("pos_tagger")


@pytest.fixture(scope="module")
def forecaster():
    return zoo.build("multistep_forecaster")


# ------------------------------------------------------------------ tagger (time-major)
def test_tagger_ig_equals_a_loop_of_captum_ig(tagger):
    """Captum's IG assumes batch-first inputs, so for this time-major model the loop runs
    IntegratedGradients on batch-first embeddings through the tagger's own layers."""
    ids = tagger.inputs[:, :2]  # (time, batch): the model is time-major
    [e0, e1] = captum_rnn.explain(tagger.model, ids, **IG)
    lengths = tagger.lengths[:2].tolist()
    assert [len(e.tokens) for e in (e0, e1)] == lengths  # padding excluded (input axis)
    assert [len(e.output_labels) for e in (e0, e1)] == lengths  # ... and output axis
    m = tagger.model
    for b, e in enumerate((e0, e1)):
        x = ids[:, b : b + 1]
        with torch.no_grad():
            predicted = m(x)[:, 0].argmax(-1)
            embedded = m.word_embeddings(x).transpose(0, 1)  # (1, time, dim)
        assert e.target == predicted[: lengths[b]].tolist()
        for t in range(lengths[b]):

            def step_output(emb, t=t):
                h, _ = m.lstm(emb.transpose(0, 1))
                return torch.log_softmax(m.hidden2tag(h), dim=-1)[t]

            attr = IntegratedGradients(step_output).attribute(
                embedded, baselines=torch.zeros_like(embedded), target=int(predicted[t]), **IG
            )  # (1, time, dim)
            _close(e.scores[t], attr[0, : lengths[b]].sum(-1))
            # unidirectional: exactly zero after the output step
            assert all(v == 0.0 for v in e.scores[t][t + 1 :])
        assert e.extra["causal"] is True


def test_batch_first_tagger_ig_equals_a_loop_of_layer_ig():
    model = _Tagger(True, 4, 3, False, 0).eval()
    x = torch.tensor([[3, 5, 1, 7, 2, 0, 0]])
    [e] = captum_rnn.explain(model, x, **IG)
    for t in range(5):
        lig = LayerIntegratedGradients(lambda s, n, t=t: model(s, n)[:, t], model.emb)
        attr = lig.attribute(
            x, baselines=torch.zeros_like(x), target=e.target[t], additional_forward_args=(
                torch.tensor([5]),), **IG
        )  # fmt: skip
        _close(e.scores[t], attr[0, :5].sum(-1))


def test_tagger_feature_ablation_equals_a_loop_of_captum(tagger):
    ids = tagger.inputs[:, 2:4]
    es = captum_rnn.explain(tagger.model, ids, method="feature_ablation", outputs="all")
    for b, e in enumerate(es):
        n = int(tagger.lengths[2 + b])
        x = ids[:n, b : b + 1].T  # padding cut, as for one output; batch-first for Captum
        mask = torch.arange(n)[None, :]
        for t in range(n):
            fa = FeatureAblation(lambda s, t=t: tagger.model(s.T)[t])
            attr = fa.attribute(x, baselines=0, target=e.target[t], feature_mask=mask)
            _close(e.scores[t], attr[0].double())
            assert all(v == 0.0 for v in e.scores[t][t + 1 :])


def test_tagger_completeness_per_row(tagger):
    ids = tagger.inputs[:, :3]
    es = captum_rnn.explain(tagger.model, ids, n_steps=64)
    with torch.no_grad():
        full = tagger.model(ids)
        base = tagger.model(torch.zeros_like(ids))
    for b, e in enumerate(es):
        for t, (row, c, delta) in enumerate(zip(e.scores, e.target, e.delta, strict=True)):
            difference = float(full[t, b, c] - base[t, b, c])
            assert sum(row) - delta == pytest.approx(difference, rel=1e-4, abs=1e-4)
            assert abs(delta) <= 0.05 * abs(difference) + 1e-2


def _window_scores(explanations):
    """AUPRC of |attribution| for the rule's window over every (output t, input j <= t)
    cell, its chance level, and the share of |attribution| inside the window."""
    cells, inside = [], []
    for e in explanations:
        for t, row in enumerate(e.scores):
            for j in range(t + 1):
                cells.append(abs(row[j]))
                inside.append(t - j < WINDOW)
    cells, inside = torch.tensor(cells), torch.tensor(inside)
    hits = inside[torch.argsort(cells, descending=True, stable=True)].double()
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
    auprc = float((precision * hits).sum() / hits.sum())
    return auprc, float(hits.mean()), float(cells[inside].sum() / cells.sum())


def test_tagger_mass_inside_the_rule_window(tagger):
    """The tag at t counts the cue words among t-2..t: the explanation of output t must
    fall in that window. (Non-cue words inside it rightly get ~0, which caps the AUPRC.)"""
    fa = _window_scores(captum_rnn.explain(tagger.model, tagger.inputs, method="feature_ablation"))
    # IG from a neutral word (5, not a cue) rather than padding
    ig = _window_scores(captum_rnn.explain(tagger.model, tagger.inputs, baselines=5, **IG))
    for name, (auprc, chance, share) in (("feature_ablation", fa), ("integrated_gradients", ig)):
        print(f"\ntagger window, {name}: AUPRC {auprc:.3f} (chance {chance:.3f}), "
              f"share of |attribution| inside {share:.3f}")  # fmt: skip
    assert fa[0] >= fa[1] + 0.3 and fa[2] >= 0.95
    assert ig[0] >= ig[1] + 0.1 and ig[2] >= 0.8


# ------------------------------------------------------------------ forecaster
def test_forecaster_ig_and_ablation_equal_loops_of_captum(forecaster):
    x = forecaster.inputs[:2]
    es = captum_rnn.explain(forecaster.model, x, outputs="all", output="regression", **IG)
    fa = captum_rnn.explain(
        forecaster.model, x, method="feature_ablation", outputs="all", output="regression"
    )
    for b in range(2):
        e = es[b]
        assert e.output_labels == ["t+1", "t+2", "t+3", "t+4"]
        assert e.predicted is None and e.target == [0, 0, 0, 0]
        for h in range(4):
            ig = IntegratedGradients(lambda s, h=h: forecaster.model(s)[:, h])
            attr = ig.attribute(x[b : b + 1], baselines=0.0, **IG)[0]
            _close(e.feature_scores[h], attr)
            mask = torch.arange(x.shape[1])[None, :, None]
            ref = FeatureAblation(lambda s, h=h: forecaster.model(s)[:, h]).attribute(
                x[b : b + 1], baselines=0.0, feature_mask=mask
            )[0]
            _close(fa[b].feature_scores[h], ref)
        assert e.extra["causal"] is False  # a forecaster's outputs all read every input


def test_forecaster_selects_outputs(forecaster):
    x = forecaster.inputs[:1]
    [e] = captum_rnn.explain(forecaster.model, x, outputs=slice(1, 3), output="regression")
    assert e.output_labels == ["t+2", "t+3"] and e.extra["output_steps"] == [1, 2]
    [e] = captum_rnn.explain(forecaster.model, x, outputs=[3, -4], output="regression")
    assert e.output_labels == ["t+1", "t+4"]


# ------------------------------------------------------------------ errors
def test_clear_errors(forecaster, tagger):
    x = forecaster.inputs[:1]
    with pytest.raises(ValueError, match="output='regression'"):
        captum_rnn.explain(forecaster.model, x, outputs="all")
    with pytest.raises(ValueError, match="outside"):
        captum_rnn.explain(forecaster.model, x, outputs=[7], output="regression")
    with pytest.raises(ValueError, match="target must be"):
        captum_rnn.explain(tagger.model, tagger.inputs[:, :2], target=torch.zeros(3, 3).long())
    with pytest.raises(ValueError, match="output_steps=True"):
        captum_rnn.adapt(tagger.model)(tagger.inputs.T)
    [e] = captum_rnn.explain(tagger.model, tagger.inputs[:, :1], method="saliency")
    with pytest.raises(ValueError, match="output="):
        e.top(2)
    assert len(e.top(2, output=0)) == 2


# ------------------------------------------------------------------ JSON and HTML
def test_round_trip_and_escaped_html(tagger, tmp_path):
    names = ["<none>", "<one>", "two & more"]
    es = captum_rnn.explain(
        tagger.model, tagger.inputs[:, :2], method="feature_ablation", class_names=names
    )
    path = tmp_path / "tags.json"
    es.save(path)
    assert Explanations.load(path) == es
    assert Explanation.from_dict(es[0].to_dict()) == es[0]
    page = es.to_html()
    for label in set(es[0].output_labels):
        assert html.escape(label) in page
    assert "<none>" not in page and "<one>" not in page
    fig = es[0].plot()
    assert fig.axes[0].get_ylabel() == "output step"


# ------------------------------------------------------------------ random models
class _Tagger(nn.Module):
    def __init__(self, token, features, classes, bidirectional, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.token = token
        self.emb = nn.Embedding(9, features, padding_idx=0) if token else None
        self.rnn = nn.GRU(features, 5, batch_first=True, bidirectional=bidirectional)
        self.out = nn.Linear(10 if bidirectional else 5, classes)

    def forward(self, x, lengths):
        h, _ = self.rnn(self.emb(x) if self.token else x)
        return self.out(h)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    token=st.booleans(),
    bidirectional=st.booleans(),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    classes=st.integers(2, 4),
    method=st.sampled_from(
        ["integrated_gradients", "feature_ablation", "occlusion", "lime", "kernel_shap"]
    ),
    seed=st.integers(0, 5),
)
def test_any_shape_matches_one_output_calls(token, bidirectional, lengths, classes, method, seed):
    assume(method != "kernel_shap" or min(lengths) > 1)  # one feature: no Shapley kernel
    model = _Tagger(token, 3, classes, bidirectional, seed).eval()
    g = torch.Generator().manual_seed(seed)
    time = max(lengths)
    real = torch.arange(time)[None, :] < torch.tensor(lengths)[:, None]
    if token:
        x = torch.randint(1, 9, (len(lengths), time), generator=g) * real
    else:
        x = torch.randn(len(lengths), time, 3, generator=g) * real[..., None]
    options = IG if method == "integrated_gradients" else {}
    lengths_t = torch.tensor(lengths)
    es = captum_rnn.explain(model, x, method=method, lengths=lengths_t, **options)
    for b, e in enumerate(es):
        n = lengths[b]
        assert len(e.tokens) == n and len(e.scores) == n and all(len(r) == n for r in e.scores)
        if not bidirectional:
            assert all(v == 0.0 for t, r in enumerate(e.scores) for v in r[t + 1 :])
        if e.feature_scores is not None:
            assert torch.tensor(e.feature_scores).shape == (n, n, 3)
        # one-output calls at the same settings, on the same padded row
        for t in range(n):
            [one] = captum_rnn.explain(
                _Flat(model),
                x[b : b + 1],
                method=method,
                target=t * classes + e.target[t],
                lengths=lengths_t[b : b + 1],
                output="logits",
                **_one(options),
            )
            reference = torch.tensor(one.scores)
            if not bidirectional:  # a surrogate's fit leaves noise where the output cannot
                reference[t + 1 :] = 0.0  # look; the all-outputs rows hold exact zeros there
            _close(e.scores[t], reference)


def _one(options):
    return {**options, "max_steps": options["n_steps"]} if options else {}


class _Flat(nn.Module):
    """The tagger with its (batch, steps, classes) output flattened: one-output explain
    calls then pick ``step * classes + c``, the way a loop over outputs would."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, lengths):
        return self.model(x, lengths).reshape(x.shape[0], -1)


# ------------------------------------------------------------------ writer shards
def test_writer_shards_keep_both_axes(tmp_path):
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from captum_rnn.callbacks import ExplainingModule, ExplanationWriter, read_explanations

    model = _Tagger(True, 4, 3, False, 1).eval()
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 6, 2, 5, 4])
    ids = torch.randint(1, 9, (5, 6), generator=g) * (torch.arange(6) < lengths[:, None])
    reference = captum_rnn.explain(model, ids, method="feature_ablation", lengths=lengths)
    loader = DataLoader(TensorDataset(ids, lengths, torch.zeros(5)), batch_size=2)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
        callbacks=[ExplanationWriter(tmp_path / "out")],
    )  # fmt: skip
    trainer.predict(
        ExplainingModule(model, method="feature_ablation"),
        dataloaders=loader,
        return_predictions=False,
    )
    got = read_explanations(tmp_path / "out")
    assert len(got) == 5
    for g_, r in zip(got, reference, strict=True):
        assert g_.output_labels == r.output_labels and g_.tokens == r.tokens
        assert g_.target == r.target and g_.extra["output_steps"] == r.extra["output_steps"]
        _close(g_.scores, r.scores)
    arrays = read_explanations(tmp_path / "out", as_arrays=True)
    assert arrays["scores"].shape == (5, 6, 6)  # (sequences, outputs, inputs)


# ------------------------------------------------------------------ faithfulness per output
class _FlatProbabilities(nn.Module):
    """The time-major tagger's per-step probabilities, batch-first and flattened."""

    def __init__(self, tagger):
        super().__init__()
        self.tagger = tagger

    def forward(self, sentence):
        out = self.tagger(sentence).exp().transpose(0, 1)
        return out.reshape(out.shape[0], -1)


def test_faithfulness_per_output_step(tagger):
    from captum_rnn.metrics import (
        comprehensiveness_sufficiency,
        comprehensiveness_sufficiency_per_output,
    )

    x = tagger.inputs[:, :3]
    es = captum_rnn.explain(tagger.model, x, method="feature_ablation")
    comp, suff = comprehensiveness_sufficiency_per_output(tagger.model, x, es)
    assert [len(c) for c in comp] == [e.n_outputs for e in es]
    # output t's explanation measured on output t, as a one-output metric call would
    b, t = 1, 3
    row = torch.zeros(1, x.shape[0], dtype=torch.float64)
    row[0, : len(es[b].tokens)] = torch.tensor(es[b].scores[t])
    one_comp, one_suff = comprehensiveness_sufficiency(
        _FlatProbabilities(tagger.model), x[:, b : b + 1], row,
        torch.tensor([t * 3 + es[b].target[t]]), removal="replace", output="probs",
    )  # fmt: skip
    assert float(comp[b][t]) == pytest.approx(float(one_comp[0]), abs=1e-9)
    assert float(suff[b][t]) == pytest.approx(float(one_suff[0]), abs=1e-9)
    # better than random rows
    g = torch.Generator().manual_seed(0)
    for e in es:
        e.scores = torch.rand(e.n_outputs, len(e.tokens), generator=g).tolist()
    random_comp, random_suff = comprehensiveness_sufficiency_per_output(tagger.model, x, es)
    assert torch.cat(comp).mean() > torch.cat(random_comp).mean() + 0.1
    assert torch.cat(suff).mean() < torch.cat(random_suff).mean() - 0.1
    with pytest.raises(ValueError, match="removal='replace'"):
        comprehensiveness_sufficiency_per_output(tagger.model, x, es, removal="delete")


@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_surrogates_share_samples_and_match_one_output_calls(method, bidirectional):
    model = _Tagger(False, 3, 3, bidirectional, 2).eval()
    x = torch.randn(1, 7, 3, generator=torch.Generator().manual_seed(1))
    [e] = captum_rnn.explain(model, x, method=method, n_samples=120)
    for t in range(7):
        [one] = captum_rnn.explain(
            _Flat(model), x, method=method, target=t * 3 + e.target[t], output="logits",
            n_samples=120,
        )  # fmt: skip
        reference = torch.tensor(one.scores)
        if not bidirectional:
            reference[t + 1 :] = 0.0
        _close(e.scores[t], reference)


# ------------------------------------------------------------------ CUDA (run where lent)
@pytest.mark.gpu
def test_every_output_step_on_cuda_in_eval_mode_equals_cpu(tagger, forecaster):
    """cuDNN refuses the RNN backward in eval mode, and the outputs' backward passes are
    batched (vmapped) through it: the rows must still equal the CPU ones."""
    import copy

    for case, options in ((tagger, {}), (forecaster, {"outputs": "all", "output": "regression"})):
        x = case.inputs[:, :2] if case is tagger else case.inputs[:2]
        cpu = captum_rnn.explain(case.model, x, **IG, **options)
        model = copy.deepcopy(case.model).cuda().eval()
        gpu = captum_rnn.explain(model, x.cuda(), **IG, **options)
        for a, b in zip(cpu, gpu, strict=True):
            torch.testing.assert_close(
                torch.tensor(b.scores), torch.tensor(a.scores), atol=1e-4, rtol=1e-3
            )
        assert all(not m.training for m in model.modules())
