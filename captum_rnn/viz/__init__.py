"""Figures and HTML for explanations."""

from captum_rnn.viz._attention import (
    plot_attention_matrix,
    plot_attention_tokens,
    plot_rollout_layers,
)
from captum_rnn.viz._dataset_view import plot_dataset_summary
from captum_rnn.viz._examples import (
    plot_examples,
    plot_gate_activations,
    plot_neighbors,
    plot_prototypes_and_criticisms,
    plot_unit_token_responses,
)
from captum_rnn.viz._figures import (
    plot_output_input_attributions,
    plot_time_feature_attributions,
    plot_token_attributions,
)
from captum_rnn.viz._html import figure_to_data_uri, html_page, token_spans_html

__all__ = [
    "plot_attention_matrix",
    "plot_attention_tokens",
    "plot_rollout_layers",
    "plot_dataset_summary",
    "plot_examples",
    "plot_gate_activations",
    "plot_neighbors",
    "plot_prototypes_and_criticisms",
    "plot_unit_token_responses",
    "figure_to_data_uri",
    "html_page",
    "plot_output_input_attributions",
    "plot_time_feature_attributions",
    "plot_token_attributions",
    "token_spans_html",
]
