import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llama_index_opensearch_llm._json import parse_arguments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("   ", {}),
        (None, {}),
        ("{", {}),
        ('{"', {}),
        ('{"ci', {}),
        ('{"city"', {}),
        ('{"city":', {"city": None}),
        ('{"city": "New Yo', {"city": "New Yo"}),
        ('{"city": "New York"', {"city": "New York"}),
        ('{"city": "New York", ', {"city": "New York"}),
        ('{"city": "New York", "u', {"city": "New York"}),
        ('{"city": "New York", "unit": tr', {"city": "New York"}),
        ('{"a": [1, 2', {"a": [1, 2]}),
        ('{"a": {"b": "x\\', {"a": {"b": "x"}}),
        ('{"a": "say \\"hi', {"a": 'say "hi'}),
        ('{"a": "line\nbreak', {"a": "line\nbreak"}),
        ('{"city": "New York"}', {"city": "New York"}),
        ('{"city": "北京"}', {"city": "北京"}),
        ("[1, 2]", {}),
        ("42", {}),
        ("not json", {}),
    ],
)
def test_partial_arguments_parse_to_the_largest_object(text: Any, expected: dict[str, Any]) -> None:
    assert parse_arguments(text) == expected


def test_a_dict_is_returned_as_is() -> None:
    arguments = {"a": 1}
    assert parse_arguments(arguments) is arguments


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4), st.data())
def test_every_prefix_of_an_object_parses_and_the_whole_round_trips(
    value: dict[str, Any], data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=data.draw(st.booleans()))
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    assert isinstance(parse_arguments(text[:cut]), dict)
    assert parse_arguments(text) == value
