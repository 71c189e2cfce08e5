"""What the CSV reader is told before or after DuckDB reads a file: where a stray
carriage return is (:func:`concerted.adapters.scans._lone_carriage_return`, searched
chunk by chunk), and the messages of a file DuckDB cannot read."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.adapters.scans import _lone_carriage_return
from concerted.errors import SchemaError
from concerted.store import Store
from tests.budget import examples
from tests.conftest import load


@settings(max_examples=examples(300), deadline=None)
@given(data=st.binary().map(lambda b: bytes(b"a\r\n"[x % 3] for x in b)), chunk=st.integers(1, 9))
def test_the_stray_carriage_return_is_found_across_chunks(data: bytes, chunk: int) -> None:
    """Chunk by chunk, as on the whole file at once: a carriage return at a chunk's end
    is stray only if the next chunk does not start with a line feed."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_bytes(data)
        found = re.search(rb"\r(?!\n)", data)
        expected = (
            None if found is None else (data.count(b"\n", 0, found.start()) + 1, found.start())
        )
        assert _lone_carriage_return(path, chunk=chunk) == expected


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
def test_a_stray_carriage_return_that_hides_the_dialect_is_named(
    store: Store, tmp_path: Path, on_error: str
) -> None:
    """A space turned into a carriage return in one line of a reports file (the
    fuzzer's input): DuckDB's sniffer cannot tell the dialect, and the file was refused
    with "cannot be read: Invalid Input Error: Error when sniffing file", under
    quarantine too. It is still refused, but the line and the byte are named."""
    lines = ["report_id,reporter_id,target_id,target_kind,reason,ts,platform"]
    lines += [f"r{i},a{i},t,account,spam,2021-05-01T10:00:0{i}Z,x" for i in range(8)]
    data = ("\n".join(lines) + "\n").encode()
    at = data.index(b"spam", len(lines[0]) + 6 * 40)
    path = tmp_path / "reports.csv"
    path.write_bytes(data[:at] + b"sp\ram" + data[at + 4 :])
    with pytest.raises(SchemaError) as e:
        load(store, path, "reports", on_error=on_error)
    line = data[:at].count(b"\n") + 1
    assert e.value.line == line
    assert f"line {line} holds a carriage return (byte {at + 2:,}) that ends no line" in str(
        e.value
    )
    assert "sniffing" not in str(e.value)
