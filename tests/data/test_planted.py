import pytest
import torch

from captum_rnn.data import PlantedCues, SequenceDataset, Vocabulary, planted_cues


def test_structure_and_ground_truth():
    data = planted_cues(101, length=(8, 20), vocab_size=30, num_cues=2, seed=0)
    assert isinstance(data, PlantedCues) and len(data) == 101
    assert sum(data.labels) == 50 and set(data.labels) == {0, 1}
    assert data.cue_tokens == {0: "bad", 1: "good"}
    assert isinstance(data.vocab, Vocabulary) and len(data.vocab) == 2 + 2 + 30
    cue_ids = data.cue_ids
    assert cue_ids == {0: data.vocab.index("bad"), 1: data.vocab.index("good")}
    for seq, label, mask in zip(data.sequences, data.labels, data.masks, strict=True):
        assert seq.dtype == torch.long and mask.dtype == torch.bool
        assert seq.shape == mask.shape and 8 <= len(seq) <= 20
        assert int(seq.min()) >= 2 and int(seq.max()) < len(data.vocab)
        assert int(mask.sum()) == 2
        assert torch.all(seq[mask] == cue_ids[label])
        # the cues of either class appear nowhere else
        assert not torch.isin(seq[~mask], torch.tensor(list(cue_ids.values()))).any()
        tokens = data.vocab.decode(seq)
        assert all(t.startswith("w") for t, m in zip(tokens, mask.tolist(), strict=True) if not m)


def test_all_fillers_used_and_fixed_length():
    data = planted_cues(200, length=10, vocab_size=5, seed=1)
    assert {len(s) for s in data.sequences} == {10}
    fillers = torch.cat([s[~m] for s, m in zip(data.sequences, data.masks, strict=True)])
    assert set(data.vocab.decode(fillers.unique())) == {f"w{i}" for i in range(5)}


def test_deterministic_for_a_seed():
    a, b, c = planted_cues(20, seed=3), planted_cues(20, seed=3), planted_cues(20, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.sequences, b.sequences, strict=True))
    assert a.labels == b.labels
    assert any(
        x.shape != y.shape or not torch.equal(x, y)
        for x, y in zip(a.sequences, c.sequences, strict=True)
    )


def test_to_dataset():
    data = planted_cues(10, seed=0)
    ds = data.to_dataset()
    assert isinstance(ds, SequenceDataset) and len(ds) == 10
    ids, target = ds[3]
    assert torch.equal(ids, data.sequences[3]) and target.item() == data.labels[3]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n": -1}, ValueError),
        ({"n": 5, "vocab_size": 0}, ValueError),
        ({"n": 5, "num_cues": 0}, ValueError),
        ({"n": 5, "length": (3, 2)}, ValueError),
        ({"n": 5, "length": 2, "num_cues": 3}, ValueError),
        ({"n": 5, "length": "long"}, TypeError),
        ({"n": 5, "length": (1, 2, 3)}, TypeError),
    ],
)
def test_invalid_arguments(kwargs, error):
    with pytest.raises(error):
        planted_cues(**kwargs)


@pytest.mark.parametrize(
    "length, match",
    [
        ((3, 2), r"length must satisfy 1 <= min <= max, got \(3, 2\)"),
        ((0, 4), r"length must satisfy 1 <= min <= max"),
        (2, r"num_cues <= min <= max, got length=2 with num_cues=3"),
        ([True, 4], "an int or a \\(min, max\\) pair of ints"),
    ],
)
def test_length_errors_name_the_bound(length, match):
    with pytest.raises((ValueError, TypeError), match=match):
        planted_cues(5, length=length, num_cues=3)
