"""NaN and infinite scores (they round-trip through saved explanations) draw sensibly."""

from __future__ import annotations

import io
import math

from captum_rnn.viz import plot_token_attributions, token_spans_html


def test_html_leaves_non_finite_scores_unshaded_and_scales_by_the_finite_ones():
    page = token_spans_html(["a", "b", "c"], [math.nan, math.inf, 0.5])
    assert "nan)" not in page and "inf)" not in page  # no invalid CSS colour
    assert page.count("rgba(0,0,0,0.000)") == 2
    assert "rgba(33,102,172,0.850)" in page  # 0.5 is the largest finite score: full shade
    assert 'title="+nan"' in page and 'title="+inf"' in page


def test_heatmap_scale_ignores_non_finite_scores():
    fig = plot_token_attributions(["a", "b", "c", "d"], [math.nan, math.inf, -math.inf, 0.5])
    fig.savefig(io.BytesIO(), format="png")
    norm = fig.axes[0].images[0].norm
    assert (norm.vmin, norm.vmax) == (-0.5, 0.5)
