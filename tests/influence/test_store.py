"""ExampleStore: one row per example in every array, checked when it is built."""

from __future__ import annotations

import numpy as np
import pytest

from captum_rnn.influence import ExampleStore


def _store(**changes):
    args = dict(
        vectors={"pooled": np.zeros((3, 2), np.float32)},
        labels=np.array([0, 1, 1]),
        predictions=np.array([0, 1, 0]),
        model_fingerprint="m",
        data_fingerprint="d",
        info={"metric": "cosine"},
    )
    args.update(changes)
    return ExampleStore(**args)


def test_store_keeps_its_arguments():
    info = {"metric": "cosine"}
    store = _store(info=info)
    assert len(store) == 3 and store.layers == ["pooled"]
    assert (store.model_fingerprint, store.data_fingerprint) == ("m", "d")
    assert store.labels.tolist() == [0, 1, 1] and store.predictions.tolist() == [0, 1, 0]
    assert store.info == info and store.info is not info  # a copy
    assert _store(info=None).info == {} and _store(labels=None).labels is None


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"vectors": {}}, "at least one layer"),
        ({"labels": np.array([0, 1])}, "labels have 2 rows, predictions 3"),
        ({"vectors": {"pooled": np.zeros((2, 2))}}, r"vectors\['pooled'\] must be \(3, dim\)"),
        ({"vectors": {"pooled": np.zeros((3, 2, 1))}}, r"must be \(3, dim\), got \(3, 2, 1\)"),
    ],
)
def test_store_refuses_rows_that_do_not_match(changes, match):
    with pytest.raises(ValueError, match=match):
        _store(**changes)
