import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest
import torch

from captum_rnn.data import (
    SENTIMENT_SOURCES,
    ChecksumMismatchError,
    DataUnavailableError,
    SentimentSnippets,
    SequenceDataset,
    Snippet,
    Vocabulary,
    default_cache_dir,
    fetch_package_file,
    load_sentiment_snippets,
    load_valence_lexicon,
    parse_snippets,
    parse_valence_lexicon,
)
from captum_rnn.data.datasets import _sentiment

SNIPPETS = (
    "1\t2.26666666667\tThe Rock is destined to be great.\r\n"
    "2\t-3.1\tA dull, lifeless film.\r\n"
    "\r\n"
    "3_1\t0.2\tIt is a film.\r\n"
    "3_2\t-0.5\tNot quite it.\r\n"
    "4\t1.0\tCaf\u00e9 scenes, na\u00efve charm \u2013 fun.\r\n"
)

# ---------------------------------------------------------------- parsing


def test_parse_snippets_from_crlf_file(tmp_path):
    path = tmp_path / "snippets.txt"
    path.write_bytes(SNIPPETS.encode("utf-8"))
    for source in (path, path.read_bytes(), path.read_text(encoding="utf-8")):
        snippets = parse_snippets(source)
        assert [s.id for s in snippets] == ["1", "2", "3_1", "3_2", "4"]
        assert snippets[0] == Snippet("1", 2.26666666667, "The Rock is destined to be great.")
        assert snippets[4].text == "Caf\u00e9 scenes, na\u00efve charm \u2013 fun."
        assert all("\r" not in s.text for s in snippets)
    with path.open(encoding="utf-8", newline="") as lines:
        assert len(parse_snippets(lines)) == 5


def test_snippet_is_frozen():
    with pytest.raises(AttributeError):
        Snippet("1", 1.0, "x").rating = 2.0


@pytest.mark.parametrize(
    "bad_line, match",
    [
        ("5\tnot-a-number\ttext", "line 3: rating 'not-a-number'"),
        ("5\t2.0", "line 3: expected"),
        ("5\t4.5\ttext", "line 3: rating 4.5 is outside"),
        ("5\tnan\ttext", "line 3"),
        ("\t1.0\ttext", "line 3: empty id"),
        ("5\t1.0\t  ", "line 3: empty text"),
    ],
)
def test_parse_snippets_malformed_line_names_its_number(bad_line, match):
    text = "1\t1.0\tgood\r\n\r\n" + bad_line + "\r\n4\t1.0\tfine\r\n"
    with pytest.raises(ValueError, match=match):
        parse_snippets(text)


def test_parse_snippets_keeps_tabs_in_text_and_rejects_non_text():
    assert parse_snippets("1\t1\ta\tb")[0].text == "a\tb"
    with pytest.raises(TypeError):
        parse_snippets(42)


def test_neutral_threshold_drops_the_near_neutral_band():
    snippets = parse_snippets(SNIPPETS)
    data = SentimentSnippets.from_snippets(snippets, source="toy", neutral_threshold=0.5)
    assert data.ids == ["1", "2", "3_2", "4"]  # |0.2| < 0.5 dropped, |-0.5| kept
    assert data.labels == [1, 0, 0, 1]
    assert data.ratings == [2.26666666667, -3.1, -0.5, 1.0]
    assert data.num_dropped == 1 and len(data) + data.num_dropped == 5
    assert (data.source, data.neutral_threshold) == ("toy", 0.5)
    strict = SentimentSnippets.from_snippets(snippets, neutral_threshold=2.0)
    assert strict.ids == ["1", "2"] and strict.num_dropped == 3
    everything = SentimentSnippets.from_snippets(
        snippets + [Snippet("z", 0.0, "x")], neutral_threshold=0
    )
    assert len(everything) == 6 and everything.labels[-1] == 0
    with pytest.raises(ValueError, match="neutral_threshold"):
        SentimentSnippets.from_snippets(snippets, neutral_threshold=-0.1)


def test_to_dataset_drops_texts_without_tokens():
    data = SentimentSnippets(
        texts=["good film", "   ", "bad"],
        ratings=[2.0, 1.0, -2.0],
        labels=[1, 1, 0],
        ids=["a", "b", "c"],
        source="toy",
        neutral_threshold=0.5,
    )
    vocab = Vocabulary.build(data.texts)
    ds = data.to_dataset(vocab)
    assert isinstance(ds, SequenceDataset) and len(ds) == 2
    assert vocab.decode(ds[0][0]) == ["good", "film"] and ds[1][1].item() == 0
    ratings = data.to_dataset(vocab, target="rating")
    assert ratings[1][1].dtype == torch.float32 and ratings[1][1].item() == -2.0
    with pytest.raises(ValueError, match="target"):
        data.to_dataset(vocab, target="stars")


def test_parse_valence_lexicon_with_latin1_bytes():
    raw = (
        b"$:\t-1.5\t0.80623\t[-1, -1, -1, -1, -3, -1, -3, -1, -2, -1]\r\n"
        b":-\xde\t0.9\t1.04403\t[1, -1, 1, 2, 1, -1, 1, 2, 2, 1]\r\n"
        b"good\t1.9\t0.9434\t[2, 1, 1, 3, 2, 4, 2, 2, 1, 1]\r\n"
        b"caf\xc3\xa9\t0.5\t0.5\t[1, 0]\r\n"
        b"lol\t2.9\t0.83066\t[4]\r\n"
        b"lol\t1.8\t1.46969\t[1]\r\n"
        b"\r\n"
    )
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    lexicon = parse_valence_lexicon(raw)
    assert lexicon == {"$:": -1.5, ":-\u00de": 0.9, "good": 1.9, "caf\u00e9": 0.5, "lol": 1.8}
    with pytest.raises(ValueError, match="line 2"):
        parse_valence_lexicon("good\t1.9\t0.9\t[]\nbad\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_valence_lexicon("good\tgreat\t0.9\t[]\n")


# ------------------------------------------------------ loading from an archive


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_load_reads_members_of_the_nested_archive(tmp_path, monkeypatch):
    inner = _tar_gz(
        {
            "hutto_ICWSM_2014/tweets_GroundTruth.txt": SNIPPETS.encode("utf-8"),
            "hutto_ICWSM_2014/vader_sentiment_lexicon.txt": b"good\t1.9\t0.9\t[2]\r\n:\xde\t1.1\t0.5\t[1]",
        }
    )
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    sdist.write_bytes(
        _tar_gz({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner})
    )
    calls = []

    def fake_fetch(requirement, sha256, *, binary, cache_dir=None):
        calls.append((requirement, sha256, binary, cache_dir))
        return sdist

    monkeypatch.setattr(_sentiment, "fetch_package_file", fake_fetch)
    tweets = load_sentiment_snippets("tweets", neutral_threshold=0.5, cache_dir=tmp_path)
    assert tweets.source == "tweets" and len(tweets) == 4 and tweets.num_dropped == 1
    assert load_valence_lexicon(cache_dir=tmp_path) == {"good": 1.9, ":\u00de": 1.1}
    assert calls[0] == ("vaderSentiment==3.3.2", _sentiment.VADER_SHA256, False, tmp_path)
    with pytest.raises(ValueError, match="no member"):
        load_sentiment_snippets("movies", cache_dir=tmp_path)


def test_unknown_source_lists_the_choices():
    with pytest.raises(ValueError, match="amazon.*movies.*nyt.*tweets"):
        load_sentiment_snippets("imdb")


# ------------------------------------------------------------------ fetching

REQ = "vaderSentiment==3.3.2"
PAYLOAD = b"pretend sdist"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _no_subprocess(*args, **kwargs):
    raise AssertionError("pip must not run when the file is cached")


def _fake_pip(content: bytes, returncode: int = 0, filename="vaderSentiment-3.3.2.tar.gz"):
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        dest = Path(command[command.index("--dest") + 1])
        if returncode == 0:
            (dest / filename).write_bytes(content)
        return subprocess.CompletedProcess(
            command, returncode, stdout="", stderr="ERROR: network is unreachable"
        )

    return run, calls


def test_cached_file_with_right_hash_needs_no_pip(tmp_path, monkeypatch):
    (tmp_path / "vaderSentiment-3.3.2.tar.gz").write_bytes(PAYLOAD)
    (tmp_path / "other-1.0.tar.gz").write_bytes(b"x")
    monkeypatch.setattr(subprocess, "run", _no_subprocess)
    path = fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)
    assert path == tmp_path / "vaderSentiment-3.3.2.tar.gz"
    # name matching ignores case and -/_ spelling
    (tmp_path / "vadersentiment-3.3.2.tar.gz").write_bytes(PAYLOAD)
    path.unlink()
    assert fetch_package_file(REQ, PAYLOAD_SHA.upper(), binary=False, cache_dir=tmp_path).exists()


def test_download_moves_verified_file_into_cache(tmp_path, monkeypatch):
    run, calls = _fake_pip(PAYLOAD)
    monkeypatch.setattr(subprocess, "run", run)
    cache = tmp_path / "new" / "cache"
    path = fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=cache)
    assert path == cache / "vaderSentiment-3.3.2.tar.gz" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in cache.iterdir()) == ["vaderSentiment-3.3.2.tar.gz"]
    command = calls[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and command[command.index("--no-binary") + 1] == ":all:"
    assert command[-1] == REQ


def test_wheel_download_uses_only_binary(tmp_path, monkeypatch):
    run, calls = _fake_pip(PAYLOAD, filename="aeon-1.6.0-py3-none-any.whl")
    monkeypatch.setattr(subprocess, "run", run)
    path = fetch_package_file("aeon==1.6.0", PAYLOAD_SHA, binary=True, cache_dir=tmp_path)
    assert path.name == "aeon-1.6.0-py3-none-any.whl"
    assert calls[0][calls[0].index("--only-binary") + 1] == ":all:"


def test_downloaded_file_with_wrong_hash_is_an_error(tmp_path, monkeypatch):
    run, _ = _fake_pip(b"tampered")
    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(ChecksumMismatchError, match=PAYLOAD_SHA):
        fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_cached_file_with_wrong_hash_is_replaced(tmp_path, monkeypatch):
    stale = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    stale.write_bytes(b"truncated")
    run, calls = _fake_pip(PAYLOAD)
    monkeypatch.setattr(subprocess, "run", run)
    assert fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path) == stale
    assert stale.read_bytes() == PAYLOAD and len(calls) == 1


def test_pip_failure_says_what_to_do_offline(tmp_path, monkeypatch):
    run, _ = _fake_pip(b"", returncode=1)
    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(DataUnavailableError) as info:
        fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert str(tmp_path) in message
    assert f"pip download --no-deps --no-binary :all: {REQ}" in message
    assert "CAPTUM_RNN_CACHE" in message and "network is unreachable" in message
    assert PAYLOAD_SHA in message


def test_pip_failure_mentions_a_stale_cached_file(tmp_path, monkeypatch):
    (tmp_path / "vaderSentiment-3.3.2.tar.gz").write_bytes(b"truncated")
    run, _ = _fake_pip(b"", returncode=1)
    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(DataUnavailableError, match="SHA-256 is not the pinned one"):
        fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "exc", [subprocess.TimeoutExpired(["pip"], 1), FileNotFoundError("no python")]
)
def test_pip_timeout_or_missing_is_data_unavailable(tmp_path, monkeypatch, exc):
    def run(*args, **kwargs):
        raise exc

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(DataUnavailableError, match="pip"):
        fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)


def test_pip_success_without_the_file(tmp_path, monkeypatch):
    run, _ = _fake_pip(PAYLOAD, filename="something-else.tar.gz")
    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(DataUnavailableError, match="something-else"):
        fetch_package_file(REQ, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)


@pytest.mark.parametrize("requirement", ["vaderSentiment", "vaderSentiment>=3", "a==1; rm -rf"])
def test_requirement_must_be_pinned(tmp_path, requirement):
    with pytest.raises(ValueError, match="pin"):
        fetch_package_file(requirement, PAYLOAD_SHA, binary=False, cache_dir=tmp_path)


def test_sha256_must_be_hex(tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        fetch_package_file(REQ, "abc", binary=False, cache_dir=tmp_path)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPTUM_RNN_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("CAPTUM_RNN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "captum_rnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "captum_rnn"


def test_cache_dir_defaults_to_environment(tmp_path, monkeypatch):
    (tmp_path / "vaderSentiment-3.3.2.tar.gz").write_bytes(PAYLOAD)
    monkeypatch.setenv("CAPTUM_RNN_CACHE", str(tmp_path))
    monkeypatch.setattr(subprocess, "run", _no_subprocess)
    assert fetch_package_file(REQ, PAYLOAD_SHA, binary=False).parent == tmp_path


# ------------------------------------------------------------- the real data

RAW_COUNTS = {"movies": 10_605, "tweets": 4_200, "amazon": 3_708, "nyt": 5_190}


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("captum_rnn_cache")
    try:
        fetch_package_file(REQ, _sentiment.VADER_SHA256, binary=False, cache_dir=cache)
    except DataUnavailableError as err:
        pytest.skip(f"registry not reachable: {err}")
    return cache


@pytest.mark.network
@pytest.mark.parametrize("source", sorted(SENTIMENT_SOURCES))
def test_real_snippet_counts(real_cache, source):
    data = load_sentiment_snippets(source, cache_dir=real_cache)
    assert len(data) + data.num_dropped == RAW_COUNTS[source]
    assert all(abs(r) >= 0.5 for r in data.ratings)
    assert data.labels == [int(r > 0) for r in data.ratings]
    assert 0 < sum(data.labels) < len(data)
    everything = load_sentiment_snippets(source, neutral_threshold=0, cache_dir=real_cache)
    assert len(everything) == RAW_COUNTS[source] and everything.num_dropped == 0
    assert len(set(everything.ids)) == RAW_COUNTS[source]


@pytest.mark.network
def test_real_valence_lexicon(real_cache):
    lexicon = load_valence_lexicon(cache_dir=real_cache)
    assert 7_400 <= len(lexicon) <= 7_517  # 7,517 lines, 15 tokens listed twice
    assert lexicon["good"] > 0 > lexicon["bad"]
    assert lexicon["great"] > lexicon["good"]
    assert ":-\u00de" in lexicon  # the line that is not valid UTF-8
    assert all(-4 <= v <= 4 for v in lexicon.values())
