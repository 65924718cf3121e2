"""The metrics on users' own models, written the way tutorials write them.

No captum-rnn model here: the metrics must call ``adapt`` themselves, find the padding
id (1, from ``padding_idx``), the layout and the lengths argument, and read
probabilities from what the model returns: the probabilities themselves, the softmax
of logits, the exp of log-probabilities; never raw logits.
"""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import captum_rnn
from captum_rnn.metrics import (
    benchmark,
    comprehensiveness,
    comprehensiveness_sufficiency,
    deletion_auc,
    infidelity,
    insertion_auc,
    leave_one_out,
    loo_kendall,
    sufficiency,
)

V, E, H, C = 10, 4, 6, 3
PAD = 1
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)
# Real tokens per sequence; token 0 is a real word here (a pad-0 assumption would drop it).
TOKENS = [[2, 0, 3, 4, 5, 6], [7, 0, 8, 9], [3, 0, 5]]
# Attribution of each real token (distinct: no ties).
ATTR = [[0.3, 0.9, -0.2, 0.5, 0.1, 0.7], [0.2, -0.4, 0.8, 0.6], [0.5, 0.1, -0.3]]
T = max(map(len, TOKENS))


def padded(rows, fill=PAD, width=T):
    return torch.tensor([r + [fill] * (width - len(r)) for r in rows])


IDS = padded(TOKENS)
SCORES = padded(ATTR, fill=0.0).float()


class GRUClassifier(nn.Module):
    """The tutorial model: embeddings with padding_idx=1, a batch-first GRU over packed
    sequences, ``forward(text, text_lengths)``; ``head`` says what it returns."""

    def __init__(self, head="probs"):
        super().__init__()
        self.head = head
        self.embedding = nn.Embedding(V, E, padding_idx=PAD)
        self.rnn = nn.GRU(E, H, batch_first=True)
        self.fc = nn.Linear(H, C)

    def forward(self, text, text_lengths):
        embedded = self.embedding(text)
        packed = pack_padded_sequence(
            embedded, text_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.rnn(packed)
        logits = self.fc(hidden[-1])
        if self.head == "probs":
            return torch.softmax(logits, dim=-1)
        if self.head == "log_probs":
            return torch.log_softmax(logits, dim=-1)
        return logits


class TimeMajorLSTM(nn.Module):
    """A time-major LSTM: ``forward(src (time, batch), lengths)``, logits out."""

    def __init__(self, batch_first=False):
        super().__init__()
        self.batch_first = batch_first
        self.embedding = nn.Embedding(V, E, padding_idx=PAD)
        self.rnn = nn.LSTM(E, H, batch_first=batch_first)
        self.fc = nn.Linear(H, C)

    def forward(self, src, lengths):
        packed = pack_padded_sequence(
            self.embedding(src), lengths.cpu(), batch_first=self.batch_first, enforce_sorted=False
        )
        _, (hidden, _) = self.rnn(packed)
        return self.fc(hidden[-1])


def seeded_model(cls, *args, **kwargs):
    torch.manual_seed(0)
    return cls(*args, **kwargs).eval()


def probabilities_by_hand(model, tokens, head):
    """The class probabilities of one unpadded sequence, from the model's output."""
    with torch.no_grad():
        out = model(torch.tensor([tokens]), torch.tensor([len(tokens)]))[0].double()
    if head == "probs":
        return out
    if head == "log_probs":
        return out.exp()
    return torch.softmax(out, dim=-1)


def aopc_by_hand(probs_of, target=None):
    """ERASER comprehensiveness and sufficiency (AOPC over FRACTIONS), deleting tokens."""
    comps, suffs = [], []
    for i, (tokens, attr) in enumerate(zip(TOKENS, ATTR, strict=True)):
        n = len(tokens)
        full_p = probs_of(tokens)
        t = int(full_p.argmax()) if target is None else target[i]
        full = float(full_p[t])
        order = sorted(range(n), key=lambda j: -attr[j])
        comp, suff = [], []
        for f in FRACTIONS:
            k = min(max(math.floor(f * n + 0.5 + 1e-9), 1), n)
            top = set(order[:k])
            removed = [tok for j, tok in enumerate(tokens) if j not in top]
            kept = [tok for j, tok in enumerate(tokens) if j in top]
            comp.append(full - float(probs_of(removed)[t]))
            suff.append(full - float(probs_of(kept)[t]))
        comps.append(sum(comp) / len(comp))
        suffs.append(sum(suff) / len(suff))
    return torch.tensor(comps, dtype=torch.float64), torch.tensor(suffs, dtype=torch.float64)


@pytest.mark.parametrize("head", ["probs", "logits", "log_probs"])
def test_comprehensiveness_sufficiency_use_the_probabilities(head):
    model = seeded_model(GRUClassifier, head)
    comp, suff = comprehensiveness_sufficiency(model, IDS, SCORES)
    want_comp, want_suff = aopc_by_hand(lambda toks: probabilities_by_hand(model, toks, head))
    assert comp.tolist() == pytest.approx(want_comp.tolist(), abs=1e-6)
    assert suff.tolist() == pytest.approx(want_suff.tolist(), abs=1e-6)
    for values in (comp, suff):
        assert bool(((values >= -1) & (values <= 1)).all())
    # The single-metric functions agree with the pair.
    assert comprehensiveness(model, IDS, SCORES).tolist() == pytest.approx(comp.tolist())
    assert sufficiency(model, IDS, SCORES).tolist() == pytest.approx(suff.tolist())


def test_a_probs_model_is_not_softmaxed_again_and_logits_are_never_raw():
    probs_model = seeded_model(GRUClassifier, "probs")
    comp, _ = comprehensiveness_sufficiency(probs_model, IDS, SCORES)
    # softmax of probabilities (the old "probability" reading of any output) differs
    twice, _ = aopc_by_hand(
        lambda toks: torch.softmax(probabilities_by_hand(probs_model, toks, "probs"), dim=-1)
    )
    assert (comp - twice).abs().max() > 1e-4
    logits_model = seeded_model(GRUClassifier, "logits")
    comp_l, _ = comprehensiveness_sufficiency(logits_model, IDS, SCORES)
    # the same network: logits + softmax gives the probabilities model's numbers
    assert comp_l.tolist() == pytest.approx(comp.tolist(), abs=1e-6)


def test_pad_id_one_is_respected():
    model = seeded_model(GRUClassifier, "probs")
    probs_of = lambda toks: probabilities_by_hand(model, toks, "probs")  # noqa: E731
    comp, suff = comprehensiveness_sufficiency(model, IDS, SCORES)
    # A pad-0 assumption would drop the real token 0 of every sequence.
    saved = [list(r) for r in TOKENS], [list(a) for a in ATTR]
    try:
        for tokens, attr in zip(TOKENS, ATTR, strict=True):
            j = tokens.index(0)
            del tokens[j], attr[j]
        wrong_comp, wrong_suff = aopc_by_hand(probs_of)
    finally:
        TOKENS[:], ATTR[:] = saved
    assert (comp - wrong_comp).abs().max() > 1e-4 or (suff - wrong_suff).abs().max() > 1e-4
    # Padding with more 1s changes nothing; the pad id given as a hint is the same.
    wider = torch.cat([IDS, torch.full((3, 2), PAD)], dim=1)
    comp_w, suff_w = comprehensiveness_sufficiency(model, wider, SCORES, pad_id=PAD)
    assert comp_w.tolist() == pytest.approx(comp.tolist(), abs=1e-9)
    assert suff_w.tolist() == pytest.approx(suff.tolist(), abs=1e-9)


def test_a_model_without_padding_idx_needs_pad_id():
    model = seeded_model(GRUClassifier, "probs")
    model.embedding.padding_idx = None
    with pytest.raises(ValueError, match="pad_id"):
        comprehensiveness(model, IDS, SCORES)
    comp = comprehensiveness(model, IDS, SCORES, pad_id=PAD)
    assert comp.shape == (3,)


def test_a_time_major_model_matches_its_batch_first_twin():
    time_major = seeded_model(TimeMajorLSTM)
    twin = TimeMajorLSTM(batch_first=True).eval()
    twin.load_state_dict(time_major.state_dict())
    ids_tm = IDS.t().contiguous()
    for fn in (comprehensiveness, sufficiency, deletion_auc, insertion_auc, loo_kendall):
        a = fn(time_major, ids_tm, SCORES)
        b = fn(twin, IDS, SCORES)
        assert a.tolist() == pytest.approx(b.tolist(), abs=1e-6, nan_ok=True), fn.__name__
    drops = leave_one_out(time_major, ids_tm)
    torch.testing.assert_close(drops, leave_one_out(twin, IDS), atol=1e-6, rtol=0)
    a = infidelity(time_major, ids_tm, SCORES, n_perturb_samples=4)
    b = infidelity(twin, IDS, SCORES, n_perturb_samples=4)
    assert a.tolist() == pytest.approx(b.tolist(), abs=1e-6)
    # ... and the hand computation, with the model fed (time, batch) ids.
    by_hand = lambda toks: torch.softmax(  # noqa: E731
        time_major(torch.tensor([toks]).t(), torch.tensor([len(toks)]))[0].detach().double(), -1
    )
    want, _ = aopc_by_hand(by_hand)
    assert comprehensiveness(time_major, ids_tm, SCORES).tolist() == pytest.approx(
        want.tolist(), abs=1e-6
    )


def test_explanations_from_explain_score_on_a_user_model():
    model = seeded_model(GRUClassifier, "logits")
    explanations = captum_rnn.explain(model, IDS, "saliency")
    comp, suff = comprehensiveness_sufficiency(model, IDS, explanations)
    assert comp.shape == suff.shape == (3,)
    assert bool(((comp >= -1) & (comp <= 1)).all())


def test_attributions_shorter_than_a_sequence_are_an_error():
    model = seeded_model(GRUClassifier, "probs")
    with pytest.raises(ValueError, match=r"sequence 0 .*6 real tokens") as error:
        comprehensiveness(model, IDS, SCORES[:, :4])
    assert "4 positions" in str(error.value)
    with pytest.raises(ValueError, match=r"\[1\] has 3 scores but sequence 1 has 4"):
        comprehensiveness(model, IDS, [ATTR[0], ATTR[1][:3], ATTR[2]])
    # Trailing padding only may be left out: nothing real is lost.
    wider = torch.cat([IDS, torch.full((3, 2), PAD)], dim=1)
    assert comprehensiveness(model, wider, SCORES).shape == (3,)


def test_old_output_values_are_deprecated_aliases():
    model = seeded_model(GRUClassifier, "logits")
    comp = comprehensiveness(model, IDS, SCORES)
    for old in ("auto", "probability"):
        with pytest.deprecated_call():
            assert comprehensiveness(model, IDS, SCORES, output=old).tolist() == pytest.approx(
                comp.tolist()
            )
    with pytest.deprecated_call():
        raw = comprehensiveness(model, IDS, SCORES, output="raw")
    assert (raw - comp).abs().max() > 1e-4  # the logits themselves
    # output= now names what the model returns
    assert comprehensiveness(model, IDS, SCORES, output="logits").tolist() == pytest.approx(
        comp.tolist()
    )
    with pytest.raises(ValueError, match="output must be one of"):
        comprehensiveness(model, IDS, SCORES, output="probabilities")


def test_benchmark_on_a_user_model_with_hints():
    model = seeded_model(TimeMajorLSTM)
    result = benchmark(
        model,
        IDS.t().contiguous(),
        methods=["saliency"],
        metrics=["comprehensiveness", "sufficiency", "loo_kendall"],
        progress=False,
        batch_first=False,
    )
    rows = {r["method"]: r for r in result}
    assert set(rows) == {"saliency", "random"}
    for row in rows.values():
        assert -1 <= row["comprehensiveness"] <= 1
        assert row["faithfulness"] == pytest.approx(row["comprehensiveness"] - row["sufficiency"])


# ---------------------------------------------------------------------- the zoo
zoo = pytest.importorskip("zoo")


def _first(case, n=6):
    """The first ``n`` sequences of a zoo case, in the model's own layout."""
    axis = 0 if case.batch_first or not case.token else 1
    if not case.token and not case.batch_first:
        axis = 1
    inputs = case.inputs.narrow(axis, 0, n)
    lengths = None if case.lengths is None else case.lengths[:n]
    return inputs, lengths


def _probabilities_by_hand(case, inputs, lengths):
    seq = captum_rnn.adapt(case.model, **case.hints)
    with torch.no_grad():
        out = case.call(inputs, lengths).double()
    seq.observe(out)
    probs = seq.probabilities(out)
    return probs[:, 1:] if out.shape[-1] == 1 else probs


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_models_are_scored_by_their_probabilities(name):
    case = zoo.build(name)
    inputs, lengths = _first(case)
    explanations = captum_rnn.explain(case.model, inputs, "saliency", lengths=lengths, **case.hints)
    comp, suff = comprehensiveness_sufficiency(
        case.model, inputs, explanations, lengths=lengths, **case.hints
    )
    for values in (comp, suff):
        assert bool(torch.isfinite(values).all())
        assert bool(((values >= -1) & (values <= 1)).all())
    # Replacing every real token by the baseline (the pad id / zeros), by hand.
    full = _probabilities_by_hand(case, inputs, lengths)
    target = full.argmax(dim=-1)
    if case.token:
        real = inputs != case.pad_id
        blank = torch.where(real, torch.full_like(inputs, case.pad_id), inputs)
    else:
        blank = torch.zeros_like(inputs)
    # A model told its padding by a mask (src == pad, input_ids != pad) is told the
    # replaced tokens are padding, as its user builds the mask from the ids.
    takes_mask = captum_rnn.adapt(case.model, **case.hints).mask_arg is not None
    empty = _probabilities_by_hand(case, blank, None if takes_mask else lengths)
    pick = lambda p: p.gather(1, target[:, None])[:, 0]  # noqa: E731
    want = pick(full) - pick(empty)
    comp_all, suff_all = comprehensiveness_sufficiency(
        case.model,
        inputs,
        explanations,
        lengths=lengths,
        fractions=(1.0,),
        removal="replace",
        **case.hints,
    )
    assert comp_all.tolist() == pytest.approx(want.tolist(), abs=1e-6)
    assert suff_all.tolist() == pytest.approx([0.0] * len(want), abs=1e-12)


def test_the_deprecation_warning_points_at_the_callers_line():
    model = seeded_model(GRUClassifier, "logits")
    with pytest.warns(DeprecationWarning, match="output='auto' is deprecated") as record:
        comprehensiveness(model, IDS, SCORES, output="auto")
    assert record[0].filename == __file__
