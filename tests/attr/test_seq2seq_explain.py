"""explain() on encoder-decoders: every target token to the source and the target prefix."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from captum.attr import (
    FeatureAblation,
    InputXGradient,
    IntegratedGradients,
    Lime,
    Occlusion,
    Saliency,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from zoo.seq2seq_gru import Attention, Decoder, Encoder, Seq2Seq, make_pairs

from captum_rnn import Explanations, explain
from captum_rnn.models.seq2seq import Seq2SeqAttention

N_STEPS = 24


@pytest.fixture(scope="module")
def model() -> Seq2SeqAttention:
    torch.manual_seed(0)
    return Seq2SeqAttention(11, 9, hidden_size=6, embedding_dim=5, bos_idx=2, eos_idx=3).eval()


SRC = torch.tensor([[4, 5, 6, 7], [8, 9, 10, 0]])
TGT = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])  # <s> y .. </s>, padded


def plain_forward(m: Seq2SeqAttention, step: int, tokens: list[int]):
    """The decoder written out on embedded inputs: logit(s) of output ``step``, independent
    of captum-rnn's prefix feeder (what plain IntegratedGradients sees)."""

    def f(src_emb, tgt_emb, lengths):
        memory, mask, state = m.encode(src_emb, lengths)
        keys = m.memory_proj(memory)
        for t in range(step + 1):
            scores = m.score(torch.tanh(keys + m.query_proj(state)[:, None, :])).squeeze(-1)
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
            context = torch.bmm(weights[:, None], memory)[:, 0]
            state = m.decoder(torch.cat([tgt_emb[:, t], context], -1), state)
            logits = m.output(torch.cat([state, context, tgt_emb[:, t]], -1))
        out = logits[:, tokens[0]]
        return out - logits[:, tokens[1]] if len(tokens) > 1 else out

    return f


def captum_loop(m, src, tgt, b, tokens_of, n_steps=N_STEPS):
    """One Captum IntegratedGradients call per output step of sequence ``b``: rows over the
    real source tokens, prefix rows over the output tokens read back."""
    n_src = int((src[b] != 0).sum())
    n_out = int((tgt[b, 1:] != 0).sum())
    ids, fed = src[b : b + 1, :n_src], tgt[b : b + 1, :n_out]
    src_emb, tgt_emb = m.embedding(ids).detach(), m.target_embedding(fed).detach()
    tgt_base = torch.zeros_like(tgt_emb)
    tgt_base[:, 0] = tgt_emb[:, 0]  # <s> is held fixed
    rows, prefix = [], []
    for j in range(n_out):
        ig = IntegratedGradients(plain_forward(m, j, tokens_of(j)))
        a_src, a_tgt = ig.attribute(
            (src_emb, tgt_emb),
            baselines=(torch.zeros_like(src_emb), tgt_base),
            additional_forward_args=(torch.tensor([n_src]),),
            n_steps=n_steps,
        )
        rows.append(a_src.sum(-1)[0].double())
        cols = torch.zeros(n_out, dtype=torch.double)
        cols[: n_out - 1] = a_tgt.sum(-1)[0, 1:].double()
        prefix.append(cols)
    return torch.stack(rows), torch.stack(prefix)


def test_all_outputs_equal_a_loop_of_one_output_captum_ig_calls(model):
    exps = explain(model, SRC, target=TGT, n_steps=N_STEPS)
    assert len(exps) == 2
    for b, e in enumerate(exps):
        rows, prefix = captum_loop(model, SRC, TGT, b, lambda j, b=b: [int(TGT[b, j + 1])])
        scores = torch.tensor(e.scores, dtype=torch.double)
        torch.testing.assert_close(scores, rows, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(
            torch.tensor(e.prefix_scores, dtype=torch.double), prefix, rtol=1e-5, atol=1e-7
        )


def test_batched_backward_passes_equal_one_by_one_and_chunked(model, monkeypatch):
    from captum_rnn._utils import grad as grad_utils

    default = explain(model, SRC, target=TGT, n_steps=8)
    monkeypatch.setattr(grad_utils, "BATCHED_GRAD_ELEMENTS", 1)  # one output per chunk
    chunked = explain(model, SRC, target=TGT, n_steps=8)
    grad = torch.autograd.grad

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    one_by_one = explain(model, SRC, target=TGT, n_steps=8)
    for a, b, c in zip(default, chunked, one_by_one, strict=True):
        torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores))
        torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(c.scores))
        torch.testing.assert_close(torch.tensor(a.prefix_scores), torch.tensor(c.prefix_scores))


def test_padding_is_excluded_on_both_axes_and_batch_mates_do_not_matter(model):
    both = explain(model, SRC, target=TGT, n_steps=8)
    assert len(both[1].tokens) == 3 and len(both[1].output_labels) == 2
    assert [len(r) for r in both[1].scores] == [3, 3]
    assert [len(r) for r in both[1].prefix_scores] == [2, 2]
    [alone] = explain(model, SRC[1:, :3], target=TGT[1:, :3], n_steps=8)
    torch.testing.assert_close(torch.tensor(alone.scores), torch.tensor(both[1].scores))


def test_prefix_is_exactly_zero_on_and_above_the_diagonal(model):
    [e] = explain(model, SRC[:1], target=TGT[:1], n_steps=8)
    prefix = torch.tensor(e.prefix_scores)
    assert torch.equal(torch.triu(prefix), torch.zeros_like(prefix))
    assert bool((torch.tril(prefix, -1) != 0).any())


def test_completeness_per_output_against_an_independent_baseline_forward(model):
    exps = explain(model, SRC, target=TGT, n_steps=64)
    lengths = (SRC != 0).sum(1)
    with torch.no_grad():
        logits = model(SRC, TGT[:, :-1], lengths)
        bos_only = torch.zeros_like(TGT[:, :-1])
        bos_only[:, 0] = TGT[:, 0]
        src_zero = torch.zeros(*SRC.shape, 5)  # the padding embedding is all zeros
        base = model(src_zero, bos_only, lengths)
    for b, e in enumerate(exps):
        for j in range(len(e.output_labels)):
            token = int(TGT[b, j + 1])
            diff = float(logits[b, j, token] - base[b, j, token])
            total = sum(e.scores[j]) + sum(e.prefix_scores[j])
            assert e.output[j] == pytest.approx(float(logits[b, j, token]), abs=1e-5)
            assert abs(total - diff) <= abs(e.delta[j]) + 1e-5
            assert abs(e.delta[j]) < 0.01 * max(1.0, abs(diff))


def test_contrast_is_the_difference_of_two_single_target_explanations(model):
    foil = 4
    [e] = explain(model, SRC[:1], target=TGT[:1], contrast=foil, n_steps=N_STEPS)
    rows, prefix = captum_loop(model, SRC, TGT, 0, lambda j: [int(TGT[0, j + 1])])
    foil_rows, foil_prefix = captum_loop(model, SRC, TGT, 0, lambda j: [foil])
    torch.testing.assert_close(
        torch.tensor(e.scores, dtype=torch.double), rows - foil_rows, rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        torch.tensor(e.prefix_scores, dtype=torch.double),
        prefix - foil_prefix,
        atol=1e-6,
        rtol=1e-5,
    )
    assert e.extra["contrast"] == [foil] * 4
    with pytest.raises(ValueError, match="contrast"):
        explain(model, SRC[:1], target=TGT[:1], contrast=[1, 2])


def test_target_none_decodes_greedily_like_translate(model):
    [e] = explain(model, SRC[:1], n_steps=4)
    tokens, attention = model.translate(SRC[:1], max_length=model.max_output_length)
    expected = tokens[0].tolist()
    expected = expected[: expected.index(3) + 1] if 3 in expected else expected
    assert e.target == expected
    assert e.predicted == expected  # teacher forced on its own greedy output
    [a] = explain(model, SRC[:1], method="attention")
    torch.testing.assert_close(
        torch.tensor(a.scores, dtype=torch.double),
        attention[0, : len(expected)].double(),
        rtol=1e-6,
        atol=1e-7,
    )
    assert a.prefix_scores is None and len(a.scores[0]) == 4


def test_attention_comes_back_in_the_same_shape_as_ig(model):
    ig = explain(model, SRC, target=TGT, n_steps=4)
    att = explain(model, SRC, target=TGT, method="attention")
    for e, a in zip(ig, att, strict=True):
        assert a.output_labels == e.output_labels
        assert [len(r) for r in a.scores] == [len(r) for r in e.scores]
        assert all(sum(r) == pytest.approx(1.0, abs=1e-5) for r in a.scores)


def test_feature_ablation_equals_a_loop_of_one_output_captum_calls(model):
    [e] = explain(model, SRC[:1], target=TGT[:1], method="feature_ablation")
    src_emb = model.embedding(SRC[:1]).detach()
    tgt_emb = model.target_embedding(TGT[:1, :-1]).detach()
    mask = torch.arange(4)[None, :, None].expand_as(src_emb)
    for j in range(4):
        f = plain_forward(model, j, [int(TGT[0, j + 1])])
        fa = FeatureAblation(lambda s, f=f: f(s, tgt_emb, torch.tensor([4])))
        row = fa.attribute(src_emb, baselines=0.0, feature_mask=mask)[0, :, 0].double()
        torch.testing.assert_close(
            torch.tensor(e.scores[j], dtype=torch.double), row, atol=1e-6, rtol=1e-5
        )


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient"])
def test_one_pass_gradients_equal_a_loop_of_one_output_captum_calls(model, method):
    exps = explain(model, SRC, target=TGT, method=method)
    for b, e in enumerate(exps):
        n_src, n_out = int((SRC[b] != 0).sum()), int((TGT[b, 1:] != 0).sum())
        src_emb = model.embedding(SRC[b : b + 1, :n_src]).detach()
        tgt_emb = model.target_embedding(TGT[b : b + 1, :n_out]).detach()
        assert e.delta is None and len(e.scores) == n_out
        for j in range(n_out):
            f = plain_forward(model, j, [int(TGT[b, j + 1])])
            if method == "saliency":
                grads = Saliency(f).attribute(
                    (src_emb, tgt_emb), additional_forward_args=(torch.tensor([n_src]),),
                    abs=True,
                )  # fmt: skip
            else:
                grads = InputXGradient(f).attribute(
                    (src_emb, tgt_emb), additional_forward_args=(torch.tensor([n_src]),)
                )
            row = grads[0].sum(-1)[0].double()
            cols = torch.zeros(n_out, dtype=torch.double)
            cols[: n_out - 1] = grads[1].sum(-1)[0, 1:].double()  # <s> is not explained
            torch.testing.assert_close(
                torch.tensor(e.scores[j], dtype=torch.double), row, rtol=1e-5, atol=1e-7
            )
            torch.testing.assert_close(
                torch.tensor(e.prefix_scores[j], dtype=torch.double), cols, rtol=1e-5, atol=1e-7
            )
    # a batch equals its sequences explained alone
    for b in range(2):
        [alone] = explain(model, SRC[b : b + 1], target=TGT[b : b + 1], method=method)
        torch.testing.assert_close(
            torch.tensor(alone.scores), torch.tensor(exps[b].scores), rtol=1e-5, atol=1e-7
        )


def test_lime_equals_captum_lime_per_output_on_the_same_draws(model):
    from captum_rnn.attr._linear import WeightedRidge

    n_samples = 40
    exps = explain(model, SRC, target=TGT, method="lime", n_samples=n_samples)
    for b, e in enumerate(exps):
        n_src, n_out = int((SRC[b] != 0).sum()), int((TGT[b, 1:] != 0).sum())
        src_emb = model.embedding(SRC[b : b + 1, :n_src]).detach()
        tgt_emb = model.target_embedding(TGT[b : b + 1, :n_out]).detach()
        start, rest = tgt_emb[:, :1], tgt_emb[:, 1:]  # <s> is not a player
        players = n_src + n_out - 1
        draws = torch.bernoulli(
            torch.full((n_samples, players), 0.5), generator=torch.Generator().manual_seed(0)
        )
        mask = (
            torch.arange(n_src)[None, :, None].expand_as(src_emb),
            (n_src + torch.arange(n_out - 1))[None, :, None].expand_as(rest),
        )
        for j in range(n_out):
            f = plain_forward(model, j, [int(TGT[b, j + 1])])
            rows = iter(draws)
            lime = Lime(
                lambda s, r, n, f=f, start=start: f(
                    s, torch.cat([start.expand(len(s), -1, -1), r], 1), n
                ),
                interpretable_model=WeightedRidge(alpha=1e-3),
                perturb_func=lambda *_, rows=rows, **__: next(rows)[None].long(),
            )
            a_src, a_pre = lime.attribute(
                (src_emb, rest), baselines=(torch.zeros_like(src_emb), torch.zeros_like(rest)),
                feature_mask=mask, n_samples=n_samples, perturbations_per_eval=1,
                additional_forward_args=(torch.tensor([n_src]),),
            )  # fmt: skip
            torch.testing.assert_close(
                torch.tensor(e.scores[j], dtype=torch.double), a_src[0, :, 0].double(),
                rtol=1e-3, atol=1e-4,
            )  # fmt: skip
            cols = torch.zeros(n_out, dtype=torch.double)
            cols[: n_out - 1] = a_pre[0, :, 0].double()
            torch.testing.assert_close(
                torch.tensor(e.prefix_scores[j], dtype=torch.double), cols, rtol=1e-3, atol=1e-4
            )
        # a batch equals its sequences explained alone (draws depend on a sequence's own size)
        [alone] = explain(model, SRC[b : b + 1], target=TGT[b : b + 1], method="lime",
                          n_samples=n_samples)  # fmt: skip
        torch.testing.assert_close(
            torch.tensor(alone.scores), torch.tensor(e.scores), rtol=1e-6, atol=1e-8
        )
    with pytest.raises(ValueError, match="alpha"):
        explain(model, SRC, target=TGT, method="lime", alpha=-1.0)


def user_model(seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(Encoder(12, 8, 16, 16, 0.1), Decoder(12, 8, 16, 16, 0.1, Attention(16, 16)))


def test_a_users_tutorial_seq2seq_time_major_with_a_dummy_step_zero():
    m = user_model()  # training mode, teacher_forcing_ratio=0.5 by default
    src, _, trg = make_pairs(3, torch.Generator().manual_seed(0))  # time-major (T, B)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    state = random.getstate()
    exps = explain(m, src, target=trg, embedding="encoder.embedding", n_steps=32)
    assert random.getstate() == state  # teacher forcing forced on: no coin flips read
    assert m.training and all(mod.training for mod in m.modules())
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in m.parameters())
    assert not any(mod._forward_hooks for mod in m.modules())
    m.eval()
    with torch.no_grad():
        logits = m(src, trg, 1.0)  # (T, B, V); step 0 is the dummy
    for b, e in enumerate(exps):
        n = int((trg[1:, b] != 0).sum())
        assert e.target == trg[1 : n + 1, b].tolist()
        assert len(e.scores) == n and len(e.scores[0]) == int((src[:, b] != 0).sum())
        expected = logits[1 : n + 1, b].gather(-1, trg[1 : n + 1, b, None])[:, 0]
        torch.testing.assert_close(
            torch.tensor(e.output, dtype=torch.double), expected.double(), atol=1e-5, rtol=1e-5
        )
        assert max(abs(d) for d in e.delta) < 0.05
        prefix = torch.tensor(e.prefix_scores)
        assert torch.equal(torch.triu(prefix), torch.zeros_like(prefix))
    greedy = explain(m, src[:, :1], embedding="encoder.embedding", bos_id=1, eos_id=2, max_length=5)
    assert 1 <= len(greedy[0].output_labels) <= 5


class WholePrefix(nn.Module):
    """A decoder that embeds the whole target at once (no per-step calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.src_emb = nn.Embedding(7, 4, padding_idx=0)
        self.tgt_emb = nn.Embedding(6, 4, padding_idx=0)
        self.rnn = nn.GRU(4, 4, batch_first=True)
        self.out = nn.Linear(4, 6)

    def forward(self, src, tgt):
        _, h = self.rnn(self.src_emb(src))
        return self.out(self.rnn(self.tgt_emb(tgt), h)[0])


def test_errors_name_the_keyword_to_pass(model):
    src, tgt = torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="output_offset="):
        explain(WholePrefix(), src, target=tgt, embedding="src_emb")
    [e] = explain(WholePrefix(), src, target=tgt, embedding="src_emb", output_offset=0, n_steps=8)
    assert len(e.output_labels) == 2 and abs(e.delta[1]) < 0.05
    with pytest.raises(ValueError, match="bos_id="):
        explain(WholePrefix(), src, embedding="src_emb", output_offset=0)
    with pytest.raises(ValueError, match="target_arg="):
        explain(WholePrefix(), src, target=tgt, embedding="src_emb", target_arg="nope")
    with pytest.raises(TypeError, match="unknown options"):
        explain(model, SRC, target=TGT, n_samples=3)  # a KernelSHAP option given to IG
    with pytest.raises(TypeError, match="unknown options.*n_steps"):
        explain(model, SRC, target=TGT, method="kernel_shap", n_steps=3)
    with pytest.raises(ValueError, match="method must be one of"):
        explain(model, SRC, target=TGT, method="deeplift")


def test_save_load_round_trip(model, tmp_path):
    exps = explain(model, SRC, target=TGT, contrast=4, n_steps=4)
    exps.save(tmp_path / "e.json")
    back = Explanations.load(tmp_path / "e.json")
    assert back == exps
    html = exps[0].to_html()
    assert "<script" not in html
    assert exps[0].plot() is not None  # the output x input heatmap with the prefix columns


@settings(max_examples=8, deadline=None)
@given(
    st.lists(st.integers(4, 10), min_size=1, max_size=6),
    st.lists(st.integers(4, 8), min_size=1, max_size=5),
)
def test_completeness_for_any_source_and_target(model, source, target):
    [e] = explain(model, torch.tensor([source]), target=torch.tensor([[2, *target]]), n_steps=32)
    assert len(e.scores) == len(target) and len(e.scores[0]) == len(source)
    assert all(abs(d) < 0.02 for d in e.delta)


@pytest.mark.slow
def test_ground_truth_on_dates_ig_finds_the_month_span():
    """While the month is written, positive IG mass sits on the source month span well
    above chance (the data know the spans); attention is reported beside it."""
    from captum_rnn.data import date_pairs, pad_collate

    torch.manual_seed(0)
    train, test = date_pairs(3000, seed=0), date_pairs(40, seed=2)
    m = Seq2SeqAttention(
        len(train.source_vocab),
        len(train.target_vocab),
        embedding_dim=16,
        hidden_size=48,
        bos_idx=train.bos_index,
        eos_idx=train.eos_index,
    )
    optimizer = torch.optim.Adam(m.parameters(), lr=5e-3)
    data = train.to_dataset()
    for _epoch in range(3):
        order = torch.randperm(len(data)).tolist()
        for start in range(0, len(order), 64):
            src, lengths, tgt = pad_collate([data[i] for i in order[start : start + 64]])
            logits = m(src, tgt[:, :-1], lengths)
            loss = nn.functional.cross_entropy(
                logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=0
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    m.eval()
    src, _, tgt = pad_collate([test.to_dataset()[i] for i in range(len(test))])
    ig = explain(m, src, target=tgt, n_steps=16)
    att = explain(m, src, target=tgt, method="attention")
    shares, attention, chance = [], [], []
    for i, (e, a) in enumerate(zip(ig, att, strict=True)):
        span = test.span_mask(i, "month")
        chance.append(float(span.float().mean()))
        for step in test.output_steps("month"):
            pos = torch.tensor(e.scores[step]).clamp(min=0)
            shares.append(float(pos[span].sum() / pos.sum()))
            attention.append(float(torch.tensor(a.scores[step])[span].sum()))
    ig_share, att_share = sum(shares) / len(shares), sum(attention) / len(attention)
    print(
        f"month span share: IG {ig_share:.2f}, attention {att_share:.2f}, chance {sum(chance) / len(chance):.2f}"
    )
    assert ig_share >= 0.45
    assert ig_share > 1.4 * sum(chance) / len(chance)


# ------------------------------------------------------------------ KernelSHAP
def _brute_force_shapley(m, src, tgt):
    """Exact Shapley values of every output of one sequence over its source tokens and the
    prefix tokens read back, by the model's own forward on ids (an absent source token
    becomes the padding id, an absent prefix token the target padding id)."""
    n_src, n_out = src.shape[1], tgt.shape[1] - 1
    players = n_src + n_out - 1
    tokens = tgt[0, 1:]

    def value(coalition):
        s, fed = src.clone(), tgt[:, :-1].clone()
        for i in range(players):
            if i not in coalition:
                if i < n_src:
                    s[0, i] = 0
                else:
                    fed[0, i - n_src + 1] = 0
        with torch.no_grad():
            logits = m(s, fed, torch.tensor([n_src]))[0]
        return logits[torch.arange(n_out), tokens].double()

    values = {c: value(set(c)) for k in range(players + 1) for c in _subsets(players, k)}
    phi = torch.zeros(players, n_out, dtype=torch.double)
    total = math.factorial(players)
    for i in range(players):
        for c, v in values.items():
            if i in c:
                continue
            weight = math.factorial(len(c)) * math.factorial(players - len(c) - 1) / total
            phi[i] += weight * (values[tuple(sorted((*c, i)))] - v)
    return phi[:n_src].T, phi[n_src:].T  # (n_out, n_src), (n_out, n_out - 1)


def _subsets(n, k):
    return list(itertools.combinations(range(n), k))


def test_kernel_shap_with_every_coalition_is_the_exact_shapley_value(model):
    src, tgt = SRC[:1], TGT[:1]  # 4 source tokens + 3 prefix tokens: 126 coalitions
    [e] = explain(model, src, target=tgt, method="kernel_shap", n_samples=200)
    source, prefix = _brute_force_shapley(model, src, tgt)
    torch.testing.assert_close(torch.tensor(e.scores, dtype=torch.double), source, atol=1e-4,
                               rtol=1e-4)  # fmt: skip
    ours = torch.tensor(e.prefix_scores, dtype=torch.double)[:, :3]
    torch.testing.assert_close(ours, prefix, atol=1e-4, rtol=1e-4)
    assert torch.tensor(e.prefix_scores).triu().abs().max() < 1e-4  # a causal decoder


def test_sampled_kernel_shap_is_efficient_seeded_and_cuts_padding(model):
    runs = [
        explain(
            model, SRC, target=TGT, method="kernel_shap", n_samples=40, perturbations_per_eval=7
        )  # fmt: skip
        for _ in range(2)
    ]
    for a, b in zip(*runs, strict=True):  # the same coalitions: equal up to the solver's float
        torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores), rtol=0,
                                   atol=1e-12)  # fmt: skip
    e0, e1 = runs[0]
    assert [len(e0.scores[0]), len(e1.scores[0])] == [4, 3]  # padding cut
    with torch.no_grad():
        full = model(SRC, TGT[:, :-1], torch.tensor([4, 3]))
        base = model(torch.zeros_like(SRC), torch.where(torch.arange(4) == 0, TGT[:, :-1], 0),
                     torch.tensor([4, 3]))  # fmt: skip
    for b, e in enumerate((e0, e1)):
        for j in range(e.n_outputs):
            token = int(TGT[b, j + 1])
            gap = float(full[b, j, token] - base[b, j, token])
            total = sum(e.scores[j]) + sum(e.prefix_scores[j])
            assert total == pytest.approx(gap, abs=1e-3)  # the empty/full coalitions hold


def test_kernel_shap_on_a_users_time_major_seq2seq():
    m = user_model().eval()
    src, _, trg = make_pairs(2, torch.Generator().manual_seed(0))
    exps = explain(m, src, target=trg, embedding="encoder.embedding", method="kernel_shap",
                   n_samples=64)  # fmt: skip
    assert len(exps) == 2 and all(e.n_outputs > 0 for e in exps)
    # the user's model in training mode by default: the gradient methods leave it so
    m.train()
    for method, options in (("saliency", {}), ("lime", {"n_samples": 32})):
        other = explain(m, src, target=trg, embedding="encoder.embedding", method=method,
                        **options)  # fmt: skip
        assert m.training and [g.n_outputs for g in other] == [e.n_outputs for e in exps]
        assert all(float(torch.tensor(g.scores).abs().sum()) > 0 for g in other)
    m.eval()
    with pytest.raises(ValueError, match="n_samples"):
        explain(m, src, target=trg, embedding="encoder.embedding", method="kernel_shap",
                n_samples=0)  # fmt: skip


def test_occlusion_equals_captum_occlusion_per_output_and_batch_equals_single(model):
    [e] = explain(model, SRC[:1], target=TGT[:1], method="occlusion", window=2)
    src_emb = model.embedding(SRC[:1]).detach()
    tgt_emb = model.target_embedding(TGT[:1, :-1]).detach()
    for j in range(4):
        f = plain_forward(model, j, [int(TGT[0, j + 1])])
        occlusion = Occlusion(lambda s, f=f: f(s, tgt_emb, torch.tensor([4])))
        row = occlusion.attribute(
            src_emb, sliding_window_shapes=(2, src_emb.shape[-1]),
            strides=(1, src_emb.shape[-1]), baselines=0.0,
        )[0, :, 0].double()  # fmt: skip
        torch.testing.assert_close(torch.tensor(e.scores[j], dtype=torch.double), row,
                                   atol=1e-6, rtol=1e-5)  # fmt: skip
    batch = explain(model, SRC, target=TGT, method="occlusion", window=3)
    for b in range(2):  # the second source is one token shorter than the batch
        n_src = int((SRC[b] != 0).sum())
        [single] = explain(model, SRC[b : b + 1, :n_src], target=TGT[b : b + 1],
                           method="occlusion", window=3)  # fmt: skip
        torch.testing.assert_close(torch.tensor(batch[b].scores), torch.tensor(single.scores),
                                   atol=1e-6, rtol=1e-5)  # fmt: skip
        torch.testing.assert_close(torch.tensor(batch[b].prefix_scores),
                                   torch.tensor(single.prefix_scores), atol=1e-6, rtol=1e-5)  # fmt: skip
    [fa] = explain(model, SRC[:1], target=TGT[:1], method="feature_ablation")
    [one] = explain(model, SRC[:1], target=TGT[:1], method="occlusion", window=1)
    assert fa.scores == one.scores and fa.prefix_scores == one.prefix_scores


@pytest.mark.gpu
def test_seq2seq_methods_on_cuda_in_eval_mode_equal_cpu(model):
    import copy

    gpu_model = copy.deepcopy(model).cuda().eval()
    for method, options in (("integrated_gradients", {"n_steps": 8}), ("saliency", {}),
                            ("input_x_gradient", {}), ("kernel_shap", {"n_samples": 200}),
                            ("lime", {"n_samples": 64}),
                            ("occlusion", {})):  # fmt: skip
        cpu = explain(model, SRC, target=TGT, method=method, **options)
        gpu = explain(gpu_model, SRC.cuda(), target=TGT.cuda(), method=method, **options)
        for a, b in zip(cpu, gpu, strict=True):
            torch.testing.assert_close(torch.tensor(b.scores), torch.tensor(a.scores),
                                       atol=1e-4, rtol=1e-3)  # fmt: skip
