"""output_name: the one rule that names an output index for titles and tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captum_rnn._utils.targets import output_name
from captum_rnn.explanation import Explanation


@given(st.lists(st.text(min_size=1), max_size=4), st.integers(-3, 6))
def test_output_name_uses_the_name_only_for_a_known_index(names, index):
    expected = names[index] if 0 <= index < len(names) else str(index)
    assert output_name(names, index) == expected


@pytest.mark.parametrize("index", [1.0, "1", None])
def test_output_name_of_a_non_int_is_its_text(index):
    assert output_name(["a", "b"], index) == str(index)


def test_explanation_titles_read_the_class_names():
    e = Explanation(["a", "b"], [0.1, 0.2], "m", target=1, class_names=["neg", "pos"])
    assert e.class_name(1) == "pos" and e.class_name(2) == "2"
    assert "target=pos" in e.title()
