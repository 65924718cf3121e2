"""Writing files atomically without following links, and reading NPZ headers safely.

Every write goes to a fresh temporary file in the target's directory (created with
``O_EXCL``, so it never opens an existing file or link) and is moved over the target
with ``os.replace``: readers see the old file or the new one, never half of one, and
when the target is a symbolic link the link itself is replaced, not the file it
points to. A failed write (a full disk) removes its temporary file and leaves the
target as it was.
"""

from __future__ import annotations

import io
import math
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

__all__ = [
    "NpyHeader",
    "TEMP_SUFFIX",
    "atomic_open",
    "atomic_path",
    "atomic_save_npy",
    "atomic_save_npz",
    "atomic_write_bytes",
    "atomic_write_text",
    "npz_headers",
]

TEMP_SUFFIX = ".tmp"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _create_temp(target: Path) -> tuple[int, Path]:
    """Create an empty temporary file beside ``target``; return its descriptor and path."""
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            # 0o666 before the umask: the file gets the permissions an ordinary open would.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
        except FileExistsError:
            continue
        return fd, temp


def _discard(temp: Path) -> None:
    try:
        temp.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    For APIs that insist on a file name (``vocab.save(tmp)``). The temporary file
    already exists (empty) when yielded.

    Args:
        path: the final file.
        fsync: flush the file to disk before it replaces ``path``.

    Returns:
        A context manager yielding the temporary path.
    """
    target = Path(path)
    fd, temp = _create_temp(target)
    os.close(fd)
    try:
        yield temp
        if fsync:
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        _discard(temp)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file; on success it replaces ``path`` atomically.

    Args:
        path: the final file.
        fsync: flush the file to disk before it replaces ``path``.

    Returns:
        A context manager yielding a writable binary file object.

    Example:
        >>> with atomic_open("shard.bin") as handle:  # doctest: +SKIP
        ...     handle.write(b"data")
    """
    target = Path(path)
    fd, temp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        _discard(temp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, replacing (never following) a link there.

    Args:
        path: the file.
        data: its new contents.
        fsync: flush to disk before replacing.
    """
    with atomic_open(path, fsync=fsync) as handle:
        handle.write(data)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", fsync: bool = True
) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Args:
        path: the file.
        text: its new contents.
        encoding: the text encoding.
        fsync: flush to disk before replacing.
    """
    atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def atomic_save_npy(path: str | os.PathLike[str], array: Any, *, fsync: bool = True) -> None:
    """``np.save`` (without pickles) to ``path`` atomically.

    Args:
        path: the ``.npy`` file.
        array: the array.
        fsync: flush to disk before replacing.
    """
    with atomic_open(path, fsync=fsync) as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)


def atomic_save_npz(path: str | os.PathLike[str], *, fsync: bool = True, **arrays: Any) -> None:
    """``np.savez`` (uncompressed) to ``path`` atomically.

    Args:
        path: the ``.npz`` file.
        fsync: flush to disk before replacing.
        arrays: the arrays by name.
    """
    with atomic_open(path, fsync=fsync) as handle:
        np.savez(handle, **arrays)


class NpyHeader(NamedTuple):
    """What an NPZ member's ``.npy`` header declares, read without reading its data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int
    """Bytes of magic and header before the array data."""
    size: int
    """Uncompressed bytes of the member, as the zip directory records them."""
    compressed: bool
    """Whether the member is compressed (reading it means decompressing)."""

    @property
    def nbytes(self) -> int:
        """Bytes of array data the header declares."""
        return math.prod(self.shape) * self.dtype.itemsize


_HEADER_READERS: dict[tuple[int, int], Callable[..., Any]] = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def npz_headers(
    source: str | os.PathLike[str] | bytes, name: str | None = None
) -> dict[str, NpyHeader]:
    """Read the header of every member of an NPZ archive without reading array data.

    Only the first bytes of each member are read (and decompressed), so a small archive
    whose members claim gigabytes costs nothing. Each member must be a ``.npy`` file
    with a version 1.0 or 2.0 header, no object dtype, and a recorded size that matches
    its header exactly.

    Args:
        source: the archive's path or bytes.
        name: how to name the archive in messages (default: the path).

    Returns:
        Member name (without ``.npy``) -> :class:`NpyHeader`.

    Raises:
        ValueError: naming the archive and member when it is not such an archive.
    """
    label = name or (repr(os.fspath(source)) if not isinstance(source, bytes) else "<bytes>")
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    headers: dict[str, NpyHeader] = {}
    try:
        with zipfile.ZipFile(opened) as archive:
            for info in archive.infolist():
                member = info.filename
                if not member.endswith(".npy") or member[:-4] in headers:
                    raise ValueError(f"{label}: member {member!r} is not a single .npy array")
                with archive.open(info) as handle:
                    try:
                        version = np.lib.format.read_magic(handle)
                        read_header = _HEADER_READERS.get(version)
                        if read_header is None:
                            raise ValueError(f"unsupported .npy version {version}")
                        shape, fortran, dtype = read_header(handle)
                    except ValueError as err:
                        raise ValueError(f"{label}: member {member!r}: {err}") from None
                    offset = handle.tell()
                if dtype.hasobject:
                    raise ValueError(f"{label}: member {member!r} holds Python objects")
                header = NpyHeader(
                    tuple(int(n) for n in shape),
                    dtype,
                    bool(fortran),
                    offset,
                    int(info.file_size),
                    info.compress_type != zipfile.ZIP_STORED,
                )
                if header.size != offset + header.nbytes:
                    raise ValueError(
                        f"{label}: member {member!r} is {header.size} bytes but its header "
                        f"declares {offset + header.nbytes} (shape {header.shape}, "
                        f"dtype {dtype.str})"
                    )
                headers[member[:-4]] = header
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as err:
        raise ValueError(f"{label} is not a readable NPZ archive: {err}") from err
    return headers
