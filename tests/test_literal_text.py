"""Text drawn in figures is literal: a ``$`` in a token, name or title never reaches mathtext.

``"$\\frac$"`` is a parse error in mathtext (it crashed the figure, and the logger's
figure aborted ``trainer.fit``); ``"$5 or $10"`` silently became italic math. Every
figure is rendered (``savefig``: layout and text drawing happen then) and every drawn
text holding a ``$`` must have mathtext switched off.
"""

from __future__ import annotations

import io
import math

import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from captum_rnn import Explanation, Explanations
from captum_rnn.attr import recurrent_states
from captum_rnn.callbacks._figure import probe_figure
from captum_rnn.metrics import BenchmarkResult, dataset_attribution_summary
from captum_rnn.rules import DFA
from captum_rnn.viz import (
    plot_attention_matrix,
    plot_attention_tokens,
    plot_dataset_summary,
    plot_examples,
    plot_gate_activations,
    plot_neighbors,
    plot_prototypes_and_criticisms,
    plot_rollout_layers,
    plot_time_feature_attributions,
    plot_token_attributions,
    plot_unit_token_responses,
)

# a mathtext parse error, two math spans in one string, a price, a lone dollar
HOSTILE = ["$\\frac$", "$5 or $10", "$5", "$", "a$b"]
TITLE = "$\\frac$ title $x^$"


def render(fig: Figure) -> list[Text]:
    """Draw ``fig`` to PNG and check every text with a ``$`` is literal; return them."""
    fig.savefig(io.BytesIO(), format="png")
    dollars = [t for t in fig.findobj(Text) if "$" in t.get_text() and t.get_visible()]
    assert dollars, "the figure draws none of the hostile strings"
    for text in dollars:
        assert text.get_parse_math() is False, f"{text.get_text()!r} is parsed as mathtext"
    return dollars


def drawn(fig: Figure) -> set[str]:
    return {t.get_text() for t in fig.findobj(Text)}


def hostile_explanation(**kw) -> Explanation:
    return Explanation(
        tokens=list(HOSTILE),
        scores=[0.5, -0.2, 1.0, 0.0, 0.3],
        method="ig$\\frac$",
        target=1,
        predicted=0,
        probability=0.7,
        class_names=["$neg$", "$\\frac$"],
        **kw,
    )


def test_explanation_plot_draws_tokens_and_title_literally():
    fig = hostile_explanation().plot()
    render(fig)
    assert "$\\frac$" in drawn(fig) and "$5 or $10" in drawn(fig)
    assert any("ig$\\frac$" in t for t in drawn(fig))


def test_continuous_explanation_plot_with_hostile_feature_names():
    e = Explanation(
        tokens=["t0", "t1"],
        scores=[0.1, -0.3],
        method="$\\frac$",
        feature_scores=[[0.1, 0.0, 0.2], [-0.3, 0.1, 0.0]],
        feature_names=["$\\frac$", "$5", "$"],
    )
    fig = e.plot()
    render(fig)
    assert {"$\\frac$", "$5"} <= drawn(fig)


def test_explanation_html_figure_and_batch_plot():
    page = hostile_explanation().to_html(figure=True)
    assert "data:image/png;base64," in page
    render(Explanations([hostile_explanation(), hostile_explanation()]).plot())


def test_token_and_time_feature_heatmaps():
    render(plot_token_attributions(HOSTILE, [1, 2, 3, 4, 5], title=TITLE))
    render(plot_time_feature_attributions([[1.0, 2.0]], ["$\\frac$", "$5"], title=TITLE))


def test_attention_figures():
    n = len(HOSTILE)
    weights = torch.full((n, n), 1.0 / n)
    render(plot_attention_matrix(weights, HOSTILE, HOSTILE, title=TITLE, annotate=True))
    render(plot_rollout_layers([weights[None]] * 2, HOSTILE, title=TITLE))
    fig = plot_attention_tokens(
        torch.rand(2, n), [HOSTILE, HOSTILE[:2]], title=TITLE, row_labels=["$\\frac$", "$5"]
    )
    render(fig)
    assert TITLE in drawn(fig)


def test_example_figures():
    render(plot_neighbors(HOSTILE[0], HOSTILE[1:], labels=[0, 1, 0, 1], title=TITLE))
    render(plot_examples([HOSTILE], labels=["$\\frac$"], class_names=None, title=TITLE))
    render(plot_prototypes_and_criticisms([HOSTILE[:2]], [0], [HOSTILE[2:]], [1]))


def test_gate_activations_with_hostile_tokens_and_title():
    trace = recurrent_states(torch.nn.GRU(3, 4, batch_first=True), torch.randn(1, 5, 3))
    fig = plot_gate_activations(trace, tokens=HOSTILE, title=TITLE)
    render(fig)
    assert {"$\\frac$", "$5 or $10"} <= drawn(fig)


def test_unit_token_responses_with_hostile_vocabulary():
    class Responses:
        def top_tokens(self, unit, n, min_count):
            return [(i, float(i)) for i in range(len(HOSTILE))]

    class Vocab:
        def token(self, index):
            return HOSTILE[index]

    fig = plot_unit_token_responses(Responses(), [0, 1], vocab=Vocab())
    render(fig)
    assert "$\\frac$" in drawn(fig)


def test_dataset_summary_with_hostile_tokens():
    es = [Explanation(list(HOSTILE), [1.0, 0.5, 0.2, 0.1, 0.0], "ig", target=0, predicted=0)]
    render(plot_dataset_summary(dataset_attribution_summary(es, min_count=1)))


def test_dfa_plot_with_dollar_symbols_names_and_title():
    dfa = DFA(
        ["$", "$\\frac$", "a"],
        [[1, 1, 0], [0, 1, 1]],
        {1},
        0,
        state_names=["$x^$", "$5"],
    )
    fig = dfa.plot(title=TITLE)
    render(fig)
    assert "$x^$" in drawn(fig) and any("$\\frac$" in t for t in drawn(fig))


def test_logger_probe_figure_with_hostile_tokens_and_class_names():
    es = [hostile_explanation(), hostile_explanation(delta=math.nan)]
    fig = probe_figure(es, title=f"{TITLE} (train, epoch 0)")
    render(fig)
    assert any("$\\frac$" in t for t in drawn(fig))


def test_benchmark_plot_with_hostile_method_name():
    rows = [
        {"method": "$\\frac$", "ms_per_sequence": 1.0, "reference": False},
        {"method": "$5", "ms_per_sequence": 2.0, "reference": False},
    ]
    result = BenchmarkResult(rows, metrics=[], recommendation="$\\frac$", n_sequences=2)
    render(result.plot())
