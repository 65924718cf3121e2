"""ExplanationWriter under faults: killed runs, removed shards, full disks, lying files, links.

Nothing silent, nothing lost: ``read_explanations`` refuses (or, with ``strict=False``,
warns about) a folder the writer did not finish, a second ``trainer.predict`` with the
same writer completes it without explaining again what is already written, and no
write follows a symbolic link.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from callback_helpers import cue_data, tiny_model, trainer
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader

import captum_rnn.callbacks._explaining_module as explaining_module
import captum_rnn.callbacks._writer as writer_module
from captum_rnn.callbacks import ExplainingModule, ExplanationWriter, read_explanations
from captum_rnn.data import Vocabulary, pad_collate
from captum_rnn.influence import ExampleStore

N, BATCH = 64, 8  # eight batches


@pytest.fixture(scope="module")
def setting():
    data = cue_data(n=N)
    model = tiny_model(len(data.vocab)).eval()
    return data, model


def _module(setting):
    data, model = setting
    return ExplainingModule(model, vocab=data.vocab, n_steps=8)


def _loader(setting):
    return DataLoader(setting[0].to_dataset(), batch_size=BATCH, collate_fn=pad_collate)


def _predict(tmp_path, setting, out, writer=None, callbacks=()):
    writer = writer or ExplanationWriter(out)
    t = trainer(tmp_path, callbacks=[writer, *callbacks])
    t.predict(_module(setting), dataloaders=_loader(setting), return_predictions=False)
    return writer


@pytest.fixture(scope="module")
def reference(tmp_path_factory, setting):
    # Module fixtures run before conftest's one-thread fixture: pin it here too, so the
    # reference is computed as the tests (and the child process) compute.
    out = tmp_path_factory.mktemp("reference") / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _predict(out.parent, setting, out)
    finally:
        torch.set_num_threads(threads)
    return read_explanations(out, as_arrays=True)


@pytest.fixture
def explained(monkeypatch):
    """Counts the batches ExplainingModule really explains."""
    calls = []
    original = explaining_module.explain_batch

    def counting(model, batch, *args, **kwargs):
        calls.append(len(batch[1]))
        return original(model, batch, *args, **kwargs)

    monkeypatch.setattr(explaining_module, "explain_batch", counting)
    return calls


def _assert_equal(got, want):
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _shards(out):
    return sorted(out.glob("explanations-*.npz"))


def _committed(out):
    """Shards whose record is written too."""
    return [p for p in _shards(out) if p.with_suffix(".json").is_file()]


class _Crash(Callback):
    """Raises after ``after`` batches, as a crashed job stops."""

    def __init__(self, after):
        self.after = after

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
        if batch_idx + 1 == self.after:
            raise RuntimeError("the job died")


_CHILD = """
import sys, time
sys.path.insert(0, {helpers!r})
import torch
torch.set_num_threads(1)
from callback_helpers import cue_data, tiny_model, trainer
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader
from captum_rnn.callbacks import ExplainingModule, ExplanationWriter
from captum_rnn.data import pad_collate

data = cue_data(n={n})
model = tiny_model(len(data.vocab))
model.load_state_dict(torch.load({weights!r}, weights_only=True))
model.eval()

class Pause(Callback):
    def on_predict_batch_end(self, *args, **kwargs):
        time.sleep(0.4)

loader = DataLoader(data.to_dataset(), batch_size={batch}, collate_fn=pad_collate)
t = trainer({root!r}, callbacks=[ExplanationWriter({out!r}), Pause()])
t.predict(ExplainingModule(model, vocab=data.vocab, n_steps=8), loader, return_predictions=False)
"""


def test_a_killed_run_is_completed_by_running_it_again(tmp_path, setting, reference, explained):
    data, model = setting
    out = tmp_path / "out"
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    script = tmp_path / "child.py"
    script.write_text(
        _CHILD.format(
            helpers=str(Path(__file__).parent),
            n=N,
            batch=BATCH,
            weights=str(weights),
            root=str(tmp_path / "root"),
            out=str(out),
        )
    )
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen([sys.executable, str(script)], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    try:
        # a shard counts as written once its record is (the writer's commit point): a kill
        # between the two leaves a shard that the next run writes again
        while len(_committed(out)) < 3:
            assert child.poll() is None, (tmp_path / "child.log").read_text()
            assert time.monotonic() < deadline, "the child wrote no shards in 60 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        log.close()
    assert child.returncode == -signal.SIGKILL
    written = {
        p.name: p.stat().st_mtime_ns for p in _shards(out) if p.with_suffix(".json").is_file()
    }
    assert 3 <= len(written) < N // BATCH

    with pytest.raises(ValueError, match=r"rank 0 did not finish: batches \d-7 of 8 never written"):
        read_explanations(out)
    with pytest.warns(UserWarning, match="did not finish"):
        partial = read_explanations(out, as_arrays=True, strict=False)
    assert len(partial["index"]) == BATCH * len(written)

    # The same writer settings on the same folder: only the missing batches are explained.
    _predict(tmp_path, setting, out)
    assert len(explained) == N // BATCH - len(written)
    assert {p.name: p.stat().st_mtime_ns for p in _shards(out) if p.name in written} == written
    assert len(_shards(out)) == N // BATCH
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".npz")) == [
        "manifest-rank000.json",
        "meta.json",
        "vocab.json",
    ]
    _assert_equal(read_explanations(out, as_arrays=True), reference)


def test_a_crashed_run_is_refused_then_completed(tmp_path, setting, reference, explained):
    out = tmp_path / "out"
    writer = ExplanationWriter(out)
    with pytest.raises(RuntimeError, match="the job died"):
        _predict(tmp_path, setting, out, writer, callbacks=[_Crash(after=4)])
    with pytest.raises(ValueError) as caught:
        read_explanations(out)
    assert "rank 0 did not finish: batches 4-7 of 8 never written" in str(caught.value)
    with pytest.warns(UserWarning, match="did not finish"):
        assert len(read_explanations(out, strict=False)) == N // 2
    explained.clear()
    _predict(tmp_path, setting, out, writer)  # the same writer object
    assert len(explained) == 4
    _assert_equal(read_explanations(out, as_arrays=True), reference)
    # A complete folder is not run again.
    with pytest.raises(FileExistsError, match="complete run"):
        _predict(tmp_path, setting, out)


def test_a_removed_shard_is_named_with_its_indices_and_written_again(
    tmp_path, setting, reference, explained
):
    out = tmp_path / "out"
    _predict(tmp_path, setting, out)
    (out / "explanations-dl0-rank000-batch0000003.npz").unlink()
    with pytest.raises(ValueError) as caught:
        read_explanations(out)
    message = str(caught.value)
    assert "missing shards: rank 0 batch 3 (indices 24-31)" in message
    assert "missing dataset indices: 24-31 (8 sequences)" in message
    with pytest.warns(UserWarning, match="missing shards"):
        got = read_explanations(out, as_arrays=True, strict=False)
    assert got["index"].tolist() == [i for i in range(N) if not 24 <= i < 32]
    # A finished folder with a hole is not complete: running again fills the hole.
    explained.clear()
    _predict(tmp_path, setting, out)
    assert explained == [BATCH]
    _assert_equal(read_explanations(out, as_arrays=True), reference)


def test_a_world_size_mismatch_is_reported_and_refused(tmp_path, setting):
    out = tmp_path / "out"
    _predict(tmp_path, setting, out)
    meta = json.loads((out / "meta.json").read_text())
    meta["world_size"] = 2
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError) as caught:
        read_explanations(out)
    assert "meta.json records world_size=2 but manifest-rank000.json records world_size=1" in str(
        caught.value
    )
    assert "rank 1 left no manifest" in str(caught.value)
    with pytest.raises(FileExistsError, match="world_size was 2, now 1"):
        _predict(tmp_path, setting, out)


def test_other_settings_or_weights_never_complete_a_folder(tmp_path, setting):
    data, model = setting
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        _predict(tmp_path, setting, out, callbacks=[_Crash(after=2)])
    other = tiny_model(len(data.vocab), seed=1).eval()
    t = trainer(tmp_path, callbacks=[ExplanationWriter(out)])
    with pytest.raises(FileExistsError, match="model_fingerprint was"):
        t.predict(ExplainingModule(other, vocab=data.vocab, n_steps=8), _loader(setting))
    t = trainer(tmp_path, callbacks=[ExplanationWriter(out)])
    with pytest.raises(FileExistsError, match="method_kwargs was"):
        t.predict(ExplainingModule(model, vocab=data.vocab, n_steps=9), _loader(setting))


def test_a_full_disk_names_the_batch_and_keeps_what_was_written(
    tmp_path, setting, reference, monkeypatch
):
    out = tmp_path / "out"
    original = writer_module.atomic_write_bytes
    shards = []

    def full_on_the_third_shard(path, data, **kwargs):
        shards.append(path)
        if len(shards) == 3:
            with writer_module.atomic_path(path) as temporary:  # half a file, then no space
                temporary.write_bytes(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        original(path, data, **kwargs)

    monkeypatch.setattr(writer_module, "atomic_write_bytes", full_on_the_third_shard)
    with pytest.raises(OSError) as caught:
        _predict(tmp_path, setting, out)
    assert caught.value.errno == errno.ENOSPC
    assert "could not write batch 2 of dataloader 0 (rank 0)" in str(caught.value)
    assert "explanations-dl0-rank000-batch0000002.npz" in str(caught.value)
    assert [p.name for p in _shards(out)] == [
        "explanations-dl0-rank000-batch0000000.npz",
        "explanations-dl0-rank000-batch0000001.npz",
    ]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match=r"batches 2-7 of 8 never written"):
        read_explanations(out)
    with pytest.warns(UserWarning):
        got = read_explanations(out, as_arrays=True, strict=False)
    _assert_equal(got, {k: v[: 2 * BATCH] for k, v in reference.items()})
    monkeypatch.setattr(writer_module, "atomic_write_bytes", original)
    _predict(tmp_path, setting, out)
    _assert_equal(read_explanations(out, as_arrays=True), reference)


def _recorded(out):
    return json.loads((out / "manifest-rank000.json").read_text())


def test_a_shard_that_disagrees_with_the_manifest_is_refused_before_it_is_read(
    tmp_path, setting, monkeypatch
):
    out = tmp_path / "out"
    _predict(tmp_path, setting, out)
    shard = out / "explanations-dl0-rank000-batch0000001.npz"
    with np.load(shard, allow_pickle=False) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    recorded = _recorded(out)["dataloaders"]["0"]["shards"][1]["arrays"]["scores"]
    assert recorded["shape"] == list(arrays["scores"].shape)
    # A few kilobytes that decompress to 64 MB of "scores".
    np.savez_compressed(shard, **{**arrays, "scores": np.zeros((BATCH, 10**6))})
    assert shard.stat().st_size < 2**20

    def no_reading(*args, **kwargs):
        raise AssertionError("a shard was read before its headers were checked")

    monkeypatch.setattr(writer_module.np, "load", no_reading)
    for strict in (True, False):
        with pytest.raises(
            ValueError, match=rf"{shard.name}: field 'scores' has shape \(8, 1000000\)"
        ):
            read_explanations(out, strict=strict)
    monkeypatch.undo()

    # Same shape, another dtype: also named before reading.
    np.savez(shard, **{**arrays, "scores": arrays["scores"].astype(np.float32)})
    with pytest.raises(ValueError, match=r"field 'scores' has shape .* dtype <f4 in the file"):
        read_explanations(out)
    # The right headers but other numbers: the checksum.
    np.savez(shard, **{**arrays, "scores": arrays["scores"] + 1})
    with pytest.raises(ValueError, match=rf"{shard.name}: the file differs .* 'blake2b'"):
        read_explanations(out)


def test_a_compressed_shard_no_manifest_records_is_refused(tmp_path, setting):
    out = tmp_path / "out"
    _predict(tmp_path, setting, out)
    stray = out / "explanations-dl0-rank000-batch0000008.npz"
    np.savez_compressed(
        stray, index=np.arange(8), lengths=np.ones(8, int), scores=np.zeros((8, 10**6))
    )
    with pytest.raises(ValueError, match="shard.s. that no manifest records: " + stray.name):
        read_explanations(out)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="compressed"):
        read_explanations(out, strict=False)


@pytest.mark.parametrize(
    "file, edit, field",
    [
        ("meta.json", lambda d: d.update(world_size="two"), "'world_size' must be an int >= 1"),
        ("meta.json", lambda d: d.update(class_names=[1, 2]), "'class_names' must be a list"),
        ("meta.json", lambda d: d.pop("method"), "'method' is missing"),
        (
            "manifest-rank000.json",
            lambda d: d["dataloaders"]["0"]["shards"][2].update(indices=[16, "17"]),
            "'dataloaders.0.shards.2.indices' must be a list of ints",
        ),
        (
            "manifest-rank000.json",
            lambda d: d["dataloaders"]["0"]["shards"][0]["arrays"]["scores"].update(dtype="O"),
            "'dataloaders.0.shards.0.arrays.scores.dtype' must be a NumPy dtype without objects",
        ),
        (
            "manifest-rank000.json",
            lambda d: d["dataloaders"]["0"]["shards"][0]["arrays"]["scores"].update(
                shape=[8, 10**12]
            ),
            None,  # a consistent lie: caught against the file's header instead
        ),
        ("manifest-rank000.json", lambda d: d.update(status="maybe"), "'status' must be"),
    ],
)
def test_json_fields_are_type_checked_and_named(tmp_path, setting, file, edit, field):
    out = tmp_path / "out"
    _predict(tmp_path, setting, out)
    document = json.loads((out / file).read_text())
    edit(document)
    (out / file).write_text(json.dumps(document))
    if field is None:
        field = r"batch0000000\.npz: field 'scores' has shape"
    else:
        field = f"{file}: field {field}".replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=field):
        read_explanations(out, strict=False)


def test_no_write_follows_a_symbolic_link(tmp_path, setting):
    data, _ = setting
    outside = tmp_path / "outside"
    outside.mkdir()
    real = tmp_path / "real"
    real.mkdir()
    out = tmp_path / "out"
    out.symlink_to(real, target_is_directory=True)  # a linked output folder is fine
    for name in ("vocab.json", "meta.json", "explanations-dl0-rank000-batch0000000.npz"):
        (outside / name).write_text("precious")
        (real / name).symlink_to(outside / name)
    _predict(tmp_path, setting, out, ExplanationWriter(out, overwrite=True))
    assert all(p.read_text() == "precious" for p in outside.iterdir())
    assert not [p for p in real.iterdir() if p.is_symlink()]
    assert Vocabulary.load(real / "vocab.json") == data.vocab
    assert len(read_explanations(out)) == N


def test_example_store_save_replaces_links_instead_of_writing_through_them(tmp_path):
    rng = np.random.default_rng(0)
    store = ExampleStore(
        {"pooled": rng.normal(size=(5, 3)).astype(np.float32)},
        np.arange(5),
        np.arange(5) % 2,
        "model",
        "data",
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "store"
    folder.mkdir()
    for name in ("vectors_0.npy", "labels.npy", "predictions.npy", "store.json"):
        (outside / name).write_text("precious")
        (folder / name).symlink_to(outside / name)
    store.save(folder)
    assert all(p.read_text() == "precious" for p in outside.iterdir())
    assert not [p for p in folder.iterdir() if p.is_symlink()]
    loaded = ExampleStore.load(folder)
    np.testing.assert_array_equal(loaded.vectors["pooled"], store.vectors["pooled"])
    # Saving a memory-mapped store onto its own folder keeps it (flushes in place).
    loaded.save(folder)
    np.testing.assert_array_equal(ExampleStore.load(folder).labels, np.arange(5))


def test_the_folder_of_a_crashed_epoch_run_is_completed(tmp_path, setting, reference):
    out = tmp_path / "out"
    writer = ExplanationWriter(out, write_interval="epoch")
    with pytest.raises(RuntimeError):
        _predict(tmp_path, setting, out, writer, callbacks=[_Crash(after=5)])
    with pytest.raises(ValueError, match="rank 0 did not finish: epoch shard 0 of 8 never written"):
        read_explanations(out)
    _predict(tmp_path, setting, out, writer)
    assert len(_shards(out)) == 1
    got = read_explanations(out, as_arrays=True)
    np.testing.assert_array_equal(got["index"], reference["index"])
    np.testing.assert_array_equal(got["scores"], reference["scores"])
