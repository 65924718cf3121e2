"""Atomic writes that never follow links, and NPZ headers read without the data."""

from __future__ import annotations

import errno
import io
import os
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest

from captum_rnn._utils.files import (
    atomic_open,
    atomic_path,
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_text,
    npz_headers,
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    "write",
    [
        lambda p: atomic_write_text(p, "new"),
        lambda p: atomic_write_bytes(p, b"new"),
        lambda p: atomic_save_npy(p, np.arange(3)),
        lambda p: atomic_save_npz(p, a=np.arange(3)),
    ],
)
def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path, write):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "file"
    target.symlink_to(outside)
    write(target)
    assert outside.read_text() == "precious"
    assert not target.is_symlink() and target.stat().st_size > 0


def test_writes_replace_the_link_itself(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    target = tmp_path / "meta.json"
    target.symlink_to(outside)
    atomic_write_text(target, '{"a": 1}')
    assert not target.is_symlink() and target.read_text() == '{"a": 1}'
    assert outside.read_text() == "precious"
    # A dangling link is replaced too (an ordinary open would create its target).
    dangling = tmp_path / "vocab.json"
    dangling.symlink_to(tmp_path / "elsewhere.json")
    with atomic_path(dangling) as temporary:
        temporary.write_text("{}")
    assert not dangling.is_symlink() and not (tmp_path / "elsewhere.json").exists()
    assert _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "shard.npz"
    target.write_bytes(b"old")
    with pytest.raises(OSError) as caught:
        with atomic_open(target) as handle:
            handle.write(b"half of the new ")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_new_files_get_the_permissions_an_ordinary_open_gives(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        (tmp_path / "b.json").write_text("{}")
    finally:
        os.umask(umask)
    mode = (tmp_path / "a.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "b.json").stat().st_mode & 0o777 == 0o640


def test_npz_headers_match_what_numpy_writes(tmp_path):
    path = tmp_path / "x.npz"
    atomic_save_npz(path, scores=np.zeros((4, 7)), index=np.arange(4), flag=np.ones(4, bool))
    headers = npz_headers(path)
    assert {k: (h.shape, h.dtype.str) for k, h in headers.items()} == {
        "scores": ((4, 7), "<f8"),
        "index": ((4,), np.dtype(np.int64).str),
        "flag": ((4,), "|b1"),
    }
    assert not any(h.compressed for h in headers.values())
    assert headers["scores"].nbytes == 4 * 7 * 8


def _bomb(claimed_mib: int) -> bytes:
    """An NPZ of ~1 KiB per MiB whose one member decompresses to ``claimed_mib`` MiB."""
    count = claimed_mib * 2**20 // 8
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (count,)}
    )
    npy_header = buffer.getvalue()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(npy_header) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush each block stands alone: one compressed MiB of zeros, repeated.
    block = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = start + block * claimed_mib + compressor.flush(zlib.Z_FINISH)
    size = len(npy_header) + count * 8
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.writestr("scores.npy", stream)
    data = bytearray(archive.getvalue())
    # Rewrite the stored member as deflated, claiming its decompressed size.
    struct.pack_into("<H", data, 8, zipfile.ZIP_DEFLATED)
    struct.pack_into("<I", data, 22, size)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 10, zipfile.ZIP_DEFLATED)
    struct.pack_into("<I", data, central + 24, size)
    return bytes(data)


def test_a_decompression_bomb_is_described_without_being_decompressed(tmp_path, monkeypatch):
    data = _bomb(3 * 1024)  # ~3 MB that decompresses to 3 GiB
    assert len(data) < 4 * 2**20
    path = tmp_path / "bomb.npz"
    path.write_bytes(data)
    read = []
    original = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        chunk = original(self, n)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    started = time.perf_counter()
    [(name, header)] = npz_headers(path).items()
    assert time.perf_counter() - started < 1.0
    assert sum(read) < 2**16  # the header only
    assert name == "scores" and header.compressed
    assert header.size > 3 * 2**30 and header.shape == (3 * 2**27,)


def test_a_member_whose_size_disagrees_with_its_header_is_refused(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(10))
    honest = buffer.getvalue()
    # Claim a billion rows but carry ten.
    lying = honest.replace(b"(10,)", b"(1000000000,)")
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("scores.npy", lying)
    with pytest.raises(ValueError, match=r"lie\.npz.*'scores\.npy'.*declares"):
        npz_headers(path)


@pytest.mark.parametrize(
    "member, content, message",
    [
        ("notes.txt", b"hello", "not a single .npy array"),
        ("x.npy", b"\x93NUMPY\x09\x00junk", "x.npy"),
        ("x.npy", None, "Python objects"),
    ],
)
def test_members_that_are_not_plain_arrays_are_refused(tmp_path, member, content, message):
    if content is None:
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        content = buffer.getvalue()
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr(member, content)
    with pytest.raises(ValueError, match=message):
        npz_headers(path)
    with pytest.raises(ValueError, match="not a readable NPZ"):
        npz_headers(b"not a zip file")


def test_every_saver_replaces_a_link_instead_of_writing_through_it(tmp_path):
    """Vocabulary, DFA, RuleList and Explanation(s) saves never follow a symbolic link."""
    from captum_rnn import Explanation, Explanations
    from captum_rnn.data import Vocabulary
    from captum_rnn.rules import RuleList, tomita_dfa

    outside = tmp_path / "outside.txt"
    savers = {
        "vocab": Vocabulary.build(["a b"]).save,
        "dfa": tomita_dfa(1).save,
        "rules": RuleList(max_rules=1, min_support=1).fit([["a"], ["b"]], [1, 0]).save,
        "one": Explanation(tokens=["a"], scores=[1.0], method="m", target=0).save,
        "many": Explanations([Explanation(tokens=["a"], scores=[1.0], method="m", target=0)]).save,
    }
    for name, save in savers.items():
        outside.write_text("keep")
        link = tmp_path / f"{name}.json"
        link.symlink_to(outside)
        save(link)
        assert outside.read_text() == "keep", name
        assert not link.is_symlink() and link.read_text() != "keep", name
