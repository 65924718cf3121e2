"""The dates translation data and Seq2SeqAttention: alignments, padding, IG per output step."""

import datetime

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from captum.attr import LayerIntegratedGradients
from torch.utils.data import DataLoader

from captum_rnn.data import DATE_FORMATS, date_pairs, format_date, pad_collate
from captum_rnn.models.seq2seq import Seq2SeqAttention


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_MONTHS = "january february march april may june july august september october november december"


# ----------------------------------------------------------------------- data
def test_format_date_examples_from_the_issue():
    date = datetime.date(1998, 3, 3)
    assert format_date(date, "weekday_ordinal_of_month")[0] == "tuesday 3rd of march 1998"
    assert format_date(date, "us_short")[0] == "3/3/98"
    assert format_date(date, "month_day_year", case="title")[0] == "March 3, 1998"
    assert format_date(date, "dd_mon_yy", case="upper")[0] == "03-MAR-98"


def test_spans_write_the_fields_of_the_iso_target():
    data = date_pairs(400, seed=0)
    months = _MONTHS.split()
    assert set(data.formats) == set(DATE_FORMATS)
    for source, target, spans in zip(data.sources, data.targets, data.spans, strict=True):
        year, month, day = (int(x) for x in target.split("-"))
        text = {field: source[a:b].lower() for field, (a, b) in spans.items()}
        assert text["year"] in (str(year), f"{year % 100:02d}")
        assert text["month"] in (
            str(month),
            f"{month:02d}",
            months[month - 1],
            months[month - 1][:3],
        )
        assert text["day"].rstrip("stndrh") in (str(day), f"{day:02d}")
        # Spans do not overlap.
        (a1, b1), (a2, b2), (a3, b3) = sorted(spans.values())
        assert b1 <= a2 and b2 <= a3


def test_data_is_deterministic_and_encodes():
    a, b = date_pairs(50, seed=3), date_pairs(50, seed=3)
    assert a.sources == b.sources and a.targets == b.targets
    assert a.sources != date_pairs(50, seed=4).sources
    ids = a.encode_source(a.sources[0])
    assert ids.shape == (len(a.sources[0]),) and (ids > 1).all()
    target = a.encode_target(a.targets[0])
    assert target.shape == (12,) and target[0] == a.bos_index and target[-1] == a.eos_index
    assert a.decode_target(target) == a.targets[0]
    assert a.span_mask(0, "month").sum() == a.spans[0]["month"][1] - a.spans[0]["month"][0]
    assert list(a.output_steps("month")) == [5, 6]
    src, lengths, tgt = pad_collate([a.to_dataset()[i] for i in range(4)])
    assert tgt.shape == (4, 12) and lengths.tolist() == [len(s) for s in a.sources[:4]]


def test_two_digit_years_have_one_reading():
    data = date_pairs(300, seed=1, formats=["us_short"], years=(1950, 2049))
    for source, target in zip(data.sources, data.targets, strict=True):
        yy = int(source.split("/")[-1])
        assert int(target[:4]) == (1900 + yy if yy >= 50 else 2000 + yy)
    with pytest.raises(ValueError, match="ambiguous"):
        date_pairs(5, formats=["us_short"], years=(1900, 2049))


def test_bad_data_arguments():
    with pytest.raises(ValueError, match="formats"):
        date_pairs(5, formats=["roman"])
    with pytest.raises(ValueError, match="n must"):
        date_pairs(-1)
    with pytest.raises(ValueError, match="case"):
        format_date(datetime.date(2000, 1, 1), "us_short", case="camel")


# ----------------------------------------------------------------------- model
def tiny(seed=0, cell="gru"):
    torch.manual_seed(seed)
    return Seq2SeqAttention(70, 16, embedding_dim=8, hidden_size=12, cell=cell).eval()


def batch():
    data = date_pairs(4, seed=2)
    return (*pad_collate([data.to_dataset()[i] for i in range(4)]), data)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_teacher_forced_logits_and_recorded_alignments(cell):
    model = tiny(cell=cell)
    src, lengths, tgt, _ = batch()
    logits = model(src, tgt[:, :-1], lengths)
    assert logits.shape == (4, 11, 16)
    [maps] = model.attention_maps
    assert maps.shape == (4, 1, 11, src.shape[1])
    torch.testing.assert_close(maps.sum(-1), torch.ones(4, 1, 11))
    pad = torch.arange(src.shape[1])[None, :] >= lengths[:, None]
    assert (maps[:, 0].transpose(1, 2)[pad] == 0).all()


def test_padding_and_batch_do_not_change_the_translation():
    model = tiny()
    src, lengths, tgt, _ = batch()
    with torch.no_grad():
        short = model(src, tgt[:, :-1], lengths)
        longer = torch.cat([src, torch.zeros(4, 9, dtype=torch.long)], dim=1)
        long = model(longer, tgt[:, :-1])
        alone = torch.cat(
            [model(src[i : i + 1, : lengths[i]], tgt[i : i + 1, :-1]) for i in range(4)]
        )
    torch.testing.assert_close(long, short, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone, short, atol=1e-5, rtol=0)


def test_greedy_translation_shapes():
    model = tiny()
    src, lengths, _, _ = batch()
    tokens, attention = model.translate(src, lengths, max_length=7)
    assert tokens.shape[0] == 4 and tokens.shape[1] <= 7
    assert attention.shape == (4, tokens.shape[1], src.shape[1])
    assert model.attention_maps[0].shape == (4, 1, tokens.shape[1], src.shape[1])


def test_step_function_with_layer_integrated_gradients():
    model = tiny()
    src, lengths, tgt, _ = batch()
    step = 5
    produced = model(src, tgt[:, :-1], lengths)[:, step].argmax(-1)
    lig = LayerIntegratedGradients(model.step_function(step), model.embedding)
    attr, delta = lig.attribute(
        src,
        baselines=torch.zeros_like(src),
        target=produced,
        additional_forward_args=(tgt[:, :-1], lengths),
        n_steps=32,
        return_convergence_delta=True,
    )
    assert attr.shape == (4, src.shape[1], 8)
    assert (attr[src == 0] == 0).all()
    assert delta.abs().max() < 0.05
    with pytest.raises(ValueError, match="step"):
        model.step_function(20)(src, tgt[:, :-1], lengths)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="cell"):
        Seq2SeqAttention(10, 10, cell="rnn")
    with pytest.raises(ValueError, match="bos_idx"):
        Seq2SeqAttention(10, 5, bos_idx=7)
    model = tiny()
    with pytest.raises(ValueError, match="tgt_in"):
        model(torch.tensor([[3, 4]]), torch.tensor([2.0]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[3, 400]]), torch.tensor([[2]]))


def test_lightning_fit_runs():
    data = date_pairs(64, seed=0)
    model = Seq2SeqAttention(
        len(data.source_vocab),
        len(data.target_vocab),
        embedding_dim=8,
        hidden_size=12,
        bos_idx=data.bos_index,
        eos_idx=data.eos_index,
    )
    loader = DataLoader(data.to_dataset(), batch_size=32, collate_fn=pad_collate)
    trainer = pl.Trainer(
        fast_dev_run=2, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, loader, loader)
    predictions = trainer.predict(model, loader)
    assert predictions[0].shape[0] == 32


# ----------------------------------------------------------------------- trained
@pytest.fixture(scope="module")
def trained_dates():
    """A small date translator trained for a few seconds (one thread: tiny matrices)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: the autouse fixture does not cover setup
    try:
        data = date_pairs(3000, seed=0)
        torch.manual_seed(0)
        model = Seq2SeqAttention(
            len(data.source_vocab),
            len(data.target_vocab),
            embedding_dim=16,
            hidden_size=32,
            bos_idx=data.bos_index,
            eos_idx=data.eos_index,
            lr=1e-2,
        )
        optimizer = model.configure_optimizers()
        loader = DataLoader(
            data.to_dataset(),
            batch_size=128,
            shuffle=True,
            collate_fn=pad_collate,
            generator=torch.Generator().manual_seed(0),
        )
        for _ in range(6):
            for src, lengths, tgt in loader:
                logits = model(src, tgt[:, :-1], lengths)
                loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    held_out = date_pairs(100, seed=1)
    return model.eval(), held_out


@pytest.mark.slow
def test_cross_attention_for_the_month_sits_on_the_month_span(trained_dates):
    model, data = trained_dates
    ds = data.to_dataset()
    src, lengths, _ = pad_collate([ds[i] for i in range(len(ds))])
    tokens, attention = model.translate(src, lengths, max_length=11)
    predicted = [data.decode_target(t) for t in tokens]
    accuracy = sum(p == t for p, t in zip(predicted, data.targets, strict=True)) / len(data)
    shares = {}
    for field in ("year", "month", "day"):
        values = [
            float(attention[i, step, : len(data.sources[i])][data.span_mask(i, field)].sum())
            for i in range(len(data))
            for step in data.output_steps(field)
        ]
        shares[field] = sum(values) / len(values)
    print(f"date model: accuracy {accuracy:.2f}, attention share on the field's span {shares}")
    assert accuracy >= 0.8
    # Seen: month 0.78, year 0.94, day 0.80 (accuracy 0.99).
    assert shares["month"] > 0.6
    assert min(shares.values()) > 0.5


@pytest.mark.slow
def test_integrated_gradients_of_a_month_step_favour_the_month_span(trained_dates):
    model, data = trained_dates
    ds = data.to_dataset()
    src, lengths, tgt = pad_collate([ds[i] for i in range(40)])
    step = 6  # the second month digit
    lig = LayerIntegratedGradients(model.step_function(step), model.embedding)
    attr = lig.attribute(
        src,
        baselines=torch.zeros_like(src),
        target=tgt[:, step + 1],
        additional_forward_args=(tgt[:, :-1], lengths),
        n_steps=32,
    )
    scores = attr.sum(-1).abs()
    share = torch.stack(
        [
            scores[i, : lengths[i]][data.span_mask(i, "month")].sum() / scores[i].sum()
            for i in range(40)
        ]
    )
    width = torch.tensor([data.span_mask(i, "month").float().mean() for i in range(40)])
    print(f"IG share on the month span {share.mean():.2f} (span covers {width.mean():.2f})")
    # Seen: 0.56 of |IG| on a span covering about a quarter of the characters.
    assert share.mean() > 1.5 * width.mean()
