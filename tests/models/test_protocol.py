"""The model contract: what adapt() infers, what it refuses, and explain() through it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from captum.attr import LayerIntegratedGradients
from torch import nn

import captum_rnn
from captum_rnn.models import RNNClassifier, SequenceModel, adapt


class ImdbLSTM(nn.Module):
    """The classic tutorial: time-major packed bidirectional LSTM, pad id 1, one logit."""

    def __init__(self, vocab=20, emb=6, hid=5, pad_idx=1, out=1, batch_first=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=pad_idx)
        self.rnn = nn.LSTM(emb, hid, bidirectional=True, batch_first=batch_first)
        self.fc = nn.Linear(hid * 2, out)

    def forward(self, text, text_lengths):
        embedded = self.embedding(text)
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded,
            text_lengths.to("cpu"),
            batch_first=self.rnn.batch_first,
            enforce_sorted=False,
        )
        _, (hidden, _) = self.rnn(packed)
        return self.fc(torch.cat((hidden[-2], hidden[-1]), dim=1))


class NoPadEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.rnn = nn.GRU(4, 4, batch_first=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.rnn(self.embed(x))[1][-1])


class TwoEmbeddings(NoPadEmbedding):
    def __init__(self):
        super().__init__()
        self.position = nn.Embedding(50, 4)


class NeedsHidden(NoPadEmbedding):
    def forward(self, x, hidden):  # noqa: D102
        return self.fc(self.rnn(self.embed(x), hidden)[1][-1])


class MaskedGRU(nn.Module):
    """Hugging Face style: attention_mask with 1 = real token; returns probabilities."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(12, 4, padding_idx=3)
        self.rnn = nn.GRU(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, input_ids, attention_mask=None):
        states, _ = self.rnn(self.embed(input_ids))
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1)
        return torch.softmax(self.fc(pooled), dim=-1)


def _batch(pad=1, time_major=True):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 20, (3, 6), generator=g)
    lengths = torch.tensor([6, 4, 2])
    ids[torch.arange(6)[None, :] >= lengths[:, None]] = pad
    return (ids.T.contiguous() if time_major else ids), lengths


# ------------------------------------------------------------------ inference
def test_adapt_reads_the_tutorial_model_and_repr_says_how():
    torch.manual_seed(0)
    seq = adapt(ImdbLSTM(), output="logits")
    assert (seq.pad_id, seq.batch_first, seq.lengths_arg, seq.mask_arg) == (
        1,
        False,
        "text_lengths",
        None,
    )
    assert seq.embedding_name == "embedding" and seq.is_token_model
    text = repr(seq)
    for name in (
        "pad_id",
        "batch_first",
        "embedding",
        "num_classes",
        "output",
        "lengths_arg",
        "mask_arg",
        "module",
    ):
        assert f"{name}=" in text
    assert "embedding.padding_idx" in text and "batch_first of rnn" in text
    assert "output='logits'  # given" in text


def test_adapt_is_idempotent_and_hints_readapt():
    seq = adapt(ImdbLSTM(), output="logits")
    assert adapt(seq) is seq
    again = adapt(seq, pad_id=0)
    assert again.pad_id == 0 and again.output == "logits" and again.module is seq.module
    assert isinstance(again, SequenceModel)


def test_output_kind_and_classes_are_inferred_from_the_first_output():
    torch.manual_seed(0)
    seq = adapt(MaskedGRU())
    assert seq.mask_arg == "attention_mask" and seq.lengths_arg is None
    ids = torch.tensor([[4, 5, 6, 3], [7, 8, 3, 3]])
    out = seq(ids)
    seq.observe(out)
    assert seq.output == "probs" and seq.num_classes == 3
    assert "first output's values" in repr(seq)
    # the mask the model got: 1 at real tokens, wherever the padding stands
    torch.testing.assert_close(seq.probabilities(out), out)


@pytest.mark.parametrize(
    ("model", "hints", "match"),
    [
        (NoPadEmbedding(), {}, "pad_id="),
        (TwoEmbeddings(), {}, "embedding="),
        (NeedsHidden(), {"pad_id": 0}, "'hidden'.*lengths_arg='hidden'"),
        (nn.Linear(3, 2), {}, "batch_first="),
        (ImdbLSTM(), {"embedding": "nope"}, "names no submodule"),
        (ImdbLSTM(), {"lengths_arg": "lens"}, "not a parameter"),
        (ImdbLSTM(), {"output": "softmax"}, "output must be one of"),
    ],
)
def test_adapt_refuses_to_guess_and_names_the_hint(model, hints, match):
    with pytest.raises(ValueError, match=match):
        adapt(model, **hints)


def test_one_output_needs_the_output_hint():
    seq = adapt(ImdbLSTM())
    ids, lengths = _batch()
    with pytest.raises(ValueError, match="output='logits'"):
        captum_rnn.explain(seq, ids, lengths=lengths)


def test_adapt_with_hints_never_assumes_pad_zero():
    seq = adapt(NoPadEmbedding(), pad_id=7)
    assert seq.pad_id == 7 and "given" in repr(seq)


# ------------------------------------------------------------------ explain through it
def _lig_by_hand(model, ids, lengths, n_steps):
    """Captum's LayerIntegratedGradients called by hand, the way a user would (batch-first:
    Captum expands dim 0, so by hand it cannot run a time-major model at all)."""
    lig = LayerIntegratedGradients(model, model.embedding)
    return lig.attribute(
        ids,
        baselines=torch.full_like(ids, 1),
        target=0,
        additional_forward_args=(lengths,),
        n_steps=n_steps,
    ).sum(-1)  # (batch, time)


def test_explain_equals_layer_integrated_gradients_by_hand():
    torch.manual_seed(0)
    time_major = ImdbLSTM().eval()
    model = ImdbLSTM(batch_first=True).eval()
    model.load_state_dict(time_major.state_dict())
    ids, lengths = _batch(time_major=False)
    explanations = captum_rnn.explain(model, ids, output="logits", n_steps=32, max_steps=32)
    lig = LayerIntegratedGradients(model, model.embedding)
    expected = lig.attribute(
        ids,
        baselines=torch.full_like(ids, 1),
        target=0,
        additional_forward_args=(lengths,),
        n_steps=32,
    ).sum(-1)
    # and the time-major original, through the contract, gives the same numbers
    time_major_explanations = captum_rnn.explain(
        time_major, ids.T, output="logits", n_steps=32, max_steps=32
    )
    for i, (e, t) in enumerate(zip(explanations, time_major_explanations, strict=True)):
        n = int(lengths[i])
        assert e.tokens == t.tokens == [str(x) for x in ids[i, :n].tolist()]
        torch.testing.assert_close(
            torch.tensor(e.scores, dtype=torch.float64),
            expected[i, :n].double(),
            rtol=1e-5,
            atol=1e-7,
        )
        torch.testing.assert_close(torch.tensor(t.scores), torch.tensor(e.scores))
        assert e.target == 1 and e.n_steps == 32


def test_time_major_model_explains_like_its_batch_first_twin():
    torch.manual_seed(0)
    time_major = ImdbLSTM().eval()
    batch_first = ImdbLSTM(batch_first=True).eval()
    batch_first.load_state_dict(time_major.state_dict())
    ids, _ = _batch()
    a = captum_rnn.explain(time_major, ids, output="logits", n_steps=16, max_steps=16)
    b = captum_rnn.explain(batch_first, ids.T, output="logits", n_steps=16, max_steps=16)
    for x, y in zip(a, b, strict=True):
        assert x.tokens == y.tokens
        torch.testing.assert_close(torch.tensor(x.scores), torch.tensor(y.scores))


def test_left_padding_gets_no_score_and_no_token():
    torch.manual_seed(0)
    model = MaskedGRU().eval()
    ids = torch.tensor([[3, 3, 4, 5, 6], [7, 8, 9, 3, 3], [3, 10, 3, 11, 3]])
    for method in ("integrated_gradients", "saliency", "occlusion", "feature_ablation"):
        explanations = captum_rnn.explain(model, ids, method=method)
        assert [e.tokens for e in explanations] == [["4", "5", "6"], ["7", "8", "9"], ["10", "11"]]
        assert all(len(e.scores) == len(e.tokens) for e in explanations)


def test_batch_equals_each_sequence_alone_on_a_user_model():
    torch.manual_seed(0)
    model = ImdbLSTM().eval()
    ids, lengths = _batch()
    batch = captum_rnn.explain(model, ids, output="logits")
    for i in range(3):
        alone = captum_rnn.explain(model, ids[: lengths[i], i : i + 1], output="logits")[0]
        torch.testing.assert_close(
            torch.tensor(alone.scores), torch.tensor(batch[i].scores), atol=1e-6, rtol=1e-5
        )


def test_explain_restores_every_submodule_mode_and_leaves_weights_alone():
    torch.manual_seed(0)
    model = RNNClassifier(2, vocab_size=20, hidden_size=4, embedding_dim=3, dropout=0.2).train()
    model.embedding.eval()  # frozen submodule inside a training model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    hooks = [len(m._forward_hooks) for m in model.modules()]
    captum_rnn.explain(model, torch.tensor([[4, 5, 6, 0]]))
    assert [m.training for m in model.modules()] == modes
    assert [len(m._forward_hooks) for m in model.modules()] == hooks
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_explain_restores_modes_when_it_raises():
    model = MaskedGRU().train()
    model.rnn.eval()
    modes = [m.training for m in model.modules()]
    with pytest.raises(ValueError):
        captum_rnn.explain(model, torch.tensor([[4, 50]]))  # id 50 outside the vocabulary
    assert [m.training for m in model.modules()] == modes


def test_inside_inference_mode_on_a_user_model():
    torch.manual_seed(0)
    model = MaskedGRU().eval()
    with torch.inference_mode():
        ids = torch.tensor([[4, 5, 6, 3]])
        [e] = captum_rnn.explain(model, ids)
    assert len(e.scores) == 3 and e.delta is not None


def test_a_layer_called_twice_is_refused_clearly():
    class Twice(NoPadEmbedding):
        def forward(self, x):
            return self.fc(self.rnn(self.embed(x) + self.embed(x))[1][-1])

    with pytest.raises(ValueError, match="more than once"):
        captum_rnn.explain(Twice(), torch.tensor([[1, 2, 3]]), pad_id=0)


def test_readable_module_unwraps_reads_or_passes_through():
    from captum_rnn.models.protocol import readable_module

    model = RNNClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=3)
    module, seq = readable_module(model)
    assert module is model and isinstance(seq, SequenceModel) and seq.pad_id == 0
    module, seq = readable_module(adapt(model))  # a SequenceModel is unwrapped
    assert module is model and seq.module is model
    plain = nn.Linear(2, 2)  # the contract cannot read it: kept as is, no contract
    assert readable_module(plain) == (plain, None)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        readable_module(lambda x: x)


class _RecordOut(nn.Module):
    """A user's model returning an output record, as Hugging Face models do."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 2)

    def forward(self, input_ids):
        states, _ = self.rnn(self.emb(input_ids))
        logits = self.fc(states[:, -1])
        if self.kind == "dict":
            return {"hidden": states, "logits": logits}
        if self.kind == "record":
            return _Output(hidden=states, logits=logits)
        return logits


@dataclass
class _Output:
    hidden: torch.Tensor
    logits: torch.Tensor


@pytest.mark.parametrize("kind", ["dict", "record"])
def test_output_records_are_read_through_their_logits(kind):
    torch.manual_seed(0)
    plain = _RecordOut("tensor").eval()
    wrapped = _RecordOut(kind).eval()
    wrapped.load_state_dict(plain.state_dict())
    ids = torch.randint(1, 20, (3, 6))
    ids[2, 4:] = 0
    a = captum_rnn.explain(plain, ids, n_steps=8)
    b = captum_rnn.explain(wrapped, ids, n_steps=8)
    for e, f in zip(a, b, strict=True):
        assert e.scores == f.scores and e.target == f.target


class _NeedsHidden(nn.Module):
    """PyTorch's word-language-model style: ``forward(input, hidden)``, ``init_hidden``."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.rnn = nn.LSTM(8, 16)  # time-major, as the example is
        self.fc = nn.Linear(16, 2)

    def init_hidden(self, batch):
        return (torch.zeros(1, batch, 16), torch.zeros(1, batch, 16))

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.emb(x), hidden)
        return self.fc(out[-1]), hidden


def test_forward_kwargs_fill_a_hidden_state_argument():
    torch.manual_seed(0)
    m = _NeedsHidden().eval()
    ids = torch.randint(1, 20, (6, 3))  # (time, batch)
    with pytest.raises(ValueError, match=r"forward_kwargs=\{'hidden': value\}"):
        captum_rnn.explain(m, ids, batch_first=False)
    by_none = captum_rnn.explain(m, ids, batch_first=False, forward_kwargs={"hidden": None})
    # a callable gets each call's batch size: IG's expanded batches included
    by_init = captum_rnn.explain(
        m, ids, batch_first=False, forward_kwargs={"hidden": m.init_hidden}, n_steps=8
    )
    again = captum_rnn.explain(
        m, ids, batch_first=False, forward_kwargs={"hidden": None}, n_steps=8
    )
    for a, b in zip(by_init, again, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-6, abs=1e-8)
    assert len(by_none) == 3
    seq = adapt(m, batch_first=False, forward_kwargs={"hidden": None})
    assert "forward_kwargs" in repr(seq)
    with pytest.raises(ValueError, match="not a parameter"):
        adapt(m, batch_first=False, forward_kwargs={"hiden": None})
    with pytest.raises(TypeError, match="forward_kwargs must map"):
        adapt(m, batch_first=False, forward_kwargs=[("hidden", None)])


class _ConvGRU(nn.Module):
    """An ECG/audio-style model: (batch, channels, time) into a Conv1d, then a GRU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 6, 3, padding=1)
        self.gru = nn.GRU(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x)).transpose(1, 2)
        return self.fc(self.gru(h)[1][-1])


class _ChannelsLast(nn.Module):
    """The same model fed (batch, time, channels)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.gru = inner.gru  # so the contract reads batch_first from it

    def forward(self, x):
        return self.inner(x.transpose(1, 2))


def test_channels_first_input_is_never_read_with_time_and_features_swapped():
    from captum_rnn.metrics import comprehensiveness

    torch.manual_seed(0)
    m = _ConvGRU().eval()
    x = torch.randn(3, 2, 9)  # (batch, channels, time)
    with pytest.raises(ValueError, match="channels_first=True"):
        captum_rnn.explain(m, x)
    twin = _ChannelsLast(m)
    for method in ("integrated_gradients", "occlusion", "feature_ablation"):
        a = captum_rnn.explain(m, x, method=method, channels_first=True)
        b = captum_rnn.explain(twin, x.transpose(1, 2), method=method)
        for e, f in zip(a, b, strict=True):
            assert len(e.scores) == 9 and e.target == f.target
            assert e.scores == pytest.approx(f.scores, rel=1e-5, abs=1e-7)
            torch.testing.assert_close(
                torch.tensor(e.feature_scores), torch.tensor(f.feature_scores),
                rtol=1e-5, atol=1e-7,
            )  # fmt: skip
    assert torch.allclose(
        comprehensiveness(m, x, a, channels_first=True),
        comprehensiveness(twin, x.transpose(1, 2), b),
    )

    def by_hand(model, inputs, lengths, target):  # a user's explainer gets the model layout
        assert inputs.shape == (3, 2, 9)
        return inputs.abs()  # (batch, channels, time), handed back in that layout

    [first, *_] = captum_rnn.explain(m, x, method=by_hand, channels_first=True)
    torch.testing.assert_close(torch.tensor(first.feature_scores), x[0].abs().T)
    # told it is channels-last, the contract takes the word for it
    assert len(captum_rnn.explain(m, x.transpose(1, 2).transpose(1, 2), channels_first=False,
                                  method="saliency")[0].scores) == 2  # fmt: skip
    with pytest.raises(ValueError, match="continuous input"):
        adapt(RNNClassifier(2, vocab_size=10), channels_first=True)


class _Permuting(nn.Module):
    """Takes (batch, time) ids and transposes them itself for a time-major LSTM."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 16)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        out, (h, c) = self.lstm(self.emb(x).permute(1, 0, 2))
        return self.fc(h[-1])


def test_a_forward_that_transposes_before_its_rnn_needs_batch_first():
    torch.manual_seed(0)
    m = _Permuting().eval()
    ids = torch.randint(1, 20, (3, 7))
    ids[2, 5:] = 0
    with pytest.raises(ValueError, match="batch_first=True"):
        captum_rnn.explain(m, ids)  # the LSTM says time-major; the forward says otherwise
    explanations = captum_rnn.explain(m, ids, batch_first=True, n_steps=8)
    assert [len(e.scores) for e in explanations] == [7, 7, 5]
    with torch.no_grad():
        out = m(ids)
    assert [e.target for e in explanations] == out.argmax(1).tolist()


class _PacksWithDeviceLengths(nn.Module):
    """Packs with the lengths as given, as tutorials written before PyTorch 1.7 do (their
    training loop keeps lengths on the CPU). ``fail_first`` stands in for a CUDA lengths
    tensor on this CPU-only test: the first call raises PyTorch's own error."""

    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 2)
        self.fail_first = fail_first

    def forward(self, text, lengths):
        embedded = self.emb(text)
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError(
                "'lengths' argument should be a 1D CPU int64 tensor, but got 1D cuda:0 Long tensor"
            )
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, lengths, batch_first=True, enforce_sorted=False
        )
        return self.fc(self.rnn(packed)[1][-1])


def test_a_forward_packing_with_cpu_lengths_only_is_called_again_with_cpu_lengths():
    torch.manual_seed(0)
    plain = _PacksWithDeviceLengths().eval()
    failing = _PacksWithDeviceLengths(fail_first=True).eval()
    failing.load_state_dict(plain.state_dict())
    ids = torch.randint(1, 20, (3, 6))
    ids[1, 4:] = 0
    a = captum_rnn.explain(plain, ids, n_steps=8)
    b = captum_rnn.explain(failing, ids, n_steps=8)  # the retry re-runs the embedding hook
    for e, f in zip(a, b, strict=True):
        assert e.scores == f.scores
    seq = adapt(_PacksWithDeviceLengths(fail_first=True).eval())
    seq.module.load_state_dict(plain.state_dict())
    embedded = seq.embed(ids)  # the embedding's output replaced, as IG runs the model
    out = seq(embedded, ids=ids)  # fails once, then runs again: the hook is reset
    with torch.no_grad():
        assert torch.allclose(out, plain(ids, (ids != 0).sum(1)))
    assert seq._lengths_on_cpu and seq.length_kwargs(ids, torch.tensor([6, 4, 6]))[
        "lengths"
    ].device == torch.device("cpu")


@pytest.mark.gpu
def test_packing_with_device_lengths_works_on_cuda():
    torch.manual_seed(0)
    model = _PacksWithDeviceLengths().eval()
    ids = torch.randint(1, 20, (3, 6))
    ids[1, 4:] = 0
    cpu = captum_rnn.explain(model, ids, n_steps=8)
    gpu = captum_rnn.explain(model.cuda(), ids.cuda(), n_steps=8)
    for e, f in zip(cpu, gpu, strict=True):
        assert e.scores == pytest.approx(f.scores, rel=1e-3, abs=1e-5)


class _PassesOn(nn.Module):
    """A Lightning-tutorial wrapper: forward(*args, **kwargs) calls the network."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.criterion = nn.BCEWithLogitsLoss()

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)


def test_a_wrapper_passing_args_on_is_read_through_to_its_network():
    torch.manual_seed(0)
    net = ImdbLSTM().eval()
    wrapped = _PassesOn(net).eval()
    seq = adapt(wrapped)
    assert seq.lengths_arg == "text_lengths" and seq.pad_id == 1 and not seq.batch_first
    text = torch.tensor([[5, 6, 7], [8, 9, 1], [3, 1, 1]])  # (time, batch), pad 1
    got = captum_rnn.explain(wrapped, text)
    want = captum_rnn.explain(net, text, output="logits")
    for g, w in zip(got, want, strict=True):
        assert g.scores == pytest.approx(w.scores, abs=1e-6)
    # a forward taking **kwargs accepts a hint naming what it passes on
    assert adapt(wrapped, lengths_arg="text_lengths").lengths_arg == "text_lengths"
