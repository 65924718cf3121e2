"""Two more users' models through every entry point: the nn.Transformer tutorial turned
classifier (time-major, ``src_key_padding_mask`` True at padding, no ``padding_idx``) and a
Hugging-Face-style bidirectional GRU (``attention_mask`` 1 at real tokens, a dataclass
output record). Numbers are checked against Captum called by hand on the model's own
forward with the user's own mask."""

from __future__ import annotations

import math

import pytest
import torch
import zoo
from captum.attr import DeepLift, IntegratedGradients, LayerIntegratedGradients, Saliency
from torch import nn

import captum_rnn
from captum_rnn.attr import (
    AttentionFlow,
    AttentionRollout,
    AttentionWeights,
    GradientAttentionRollout,
)

TRANSFORMER, HF = "transformer_tutorial", "hf_style_gru"
BOTH = [TRANSFORMER, HF]
STEPS = dict(n_steps=24, max_steps=24)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _rows(case, n):
    """The first ``n`` sequences in the model's own layout."""
    return case.inputs[:n] if case.batch_first else case.inputs[:, :n]


def _batch_first(case, x):
    return x if case.batch_first else x.transpose(0, 1)


def _native(case, x):
    return x if case.batch_first else x.transpose(0, 1)


def _hooks(model):
    return sum(
        len(getattr(m, name))
        for m in model.modules()
        for name in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
        )
    )


def _user_logits(case, ids, mask=None):
    """The model called as its user does (the mask from the ids), ids batch-first."""
    native = _native(case, ids)
    if case.name == TRANSFORMER:
        return case.model(native, native.T == case.pad_id if mask is None else ~mask)
    attention = (ids != case.pad_id).long() if mask is None else mask.long()
    return case.model(native, attention_mask=attention).logits


def _embedding_forward(case):
    """``f(embeddings, ids)``, batch-first: the user's forward with the embedding layer's
    output replaced (by a hand-written hook), the user's own mask from the ids."""

    def forward(embedded, ids):
        replacement = _native(case, embedded)
        handle = case.embedding.register_forward_hook(lambda m, i, o: replacement)
        try:
            return _user_logits(case, ids)
        finally:
            handle.remove()

    return forward


def _ig_by_hand(case, ids, target):
    """Captum's own integrated gradients from the pad embedding, per token (sum over dims)."""
    with torch.no_grad():
        embedded = case.embedding(ids)
        base = case.embedding(torch.full_like(ids, case.pad_id))
    if case.batch_first:  # Captum's LayerIntegratedGradients, the user's mask as an argument
        lig = LayerIntegratedGradients(
            lambda i, mask: case.model(i, attention_mask=mask).logits, case.embedding
        )
        scores = lig.attribute(
            ids,
            baselines=torch.full_like(ids, case.pad_id),
            target=target,
            additional_forward_args=((ids != case.pad_id).long(),),
            n_steps=STEPS["n_steps"],
        )
    else:  # time-major: Captum expands dim 0, so IG runs on batch-first embeddings
        scores = IntegratedGradients(_embedding_forward(case)).attribute(
            embedded,
            baselines=base,
            target=target,
            additional_forward_args=(ids,),
            n_steps=STEPS["n_steps"],
        )
    return scores.sum(-1)


# ---------------------------------------------------------------- the contract
def test_the_transformer_names_its_pad_id_and_adapt_says_what_it_read():
    case = zoo.build(TRANSFORMER)
    with pytest.raises(ValueError, match="pad_id="):
        captum_rnn.explain(case.model, _rows(case, 2))
    seq = captum_rnn.adapt(case.model, **case.hints)
    text = repr(seq)
    assert "mask_arg='src_key_padding_mask'" in text and "batch_first=False" in text
    assert seq.pad_id == 1 and seq.embedding is case.embedding
    hf = captum_rnn.adapt(zoo.build(HF).model)
    assert (hf.pad_id, hf.batch_first, hf.mask_arg) == (0, True, "attention_mask")


# ---------------------------------------------------------------- attention
ATTENTION = {
    "attention_weights": AttentionWeights,
    "attention_rollout": AttentionRollout,
    "attention_flow": AttentionFlow,
    "gradient_attention_rollout": GradientAttentionRollout,
}


@pytest.mark.parametrize("method", sorted(ATTENTION))
def test_attention_methods_explain_the_tutorial_transformer(method):
    """explain() runs the user's transformer through the contract (its own layout and
    mask) and equals the attention class called on the model's own input by hand."""
    case = zoo.build(TRANSFORMER)
    src = _rows(case, 5)
    with pytest.raises(ValueError, match="position="):  # its pooling is the user's code
        captum_rnn.explain(case.model, src, method=method, **case.hints)
    explanations = captum_rnn.explain(
        case.model, src, method=method, target=1, position="mean", **case.hints
    )
    by_hand = ATTENTION[method](case.model).attribute(
        src, target=1, additional_forward_args=(src.T == case.pad_id,), position="mean"
    )
    lengths = case.lengths[:5]
    assert [len(e.scores) for e in explanations] == lengths.tolist()
    for i, e in enumerate(explanations):
        n = int(lengths[i])
        torch.testing.assert_close(
            torch.tensor(e.scores), by_hand[i, :n].float(), rtol=1e-5, atol=1e-6
        )
        assert bool((by_hand[i, n:] == 0).all())  # padding gets exactly nothing
        if method in ("attention_rollout", "attention_flow"):
            assert sum(e.scores) == pytest.approx(1.0, abs=1e-5)
    # padded in front: the same as the model's own mask gives, padding still nothing
    front = _native(case, _padded_in_front(case, _batch_first(case, src)))
    explanations = captum_rnn.explain(
        case.model, front, method=method, target=1, position="mean", **case.hints
    )
    by_hand = ATTENTION[method](case.model).attribute(
        front, target=1, additional_forward_args=(front.T == case.pad_id,), position="mean"
    )
    for i, e in enumerate(explanations):
        n = int(lengths[i])
        assert bool((by_hand[i, : front.shape[0] - n] == 0).all())
        torch.testing.assert_close(
            torch.tensor(e.scores), by_hand[i, front.shape[0] - n :].float(), rtol=1e-5, atol=1e-6
        )


def test_attention_classes_take_hints_on_time_major_input():
    """With the contract's hints the padding is read off the ids in the model's own
    (time-major) layout: same result as the key_padding_mask the model passes itself."""
    case = zoo.build(TRANSFORMER)
    src = _rows(case, 4)  # (time, batch) = (10, 4)
    args = (src.T == case.pad_id,)
    for cls in (AttentionWeights, AttentionRollout):
        plain = cls(case.model).attribute(src, additional_forward_args=args)
        hinted = cls(case.model, pad_id=case.pad_id).attribute(src, additional_forward_args=args)
        assert plain.shape == (4, 10)
        torch.testing.assert_close(hinted, plain)
        real = _batch_first(case, src) != case.pad_id
        assert bool((hinted[~real] == 0).all()) and bool((hinted[real] > 0).all())


def test_a_model_without_attention_says_so():
    case = zoo.build(HF)
    with pytest.raises(TypeError, match="no attention"):
        captum_rnn.explain(case.model, _rows(case, 2), method="attention_rollout")


def test_the_benchmark_lists_attention_methods_for_a_users_transformer_only():
    from captum_rnn.metrics._benchmark import applicable_methods

    assert set(ATTENTION) <= set(applicable_methods(zoo.build(TRANSFORMER).model))
    assert not set(ATTENTION) & set(applicable_methods(zoo.build(HF).model))


# ---------------------------------------------------------------- gradient and perturbation
def _padded_in_front(case, ids):
    return torch.stack([torch.cat([s[s == case.pad_id], s[s != case.pad_id]]) for s in ids])


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize("where", ["end", "start"])
def test_integrated_gradients_equal_captum_by_hand_with_the_users_mask(name, where):
    case = zoo.build(name)
    ids = _batch_first(case, _rows(case, 6))
    if where == "start":
        ids = _padded_in_front(case, ids)
    native = _native(case, ids)
    explanations = captum_rnn.explain(case.model, native, target=1, **case.hints, **STEPS)
    expected = _ig_by_hand(case, ids, target=1)
    for i, e in enumerate(explanations):
        real = ids[i] != case.pad_id
        assert e.tokens == [str(t) for t in ids[i][real].tolist()]
        torch.testing.assert_close(
            torch.tensor(e.scores, dtype=torch.float64),
            expected[i][real].double(),
            rtol=1e-4,
            atol=1e-6,
        )


def _occlusion_by_hand(case, ids, target):
    """Per token: the target logit minus the same with that token's embedding replaced by
    the pad embedding, everything else (padding and the user's mask) as given."""
    forward = _embedding_forward(case)
    with torch.no_grad():
        embedded = case.embedding(ids)
        pad = case.embedding(torch.tensor([case.pad_id]))[0]
        full = forward(embedded, ids)[:, target]
        scores = torch.zeros(ids.shape, dtype=torch.float64)
        for t in range(ids.shape[1]):
            occluded = embedded.clone()
            occluded[:, t] = pad
            scores[:, t] = (full - forward(occluded, ids)[:, target]).double()
    return scores * (ids != case.pad_id)


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize("where", ["end", "start"])
def test_occlusion_explains_the_prediction_on_the_input_as_padded(name, where):
    """The bidirectional GRU reads its padding (masked only when pooling) and the
    transformer's positions move with left padding: occlusion must explain the output on
    the input as the user padded it, the output the explanation reports."""
    case = zoo.build(name)
    ids = _batch_first(case, _rows(case, 5))
    if where == "start":  # the same sentences, padded in front
        ids = _padded_in_front(case, ids)
    explanations = captum_rnn.explain(
        case.model, _native(case, ids), method="occlusion", target=1, **case.hints
    )
    expected = _occlusion_by_hand(case, ids, target=1)
    with torch.no_grad():
        logits = _user_logits(case, ids)
    for i, e in enumerate(explanations):
        real = ids[i] != case.pad_id
        assert e.tokens == [str(t) for t in ids[i][real].tolist()]
        assert e.output == pytest.approx(float(logits[i, 1]), abs=1e-5)
        torch.testing.assert_close(
            torch.tensor(e.scores, dtype=torch.float64), expected[i][real], rtol=1e-4, atol=1e-5
        )


class _OnEmbeddings(nn.Module):
    """A hand-written wrapper: the user's model on batch-first embeddings (the embedding
    layer's output replaced by a hook), called as its user does; DeepLift needs a module."""

    def __init__(self, case):
        super().__init__()
        self.model = case.model
        self.forward_on = _embedding_forward(case)

    def forward(self, embedded, ids):
        return self.forward_on(embedded, ids)


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize("method", ["saliency", "deeplift"])
def test_one_pass_gradient_methods_equal_captum_by_hand(name, method):
    case = zoo.build(name)
    native = _rows(case, 5)
    ids = _batch_first(case, native)
    explanations = captum_rnn.explain(case.model, native, method=method, target=1, **case.hints)
    with torch.no_grad():
        embedded = case.embedding(ids)
        base = case.embedding(torch.full_like(ids, case.pad_id))
    if method == "saliency":
        expected = Saliency(_embedding_forward(case)).attribute(
            embedded, target=1, additional_forward_args=(ids,)
        )
    else:
        expected = DeepLift(_OnEmbeddings(case)).attribute(
            embedded, baselines=base, target=1, additional_forward_args=(ids,)
        )
    expected = expected.sum(-1).double()
    for i, e in enumerate(explanations):
        real = ids[i] != case.pad_id
        torch.testing.assert_close(
            torch.tensor(e.scores, dtype=torch.float64), expected[i][real], rtol=1e-4, atol=1e-6
        )


def _output_at_baseline(case, ids, target):
    """The target logit with every real token's embedding replaced by the pad embedding
    (the user's mask and padding as given)."""
    with torch.no_grad():
        embedded = case.embedding(ids)
        pad = case.embedding(torch.tensor([case.pad_id]))[0]
        blank = torch.where((ids != case.pad_id)[..., None], pad, embedded)
        return _embedding_forward(case)(blank, ids)[:, target]


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize(
    "method", ["feature_ablation", "shapley_value_sampling", "kernel_shap", "timeshap", "lime"]
)
def test_perturbation_methods_on_the_input_as_padded(name, method):
    """Feature ablation equals occlusion by hand; the Shapley methods are efficient (the
    scores sum to the output minus the output at the baseline, on the input as padded);
    LIME ranks the planted cue first. Padding in front or behind, never scored."""
    case = zoo.build(name)
    ids = _batch_first(case, _rows(case, 4))
    ids = torch.stack(  # rows 0-1 padded in front, rows 2-3 behind
        [
            torch.cat([s[s == case.pad_id], s[s != case.pad_id]]) if i < 2 else s
            for i, s in enumerate(ids)
        ]
    )
    explanations = captum_rnn.explain(
        case.model, _native(case, ids), method=method, target=1, **case.hints
    )
    for i, e in enumerate(explanations):
        real = ids[i] != case.pad_id
        assert e.tokens == [str(t) for t in ids[i][real].tolist()]
        scores = torch.tensor(e.scores, dtype=torch.float64)
        if method == "feature_ablation":
            expected = _occlusion_by_hand(case, ids[i : i + 1], target=1)[0][real]
            torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-5)
        elif method != "lime":  # Shapley values: efficient (KernelSHAP up to its fit)
            gap = float(e.output - _output_at_baseline(case, ids[i : i + 1], 1)[0])
            assert float(scores.sum()) == pytest.approx(gap, abs=1e-3)
        else:
            cue = [str(t) for t in range(2, 4)] if name == TRANSFORMER else ["1", "2", "3"]
            top = e.tokens[int(scores.abs().argmax())]
            assert top in cue


# ---------------------------------------------------------------- batches, padding, state
@pytest.mark.parametrize("name", BOTH)
def test_a_batch_explains_like_its_sequences_one_by_one(name):
    case = zoo.build(name)
    native = _rows(case, 4)
    for method, options in (("integrated_gradients", STEPS), ("occlusion", {})):
        batch = captum_rnn.explain(case.model, native, method=method, **case.hints, **options)
        for i in range(4):
            one = native[i : i + 1] if case.batch_first else native[:, i : i + 1]
            [single] = captum_rnn.explain(case.model, one, method=method, **case.hints, **options)
            assert single.target == batch[i].target and single.tokens == batch[i].tokens
            torch.testing.assert_close(
                torch.tensor(single.scores), torch.tensor(batch[i].scores), rtol=1e-4, atol=1e-5
            )


def test_more_padding_changes_nothing_for_the_masked_transformer():
    """Its mask hides the padding: a sentence explains the same padded to 10 or to 25."""
    case = zoo.build(TRANSFORMER)
    src = _rows(case, 3)
    longer = torch.cat([src, torch.full((15, 3), case.pad_id)])
    for method, options in (("integrated_gradients", STEPS), ("feature_ablation", {})):
        a = captum_rnn.explain(case.model, src, method=method, **case.hints, **options)
        b = captum_rnn.explain(case.model, longer, method=method, **case.hints, **options)
        for x, y in zip(a, b, strict=True):
            assert x.tokens == y.tokens
            torch.testing.assert_close(
                torch.tensor(x.scores), torch.tensor(y.scores), rtol=1e-4, atol=1e-5
            )


def _state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        _hooks(model),
        torch.backends.mha.get_fastpath_enabled(),
    )


def _same(before, after):
    assert after[1:] == before[1:]
    assert all(torch.equal(after[0][k], v) for k, v in before[0].items())


@pytest.mark.parametrize("name", BOTH)
def test_explaining_leaves_the_model_as_it_was(name):
    """Parameters, every submodule's mode (one left in train mode by the user), the
    requires_grad flags (a frozen embedding), hooks and the fused-attention switch."""
    case = zoo.build(name)
    model, native = case.model, _rows(case, 3)
    dropout = next(m for m in model.modules() if isinstance(m, nn.Dropout))
    dropout.train()
    case.embedding.weight.requires_grad_(False)
    try:
        before = _state(model)
        methods = ["integrated_gradients", "saliency", "deeplift", "occlusion", "lime"]
        if name == TRANSFORMER:
            methods += sorted(ATTENTION)
        for method in methods:
            options = {"position": "mean"} if method in ATTENTION else {}
            captum_rnn.explain(model, native, method=method, **options, **case.hints)
            _same(before, _state(model))
        if name == TRANSFORMER:  # refused before it runs
            with pytest.raises(ValueError, match="position="):
                captum_rnn.explain(model, native, method="attention_flow", **case.hints)
            _same(before, _state(model))
        with pytest.raises(ValueError):
            captum_rnn.explain(model, native, method="integrated_gradients", target=7, **case.hints)
        _same(before, _state(model))
    finally:
        dropout.eval()
        case.embedding.weight.requires_grad_(True)


# ---------------------------------------------------------------- metrics and benchmark
def _probability_by_hand(case, sequences, target, width):
    """Softmax probability of ``target`` for unpadded id sequences, padded at the end to
    ``width`` (the batch's own: the GRU reads its padding) and called as the user does."""
    ids = torch.full((len(sequences), width), case.pad_id)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = s
    with torch.no_grad():
        return torch.softmax(_user_logits(case, ids).double(), -1)[:, target].diag()


@pytest.mark.parametrize("name", BOTH)
def test_comprehensiveness_and_sufficiency_equal_erasing_by_hand(name):
    from captum_rnn.metrics import comprehensiveness_sufficiency

    case = zoo.build(name)
    native = _rows(case, 5)
    explanations = captum_rnn.explain(case.model, native, method="occlusion", **case.hints)
    comp, suff = comprehensiveness_sufficiency(
        case.model, native, explanations, fractions=(0.3,), **case.hints
    )
    ids = _batch_first(case, native)
    rows = [s[s != case.pad_id] for s in ids]
    with torch.no_grad():
        target = _user_logits(case, ids).argmax(-1)
    removed, kept = [], []
    for row, e in zip(rows, explanations, strict=True):
        k = max(1, int(0.3 * len(row) + 0.5))
        top = torch.argsort(torch.tensor(e.scores), descending=True, stable=True)[:k]
        chosen = torch.zeros(len(row), dtype=torch.bool)
        chosen[top] = True
        removed.append(row[~chosen])
        kept.append(row[chosen])
    width = ids.shape[1]
    full = _probability_by_hand(case, rows, target, width)
    torch.testing.assert_close(comp, full - _probability_by_hand(case, removed, target, width))
    torch.testing.assert_close(suff, full - _probability_by_hand(case, kept, target, width))
    assert float(comp.mean()) > 0.3  # the planted cue carries the decision


@pytest.mark.parametrize("name", BOTH)
def test_the_benchmark_runs_on_the_users_model(name):
    case = zoo.build(name)
    methods = ["saliency", "occlusion", "integrated_gradients"]
    if name == TRANSFORMER:
        methods.append("attention_rollout")
    before = _state(case.model)
    result = captum_rnn.benchmark(
        case.model,
        _rows(case, 6),
        methods=methods,
        method_kwargs={"attention_rollout": {"position": "mean"}},
        progress=False,
        **case.hints,
    )
    _same(before, _state(case.model))  # the randomisation check restored the weights
    assert result.methods == methods and not result.skipped
    assert result.recommendation in methods
    for method in ("occlusion", "integrated_gradients"):  # faithful on a planted cue
        assert result.row(method)["comprehensiveness"] > 0.3
    # the benchmark scored what explain gives
    explanations = captum_rnn.explain(case.model, _rows(case, 6), "occlusion", **case.hints)
    for i, e in enumerate(explanations):
        scores = result.attributions["occlusion"][i, : len(e.scores)]
        torch.testing.assert_close(scores.double(), torch.tensor(e.scores).double())


# ---------------------------------------------------------------- counterfactuals
@pytest.mark.parametrize("name", BOTH)
def test_counterfactuals_flip_the_users_own_call(name):
    case = zoo.build(name)
    native = _rows(case, 4)
    train_ids = _batch_first(case, case.train_data[0])
    train = [s[s != case.pad_id] for s in train_ids[:200]]
    before = _state(case.model)
    cfs = captum_rnn.counterfactuals(
        case.model, native, train_dataset=train, max_edits=2, **case.hints
    )
    _same(before, _state(case.model))
    ids = _batch_first(case, native)

    def user_class(sequence):
        with torch.no_grad():
            return int(_user_logits(case, sequence[None]).argmax(-1))

    assert len(cfs) == 4
    for i, cf in enumerate(cfs):
        assert torch.equal(cf.original, ids[i][ids[i] != case.pad_id])
        assert case.pad_id not in cf.counterfactual.tolist()
        assert cf.original_prediction == user_class(cf.original)
        assert cf.prediction == user_class(cf.counterfactual)
        assert cf.flipped == (cf.prediction != cf.original_prediction)
    assert sum(cf.flipped for cf in cfs) >= 3  # one edit of the planted cue flips it


# ---------------------------------------------------------------- Lightning callbacks
class _Sentences(torch.utils.data.Dataset):
    """Unpadded id sequences and labels as Hugging-Face-style dict items."""

    def __init__(self, ids, labels, pad_id):
        self.items = [s[s != pad_id] for s in ids]
        self.labels = labels

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return {"input_ids": self.items[i], "labels": self.labels[i]}


def _hf_collate(items):
    """A tokenizer's padding: input_ids padded with 0 and attention_mask 1 at real tokens."""
    ids = torch.nn.utils.rnn.pad_sequence(
        [item["input_ids"] for item in items], batch_first=True, padding_value=0
    )
    labels = torch.stack([torch.as_tensor(item["labels"]) for item in items])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels}


def _lightning_hf():
    import copy

    import pytorch_lightning as pl

    class LitClassifier(pl.LightningModule):
        """The usual Lightning wrapper of a Hugging-Face-style model: batches are the
        tokenizer's dicts, the loss comes from the output record."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask=None, labels=None):
            return self.model(input_ids, attention_mask=attention_mask, labels=labels)

        def training_step(self, batch, batch_idx):
            return self(**batch).loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self(**batch).loss)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3)

    return LitClassifier(copy.deepcopy(zoo.build(HF).model))


def test_the_explanation_logger_on_a_lightning_wrapped_hf_style_model(tmp_path):
    import pytorch_lightning as pl
    from callbacks.callback_helpers import trainer

    from captum_rnn.callbacks import ExplanationLogger

    case = zoo.build(HF)
    train_ids, _, train_labels = case.train_data
    train = torch.utils.data.DataLoader(
        _Sentences(train_ids[:32], train_labels[:32], 0), batch_size=16, collate_fn=_hf_collate
    )
    val_data = _Sentences(case.inputs[:8], case.labels[:8], 0)
    val = torch.utils.data.DataLoader(val_data, batch_size=8, collate_fn=_hf_collate)
    pl.seed_everything(0, verbose=False)
    model = _lightning_hf()
    cb = ExplanationLogger(range(4), methods=("integrated_gradients", "occlusion"))
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(model, train, val)
    model.eval()
    for method, options in (
        ("integrated_gradients", dict(n_steps=32, max_steps=64)),
        ("occlusion", {}),
    ):
        logged = cb.last_explanations[method]
        assert [e.tokens for e in logged] == [
            [str(t) for t in val_data[i]["input_ids"].tolist()] for i in range(4)
        ]
        assert [e.label for e in logged] == case.labels[:4].tolist()
        direct = captum_rnn.explain(model, case.inputs[:4], method=method, **options)
        for got, want in zip(logged, direct, strict=True):
            torch.testing.assert_close(
                torch.tensor(got.scores), torch.tensor(want.scores), rtol=1e-5, atol=1e-6
            )


def test_trainer_predict_explains_time_major_batches_of_the_transformer(tmp_path):
    from callbacks.callback_helpers import trainer

    from captum_rnn.callbacks import ExplainingModule, ExplanationWriter, read_explanations

    case = zoo.build(TRANSFORMER)
    data = _Sentences(_batch_first(case, case.inputs[:, :10]), case.labels[:10], case.pad_id)

    def collate(items):  # the tutorial's layout: (seq_len, batch_size)
        src = torch.nn.utils.rnn.pad_sequence(
            [item["input_ids"] for item in items], padding_value=case.pad_id
        )
        return src, torch.stack([torch.as_tensor(item["labels"]) for item in items])

    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=collate)
    module = ExplainingModule(case.model, target="label", n_steps=24, **case.hints)
    before = _state(case.model)
    trainer(tmp_path, callbacks=[ExplanationWriter(tmp_path / "out")]).predict(
        module, loader, return_predictions=False
    )
    _same(before, _state(case.model))
    written = read_explanations(tmp_path / "out")
    direct = captum_rnn.explain(
        case.model, case.inputs[:, :10], target=case.labels[:10], n_steps=24, **case.hints
    )
    assert len(written) == len(direct) == 10
    for got, want in zip(written, direct, strict=True):
        assert got.tokens == want.tokens and got.target == want.target
        torch.testing.assert_close(
            torch.tensor(got.scores), torch.tensor(want.scores), rtol=1e-4, atol=1e-5
        )


def test_a_tokenizers_batch_is_refused_naming_what_to_pass():
    """A dict of input_ids / attention_mask is not read as a list of strings: the error
    says to pass the ids (the mask comes from pad_id)."""
    case = zoo.build(HF)
    batch = {"input_ids": case.inputs[:3], "attention_mask": (case.inputs[:3] != 0).long()}
    with pytest.raises(TypeError, match=r"batch\['input_ids'\]"):
        captum_rnn.explain(case.model, batch)
    with pytest.raises(TypeError, match=r"batch\['input_ids'\]"):
        captum_rnn.counterfactuals(case.model, batch)
    with pytest.raises(TypeError, match=r"'inputs': batch\['input_ids'\]"):
        captum_rnn.benchmark(case.model, batch, methods=["saliency"], progress=False)
    result = captum_rnn.benchmark(
        case.model,
        {"inputs": batch["input_ids"], "targets": case.labels[:3]},
        methods=["saliency"],
        progress=False,
    )
    assert result.n_sequences == 3


# ---------------------------------------------------------------- the mask's meaning
class _MaskNamedMask(nn.Module):
    """The tutorial transformer behind a forward that calls its padding mask ``mask``
    (True at padding, PyTorch's convention), a name Hugging Face uses for 1 = real."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, src, mask):
        return self.inner(src, mask.bool())


def test_a_mask_that_hides_the_real_tokens_is_an_error_naming_mask_marks():
    case = zoo.build(TRANSFORMER)
    model, src = _MaskNamedMask(case.model), _rows(case, 3)
    before = _state(case.model)
    with pytest.raises(ValueError, match="mask_marks='padding'"):
        captum_rnn.explain(model, src, **case.hints, **STEPS)
    _same(before, _state(case.model))
    seq = captum_rnn.adapt(model, mask_marks="padding", **case.hints)
    assert "mask_marks='padding'  # given" in repr(seq)
    got = captum_rnn.explain(model, src, mask_marks="padding", **case.hints, **STEPS)
    want = captum_rnn.explain(case.model, src, **case.hints, **STEPS)
    for a, b in zip(got, want, strict=True):
        assert a.scores == b.scores and a.output == b.output
    hf = captum_rnn.adapt(zoo.build(HF).model)
    assert hf.mask_marks == "real" and "mask_marks='real'" in repr(hf)


def test_the_explanation_logger_on_a_lightning_wrapped_tutorial_transformer(tmp_path):
    """Time-major (src, label) batches, the mask built in the steps as the user does;
    integrated gradients and attention rollout logged equal explain afterwards."""
    import copy

    import pytorch_lightning as pl
    from callbacks.callback_helpers import trainer

    from captum_rnn.callbacks import ExplanationLogger

    case = zoo.build(TRANSFORMER)

    class LitTransformer(pl.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, src, src_key_padding_mask):
            return self.model(src, src_key_padding_mask)

        def training_step(self, batch, batch_idx):
            src, labels = batch
            return nn.functional.cross_entropy(self(src, src.T == case.pad_id), labels)

        def validation_step(self, batch, batch_idx):
            src, labels = batch
            loss = nn.functional.cross_entropy(self(src, src.T == case.pad_id), labels)
            self.log("val_loss", loss)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3)

    def collate(items):
        src = torch.nn.utils.rnn.pad_sequence(
            [item["input_ids"] for item in items], padding_value=case.pad_id
        )
        return src, torch.stack([torch.as_tensor(item["labels"]) for item in items])

    train_src, _, train_labels = case.train_data
    loader = torch.utils.data.DataLoader
    train = _Sentences(train_src.T[:32], train_labels[:32], case.pad_id)
    val = _Sentences(case.inputs.T[:8], case.labels[:8], case.pad_id)
    model = LitTransformer(copy.deepcopy(case.model))
    methods = {"integrated_gradients": dict(n_steps=32, max_steps=64)}
    methods["attention_rollout"] = {"position": "mean"}
    cb = ExplanationLogger(
        range(4),
        methods=tuple(methods),
        method_kwargs={"attention_rollout": methods["attention_rollout"]},
        **case.hints,
    )
    pl.seed_everything(0, verbose=False)
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(
        model,
        loader(train, batch_size=16, collate_fn=collate),
        loader(val, batch_size=8, collate_fn=collate),
    )
    model.eval()
    for method, options in methods.items():
        logged = cb.last_explanations[method]
        direct = captum_rnn.explain(
            model, case.inputs[:, :4], method=method, **options, **case.hints
        )
        assert [e.tokens for e in logged] == [e.tokens for e in direct]
        for got, want in zip(logged, direct, strict=True):
            torch.testing.assert_close(
                torch.tensor(got.scores), torch.tensor(want.scores), rtol=1e-5, atol=1e-6
            )
    assert "explanations/attention_rollout/comprehensiveness" in cb.history[-1]


class _BatchFirstOutside(nn.Module):
    """The tutorial transformer with a batch-first forward that transposes its embeddings
    for the time-major encoder: the attention layers say time-major, the input is not."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, src, src_key_padding_mask):  # src: [batch_size, seq_len]
        m = self.inner
        x = (m.embedding(src) * math.sqrt(m.d_model)).transpose(0, 1)
        out = m.transformer_encoder(m.pos_encoder(x), src_key_padding_mask=src_key_padding_mask)
        keep = (~src_key_padding_mask).T.unsqueeze(-1).float()
        return m.classifier((out * keep).sum(0) / keep.sum(0).clamp(min=1))


def test_a_forward_transposing_before_its_attention_names_batch_first():
    case = zoo.build(TRANSFORMER)
    model = _BatchFirstOutside(case.model)
    ids = _batch_first(case, _rows(case, 4))  # (4, 10): batch-first, as the forward reads it
    with pytest.raises(ValueError, match="batch_first=True"):
        captum_rnn.explain(model, ids, **case.hints)
    got = captum_rnn.explain(model, ids, batch_first=True, **case.hints, **STEPS)
    want = captum_rnn.explain(case.model, _native(case, ids), **case.hints, **STEPS)
    for a, b in zip(got, want, strict=True):
        assert a.tokens == b.tokens
        torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores))
