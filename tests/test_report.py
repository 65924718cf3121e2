"""The standalone HTML report: escaped, self-contained, and clean in headless Chromium.

The Chromium test needs the ``chromium`` command (Debian: ``apt-get install -y chromium``)
and is skipped without it.
"""

import re
import shutil
import subprocess

import pytest
import torch
from matplotlib.figure import Figure

from captum_rnn import Explanation, benchmark
from captum_rnn.demo.report import Report, write_report
from captum_rnn.metrics import RandomizationResult, lexicon_agreement

from conftest import token_model

EVIL = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('x')</script>"


def _explanation(method, scores):
    return Explanation(["a", EVIL, "film", SCRIPT], scores, method, target=1, predicted=1)


def _figure():
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def _results():
    model = token_model("lstm-bi-additive")
    ids = torch.tensor([[2, 3, 4, 5, 6], [7, 8, 9, 0, 0]])
    result = benchmark(
        model, ids, methods=["saliency"], metrics=["loo_kendall", "randomization"], progress=False
    )
    sanity = RandomizationResult(
        method="saliency " + EVIL,
        test="model_parameters",
        similarity=0.1,
        per_sequence=[0.1],
        threshold=0.5,
        measure="spearman_abs",
    )
    lexicon = lexicon_agreement(
        [Explanation(["good", "bad", "ok"], [1.0, -1.0, 0.1], "ig", target=1)],
        {"good": 2.0, "bad": -2.0, "ok": 0.5},
    )
    return {
        "title": "Demo <report> & friends",
        "intro": "Movie reviews; " + EVIL,
        "metrics": {"test_accuracy": 0.83125, "reviews " + EVIL: 3},
        "examples": [
            {
                "title": "Review 1 " + EVIL,
                "text": "a " + EVIL + " film " + SCRIPT,
                "details": {"label": "positive", "predicted": "positive"},
                "explanations": {
                    "integrated gradients": _explanation("ig", [0.1, 0.9, -0.2, 0.0]),
                    "attention " + EVIL: _explanation("attention", [0.2, 0.5, 0.2, 0.1]),
                },
                "rule": "IF " + EVIL + " THEN positive",
                "neighbours": ["nearest " + EVIL, "other review"],
                "figure": _figure(),
            }
        ],
        "benchmark": result,
        "lexicon": {"integrated_gradients": lexicon},
        "sanity": [sanity],
        "figures": [("Extracted automaton " + EVIL, _figure())],
        "sections": [("Notes", "Nothing else " + SCRIPT)],
    }


def test_every_text_is_escaped_and_figures_are_embedded(tmp_path):
    path = write_report(tmp_path / "out" / "index.html", _results())
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # The dangerous strings only ever appear escaped.
    assert "<img src=x" not in page and "<script" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 8
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Demo &lt;report&gt; &amp; friends" in page
    # Self-contained: every image is a data URI, nothing is fetched.
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) >= 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page
    # The sections are there.
    for text in ("Benchmark", "Sanity checks", "human word ratings", "Local rule", "Nearest"):
        assert text in page
    assert "pass" in page and "0.831" in page


def test_report_builder_and_bad_input(tmp_path):
    report = Report("t")
    report.add_table(["a", "b"], [[1.23456, EVIL]], title="tab")
    report.add_list([EVIL])
    page = report.to_html()
    assert "1.235" in page and "<img src=x" not in page
    with pytest.raises(TypeError, match="figure must be"):
        report.add_figure("http://example.com/x.png")
    with pytest.raises(ValueError, match="unknown keys"):
        write_report(tmp_path / "x.html", {"title": "t", "benchmarks": None})
    with pytest.raises(ValueError, match="title"):
        write_report(tmp_path / "x.html", {})
    with pytest.raises(ValueError, match="level"):
        report.add_heading("x", level=1)


def _render(path):
    """Render a page in headless Chromium; return (DOM, console messages).

    A script that opens a dialog (``alert``) blocks headless Chromium: a hang fails.
    """
    try:
        done = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium hung on {path.name}: did a script open a dialog?")
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the chromium command")
def test_the_page_renders_in_headless_chromium_without_console_errors(tmp_path):
    page = write_report(tmp_path / "index.html", _results())
    dom, console = _render(page)
    assert console == []
    # The token is text in the rendered document, not an element.
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert '<img src="x"' not in dom and "<script" not in dom
    assert dom.count("data:image/png;base64,") >= 3
    # The harness would notice a failure to escape: the same page with the raw token
    # logs the blocked image and inline handler to the console.
    broken = tmp_path / "broken.html"
    broken.write_text(
        page.read_text(encoding="utf-8").replace("&lt;img src=x onerror=alert(1)&gt;", EVIL),
        encoding="utf-8",
    )
    _, console = _render(broken)
    assert any("Content Security Policy" in line for line in console)


def test_a_counterfactual_shows_its_edits_escaped(tmp_path):
    from captum_rnn import Counterfactual

    evil = "<img src=x onerror=alert(1)>"
    cf = Counterfactual(
        original=torch.tensor([4, 5, 6]),
        counterfactual=torch.tensor([4, 7, 6]),
        edits=[(1, 5, 7)],
        flipped=True,
        prediction=0,
        original_prediction=1,
        minimal=True,
        tokens=["a", evil, "c"],
        counterfactual_tokens=["a", "not", "c"],
    )
    report = Report("t")
    report.add_example({"ig": Explanation(["a", "b", "c"], [0.1, 0.2, 0.3], "ig")},
                       counterfactual=cf)  # fmt: skip
    page = report.save(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Smallest change found that flips the model" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<mark>not</mark>" in page and "1 edit, minimal" in page
