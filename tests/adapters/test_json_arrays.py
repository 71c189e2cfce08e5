"""A JSON array split into its elements without parsing them
(:func:`concerted.adapters.filebytes.array_elements`, what reads a broken array record by
record) gives, for an array that parses, exactly the array's elements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.adapters.filebytes import array_elements
from tests.budget import examples

# Strings full of what the splitter must not take for structure.
_TEXT = st.text(alphabet=st.sampled_from(list('ab ,[]{}"\\:\n\t\r/é\u2028ہ')), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=examples(200), deadline=None)
@given(
    values=st.lists(_VALUES, max_size=6),
    indent=st.sampled_from([None, 0, 1, 2, "\t"]),
    ascii_only=st.booleans(),
)
def test_a_whole_array_splits_into_its_elements(
    tmp_path_factory: Any, values: list[Any], indent: Any, ascii_only: bool
) -> None:
    path = Path(tmp_path_factory.mktemp("arrays")) / "a.json"
    text = json.dumps(values, indent=indent, ensure_ascii=ascii_only)
    path.write_bytes(text.encode("utf-8"))
    elements = array_elements(path)
    assert elements is not None
    assert all(b"\n" not in e and b"\r" not in e for e in elements)
    assert [json.loads(e) for e in elements] == values


def test_what_is_not_an_array_is_not_split(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    for text in (b'{"a": [1, 2]}', b"", b"1, 2", b"\xff[1]"):
        path.write_bytes(text)
        assert array_elements(path) is None
