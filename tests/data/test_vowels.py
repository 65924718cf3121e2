import pytest
import torch

from captum_rnn.data import (
    DataUnavailableError,
    PadCollate,
    load_japanese_vowels,
    parse_ts,
)

TINY = """# a comment
@problemName Tiny
@timeStamps false
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2 3
@data
1.0,2.0,3.0:4.0,5.0,6.0:2
0.5,0.25:-1,-2:3
"""


def test_parse_tiny_file():
    data = parse_ts(TINY)
    assert data.name == "Tiny" and data.class_names == ["1", "2", "3"]
    assert data.labels == [1, 2]
    assert data.series[0].shape == (3, 2)
    assert data.series[0][:, 1].tolist() == [4.0, 5.0, 6.0]
    inputs, lengths, targets = PadCollate()([data.to_dataset()[i] for i in range(2)])
    assert inputs.shape == (2, 3, 2) and lengths.tolist() == [3, 2]


@pytest.mark.parametrize(
    "text, match",
    [
        ("@classLabel true 1 2\n@data\n1,2:3:1\n", "line 3: dimensions have different lengths"),
        ("@classLabel true 1 2\n@data\n1,2:3,4:7\n", "unknown class label"),
        ("@classLabel true 1 2\n@data\n1,x:3,4:1\n", "line 3"),
        ("@data\n1,2:1\n", "before an '@classLabel"),
        ("@classLabel true 1\n", "no '@data'"),
    ],
)
def test_malformed_files(text, match):
    with pytest.raises(ValueError, match=match):
        parse_ts(text)


@pytest.mark.network
def test_real_japanese_vowels():
    try:
        train = load_japanese_vowels("train")
        test = load_japanese_vowels("test")
    except DataUnavailableError as error:
        pytest.skip(f"registry not reachable: {error}")
    assert (len(train), len(test)) == (270, 370)
    assert train.num_features == 12 and len(train.class_names) == 9
    lengths = [s.shape[0] for s in train.series + test.series]
    assert min(lengths) == 7 and max(lengths) == 29
    assert torch.bincount(torch.tensor(train.labels)).tolist() == [30] * 9
    with pytest.raises(ValueError, match="split"):
        load_japanese_vowels("validation")
