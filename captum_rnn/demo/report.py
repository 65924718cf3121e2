"""A standalone HTML report: explanations side by side, benchmark, plausibility, sanity.

:class:`Report` collects sections and writes one HTML page that needs nothing else
when opened in a browser: styles are inline, figures are embedded as base64 PNG, and
every piece of text (tokens, reviews, method names, rules) is escaped. A Content
Security Policy forbids scripts and any resource that is not embedded, as a second
line of defence.

:func:`write_report` builds the page from a plain ``dict`` of results (what
``captum-rnn demo`` collects).

Example:
    >>> from captum_rnn import Explanation
    >>> report = Report("My model")
    >>> report.add_paragraph("Trained on <3 reviews")
    >>> e = Explanation(["<img src=x>", "good"], [0.1, 0.9], "saliency", target=1)
    >>> report.add_example({"saliency": e}, title="Review 1")
    >>> "&lt;img src=x&gt;" in report.to_html()
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from captum_rnn.viz import figure_to_data_uri, token_spans_html
from captum_rnn.viz._html import _STYLE

__all__ = ["Report", "write_report"]

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_EXTRA_STYLE = """
table.benchmark{font-size:.85em}
.grid{display:grid;grid-template-columns:11em 1fr;gap:.2em 1em;align-items:center;margin:.5em 0 1em 0}
.grid .method{font-weight:600;font-size:.9em;color:#333}
.grid .tokens{margin:0}
.note{color:#555;font-size:.9em}
.pass{color:#1b7a2f;font-weight:600}.fail{color:#b2182b;font-weight:600}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
img{max-width:100%}
nav ul{columns:2}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


class Report:
    """Builder of a standalone, escaped HTML report.

    Sections are added in order with the ``add_*`` methods; :meth:`to_html` returns the
    page and :meth:`save` writes it. All text is escaped; figures are embedded.

    Args:
        title: the page title (escaped).
        intro: an optional first paragraph (escaped).
    """

    def __init__(self, title: str, intro: str | None = None) -> None:
        self.title = str(title)
        self._parts: list[str] = []
        self._toc: list[tuple[str, str]] = []
        if intro:
            self.add_paragraph(intro)

    # ------------------------------------------------------------------ primitives
    def add_heading(self, text: str, level: int = 2) -> None:
        """A heading (``level`` 2 headings are listed in the table of contents)."""
        if level not in (2, 3, 4):
            raise ValueError(f"level must be 2, 3 or 4, got {level}")
        anchor = f"s{len(self._toc) + 1}"
        if level == 2:
            self._toc.append((anchor, str(text)))
            self._parts.append(f'<h2 id="{anchor}">{_esc(text)}</h2>')
        else:
            self._parts.append(f"<h{level}>{_esc(text)}</h{level}>")

    def add_paragraph(self, text: str, note: bool = False) -> None:
        """A paragraph of plain text (escaped); ``note`` renders it smaller and grey."""
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{_esc(text)}</p>")

    def add_list(self, items: Iterable[Any], title: str | None = None) -> None:
        """A bulleted list of plain-text items."""
        if title:
            self.add_heading(title, 3)
        lis = "".join(f"<li>{_esc(item)}</li>" for item in items)
        self._parts.append(f"<ul>{lis}</ul>")

    def add_table(
        self, headers: Sequence[Any], rows: Iterable[Sequence[Any]], title: str | None = None
    ) -> None:
        """A table of plain-text cells (floats shown with 4 significant digits)."""
        if title:
            self.add_heading(title, 3)
        head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{_esc(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
        )
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def add_metrics(self, metrics: Mapping[str, Any], title: str | None = None) -> None:
        """A two-column table of named values."""
        if title:
            self.add_heading(title, 3)
        rows = "".join(
            f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>" for k, v in metrics.items()
        )
        self._parts.append(f"<table>{rows}</table>")

    def add_figure(self, figure: Figure | str, caption: str | None = None, dpi: int = 100) -> None:
        """A figure embedded as a base64 PNG (a ``Figure`` or a ``data:image/png`` URI)."""
        if isinstance(figure, Figure):
            uri = figure_to_data_uri(figure, dpi=dpi)
        elif isinstance(figure, str) and figure.startswith("data:image/png;base64,"):
            uri = figure
        else:
            raise TypeError("figure must be a matplotlib Figure or a data:image/png;base64 URI")
        alt = _esc(caption or "figure")
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img alt="{alt}" src="{_esc(uri)}">{cap}</figure>')

    def add_fragment(self, fragment: str) -> None:
        """Append an HTML fragment made by a captum-rnn helper that escapes its text
        (``Explanation.to_html``, ``BenchmarkResult.to_html``, ``token_spans_html``).
        Never pass text that came from data: use :meth:`add_paragraph` for that."""
        self._parts.append(str(fragment))

    # ------------------------------------------------------------------ content
    def add_example(
        self,
        explanations: Mapping[str, Any] | Sequence[Any],
        title: str | None = None,
        *,
        text: str | None = None,
        details: Mapping[str, Any] | None = None,
        rule: str | None = None,
        neighbours: Sequence[Any] | None = None,
        figure: Figure | None = None,
        counterfactual: Any = None,
    ) -> None:
        """One sequence explained by several methods, shown row under row for comparison.

        Args:
            explanations: method name -> ``Explanation`` (or a list; names from
                ``.method``). Each row shades the tokens by that method's scores.
            title: heading, e.g. "Review 3: human positive, model positive".
            text: the raw text of the sequence (escaped).
            details: extra named values (label, prediction, probability ...).
            rule: a local rule in words (escaped).
            neighbours: nearest training examples, as text (escaped).
            figure: an optional figure to embed under the rows.
            counterfactual: a :class:`~captum_rnn.Counterfactual` of the sequence, shown
                with its edits marked (its own escaped HTML).
        """
        if title:
            self.add_heading(title, 3)
        if text:
            self._parts.append(f'<p class="note">{_esc(text)}</p>')
        if details:
            self.add_metrics(details)
        items = (
            list(explanations.items())
            if isinstance(explanations, Mapping)
            else [(getattr(e, "method", str(i)), e) for i, e in enumerate(explanations)]
        )
        rows = []
        for name, e in items:
            tokens, scores = list(e.tokens), list(e.scores)
            rows.append(f'<div class="method">{_esc(name)}</div>{token_spans_html(tokens, scores)}')
        if rows:
            self._parts.append('<div class="grid">' + "".join(rows) + "</div>")
        if rule:
            self._parts.append(f"<p><strong>Local rule:</strong> {_esc(rule)}</p>")
        if neighbours:
            lis = "".join(f"<li>{_esc(n)}</li>" for n in neighbours)
            self._parts.append(f"<p><strong>Nearest training examples:</strong></p><ul>{lis}</ul>")
        if counterfactual is not None:
            self._parts.append(
                "<p><strong>Smallest change found that flips the model (verified by "
                "running it):</strong></p>" + counterfactual.to_html()
            )
        if figure is not None:
            self.add_figure(figure)

    def add_benchmark(self, result: Any, title: str | None = None, plot: bool = True) -> None:
        """The benchmark table, its recommendation and (optionally) its figure."""
        if title:
            self.add_heading(title)
        self.add_fragment(result.to_html())
        notes = []
        for name in getattr(result, "metrics", []):
            from captum_rnn.metrics import get_metric

            m = get_metric(name)
            notes.append(f"{name} ({m.arrow()} {m.direction} is better): {m.description}")
        if notes:
            self.add_list(notes)
        if plot and len(result):
            self.add_figure(result.plot(), "benchmark: one panel per metric")

    def add_sanity(self, results: Iterable[Any], title: str | None = None) -> None:
        """A table of randomisation checks (``RandomizationResult``), pass or fail."""
        if title:
            self.add_heading(title)
        rows = []
        for r in results:
            verdict = (
                '<span class="pass">pass</span>' if r.passed else '<span class="fail">fail</span>'
            )
            rows.append(
                f"<tr><td>{_esc(r.method)}</td><td>{_esc(r.test.replace('_', ' '))}</td>"
                f"<td>{_esc(_fmt(r.similarity))}</td><td>{_esc(_fmt(r.threshold))}</td>"
                f"<td>{verdict}</td><td>{_esc(r.reason)}</td></tr>"
            )
        self._parts.append(
            "<table><thead><tr><th>method</th><th>randomised</th><th>similarity</th>"
            "<th>threshold</th><th>verdict</th><th>reading</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def add_lexicon(self, agreements: Mapping[str, Any] | Any, title: str | None = None) -> None:
        """Agreement with human word valence: one row per method (``LexiconAgreement``)."""
        if title:
            self.add_heading(title)
        if not isinstance(agreements, Mapping):
            agreements = {"": agreements}
        self.add_table(
            ["method", "Spearman with human valence", "words", "occurrences"],
            [(k, a.spearman, a.n_words, a.n_occurrences) for k, a in agreements.items()],
        )

    # ------------------------------------------------------------------ output
    def to_html(self) -> str:
        """The standalone page."""
        toc = ""
        if len(self._toc) > 2:
            links = "".join(f'<li><a href="#{a}">{_esc(t)}</a></li>' for a, t in self._toc)
            toc = f"<nav><ul>{links}</ul></nav>"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(self.title)}</title><style>{_STYLE}{_EXTRA_STYLE}</style></head>"
            f"<body><h1>{_esc(self.title)}</h1>\n{toc}\n"
            + "\n".join(self._parts)
            + "\n</body></html>\n"
        )

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (UTF-8); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path


def write_report(path: str | Path, results: Mapping[str, Any]) -> Path:
    """Write the demo's results as one standalone HTML page.

    Every key is optional except ``title``; sections appear in this order:

    * ``title`` (str), ``intro`` (str);
    * ``metrics``: name -> value (accuracy, sizes, timings);
    * ``examples``: a list of dicts with ``explanations`` (method -> ``Explanation``)
      and optionally ``title``, ``text``, ``details``, ``rule``, ``neighbours``,
      ``figure`` (see :meth:`Report.add_example`);
    * ``benchmark``: a ``captum_rnn.BenchmarkResult``;
    * ``lexicon``: method -> ``LexiconAgreement`` (plausibility against human ratings);
    * ``sanity``: a list of ``RandomizationResult``;
    * ``figures``: a list of ``(caption, Figure)`` (e.g. an extracted automaton);
    * ``sections``: a list of ``(heading, text)`` paragraphs added at the end.

    Args:
        path: the HTML file to write.
        results: the dict above.

    Returns:
        The written path.

    Example:
        >>> write_report(tmp / "index.html", {"title": "demo", "metrics": {"accuracy": 0.9}})  # doctest: +SKIP
    """
    if "title" not in results:
        raise ValueError("results must have a 'title'")
    unknown = set(results) - {
        "title",
        "intro",
        "metrics",
        "examples",
        "benchmark",
        "lexicon",
        "sanity",
        "figures",
        "sections",
    }
    if unknown:
        raise ValueError(f"results has unknown keys {sorted(unknown)}")
    report = Report(results["title"], results.get("intro"))
    if results.get("metrics"):
        report.add_heading("Model")
        report.add_metrics(results["metrics"])
    if results.get("examples"):
        report.add_heading("Explained examples")
        report.add_paragraph(
            "Each row shades the same tokens by one method's attribution toward the explained "
            "class: blue pushes toward it, red against it (each row scaled to its own maximum).",
            note=True,
        )
        for example in results["examples"]:
            example = dict(example)
            report.add_example(example.pop("explanations"), **example)
    if results.get("benchmark") is not None:
        report.add_benchmark(results["benchmark"], "Which explanation method? Benchmark")
    if results.get("lexicon"):
        report.add_lexicon(results["lexicon"], "Plausibility against human word ratings")
    if results.get("sanity"):
        report.add_sanity(results["sanity"], "Sanity checks")
    for caption, figure in results.get("figures") or []:
        report.add_heading(caption)
        report.add_figure(figure, caption)
    for heading, text in results.get("sections") or []:
        report.add_heading(heading)
        report.add_paragraph(text)
    return report.save(path)
