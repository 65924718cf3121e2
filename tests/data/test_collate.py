import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from captum_rnn.data import PadCollate, SequenceDataset, pad_collate


def test_dataset_converts_lists_and_arrays():
    ds = SequenceDataset(
        [[2, 3, 4], np.array([5], dtype=np.int32), torch.tensor([6, 7])], [1, 0, 1]
    )
    assert len(ds) == 3
    seq, target = ds[1]
    assert seq.dtype == torch.long and seq.tolist() == [5]
    assert target.dtype == torch.long and target.item() == 0
    assert ds.lengths.tolist() == [3, 1, 2]
    assert not ds.is_continuous


def test_dataset_continuous_and_regression_targets():
    seqs = [np.random.default_rng(0).normal(size=(4, 3)), [[0.5, 1.0, 2.0]]]
    ds = SequenceDataset(seqs, [0.25, -1.5])
    seq, target = ds[0]
    assert seq.shape == (4, 3) and seq.dtype == torch.float32
    assert target.dtype == torch.float32 and target.item() == pytest.approx(0.25)
    assert ds.is_continuous


def test_dataset_tensor_targets():
    ds = SequenceDataset([[2], [3]], [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])
    assert ds[1][1].tolist() == [3.0, 4.0]
    ds = SequenceDataset([[2], [3]], torch.tensor([1, 0]))
    assert ds[0][1].item() == 1


@pytest.mark.parametrize(
    "sequences, targets, error, match",
    [
        ([[2, 3], []], [0, 1], ValueError, r"sequences\[1\]"),
        ([[2, 3], torch.zeros(0, dtype=torch.long)], [0, 1], ValueError, r"sequences\[1\].*empty"),
        ([[2, 3]], [0, 1], ValueError, "differ in length"),
        ([[2, 3], torch.ones(2, 3)], [0, 1], ValueError, r"sequences\[1\]"),
        ([torch.ones(2, 3), torch.ones(2, 4)], [0, 1], ValueError, r"sequences\[1\].*features"),
        ([torch.tensor([1.0, 2.0])], [0], TypeError, r"sequences\[0\]"),
        ([torch.ones(2, 2, dtype=torch.long)], [0], TypeError, r"sequences\[0\]"),
        ([torch.ones(2, 2, 2)], [0], ValueError, r"sequences\[0\]"),
        ([torch.tensor([[float("nan")]])], [0], ValueError, "NaN"),
        ([[2, -1]], [0], ValueError, "negative"),
        ([[2]], [float("nan")], ValueError, "NaN"),
        ([[2]], ["a"], TypeError, "targets"),
        (torch.ones(3, 2, dtype=torch.long), [0, 1, 2], TypeError, "sequences"),
    ],
)
def test_dataset_validation(sequences, targets, error, match):
    with pytest.raises(error, match=match):
        SequenceDataset(sequences, targets)


def test_pad_collate_tokens():
    batch = [(torch.tensor([2, 3, 4]), torch.tensor(1)), (torch.tensor([5]), torch.tensor(0))]
    inputs, lengths, targets = pad_collate(batch)
    assert inputs.dtype == torch.long and inputs.shape == (2, 3)
    assert inputs.tolist() == [[2, 3, 4], [5, 0, 0]]
    assert lengths.dtype == torch.long and lengths.tolist() == [3, 1]
    assert targets.tolist() == [1, 0]


def test_pad_collate_continuous():
    a, b = torch.randn(2, 5), torch.randn(4, 5)
    inputs, lengths, targets = pad_collate([(a, torch.tensor(0.5)), (b, torch.tensor(1.5))])
    assert inputs.shape == (2, 4, 5) and inputs.dtype == torch.float32
    assert torch.equal(inputs[0, :2], a) and torch.equal(inputs[1], b)
    assert torch.all(inputs[0, 2:] == 0)
    assert lengths.tolist() == [2, 4]
    assert targets.dtype == torch.float32 and targets.tolist() == [0.5, 1.5]


def test_pad_collate_padding_value_and_plain_targets():
    inputs, _, targets = pad_collate([([2, 3], 1), ([4], 0)], padding_value=9)
    assert inputs.tolist() == [[2, 3], [4, 9]]
    assert targets.tolist() == [1, 0]


def test_pad_collate_with_dataloader():
    ds = SequenceDataset([[2, 3, 4], [5], [6, 7]], [1, 0, 1])
    batches = list(DataLoader(ds, batch_size=2, collate_fn=pad_collate))
    assert [b[0].shape for b in batches] == [(2, 3), (1, 2)]
    assert all(len(b) == 3 for b in batches)


def test_pad_to_fixed_length():
    collate = PadCollate(pad_to=6)
    inputs, lengths, _ = collate([(torch.tensor([2, 3]), 1), (torch.tensor([4]), 0)])
    assert inputs.shape == (2, 6) and inputs[:, 2:].eq(0).all()
    assert lengths.tolist() == [2, 1]
    inputs, _, _ = PadCollate(pad_to=3)([(torch.randn(2, 4), 0.0)])
    assert inputs.shape == (1, 3, 4)
    inputs, _, _ = PadCollate(padding_value=-1)([(torch.tensor([2, 3]), 1), (torch.tensor([4]), 0)])
    assert inputs.tolist() == [[2, 3], [4, -1]]
    assert "pad_to=6" in repr(collate)


def test_pad_to_errors():
    with pytest.raises(ValueError, match="pad_to"):
        PadCollate(pad_to=2)([(torch.tensor([2]), 0), (torch.tensor([2, 3, 4]), 1)])
    with pytest.raises(ValueError, match="pad_to"):
        PadCollate(pad_to=0)


@pytest.mark.parametrize(
    "batch, match",
    [
        ([], "empty"),
        ([(torch.tensor([2]),)], "pair"),
        ([(torch.zeros(0, dtype=torch.long), 0)], "non-empty"),
        ([(torch.tensor([2]), 0), (torch.ones(1, 3), 1)], "incompatible"),
        ([(torch.ones(2, 3), 0), (torch.ones(2, 4), 1)], "incompatible"),
        (
            [(torch.tensor([2]), torch.tensor([1, 2])), (torch.tensor([3]), torch.tensor(0))],
            "targets",
        ),
    ],
)
def test_pad_collate_errors(batch, match):
    with pytest.raises(ValueError, match=match):
        pad_collate(batch)
