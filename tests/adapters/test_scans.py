"""What the CSV reader is told before or after DuckDB reads a file: where the stray
carriage returns are (:func:`concerted.adapters.filebytes.lone_carriage_returns`, searched
chunk by chunk), the records that hold one set aside as those records only, and the
messages of a file DuckDB cannot read."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.adapters.filebytes import lone_carriage_return, lone_carriage_returns
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
        assert lone_carriage_return(path, chunk=chunk) == expected
        every = [
            (data.count(b"\n", 0, m.start()) + 1, m.start())
            for m in re.finditer(rb"\r(?!\n)", data)
        ]
        assert list(lone_carriage_returns(path, chunk=chunk)) == every


_HEADER = "report_id,reporter_id,target_id,target_kind,reason,ts,platform"


def _reports(n: int) -> list[str]:
    return [_HEADER] + [f"r{i},a{i},t,account,spam,2021-05-01T10:00:00Z,x" for i in range(n)]


def _ids(store: Store) -> list[int]:
    return sorted(int(r) for (r,) in store.sql("SELECT report_id[2:] FROM reports").fetchall())


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
def test_a_stray_carriage_return_that_hides_the_dialect_is_its_record_only(
    store: Store, tmp_path: Path, on_error: str
) -> None:
    """A space turned into a carriage return in one line of a reports file (the
    fuzzer's input): DuckDB's sniffer cannot tell the dialect. The file was refused
    whole, first with "Error when sniffing file", then with the line and the byte, under
    quarantine too. Now that record alone is the error: named with its row, line,
    column and byte under raise, set aside under quarantine (its fields kept, the
    return in them), and the other seven records are read."""
    lines = _reports(8)
    data = ("\n".join(lines) + "\n").encode()
    at = data.index(b"spam", len(lines[0]) + 6 * 40)
    path = tmp_path / "reports.csv"
    path.write_bytes(data[:at] + b"sp\ram" + data[at + 4 :])
    line = data[:at].count(b"\n") + 1
    if on_error == "raise":
        with pytest.raises(SchemaError) as e:
            load(store, path, "reports", on_error=on_error)
        assert (e.value.row, e.value.line, e.value.column) == (line - 1, line, "reason")
        assert f"a carriage return (byte {at + 2:,}) that ends no line" in str(e.value)
        assert "sniffing" not in str(e.value)
        return
    report = load(store, path, "reports", on_error=on_error)
    assert (report.rows_read, report.rows_set_aside) == (8, 1)
    assert _ids(store) == [i for i in range(8) if i != line - 2]
    ((row, where, column, raw),) = store.sql(
        'SELECT "row", line, "column", raw FROM quarantine'
    ).fetchall()
    assert (row, where, column) == (line - 1, line, "reason")
    assert json.loads(raw)["reason"] == "sp\ram"


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_stray_carriage_return_beyond_the_sniffers_sample(
    store: Store, tmp_path: Path, eol: str
) -> None:
    """A carriage return in record 25,000 of 30,000, past the lines DuckDB's sniffer
    reads: its parser stopped ("The CSV Parser state machine reached an invalid
    state"), and the whole file was refused with that message under quarantine too.
    Now record 25,000 is set aside, and a bad time in record 27,000 keeps its number."""
    lines = _reports(30_000)
    lines[25_000] = lines[25_000].replace("spam", "sp\ram")
    lines[27_000] = lines[27_000].replace("2021-05-01", "2021-15-01")
    path = tmp_path / "reports.csv"
    path.write_bytes((eol.join(lines) + eol).encode())
    report = load(store, path, "reports", on_error="quarantine")
    assert (report.rows_read, report.rows_set_aside) == (30_000, 2)
    assert store.sql('SELECT "row", line, "column" FROM quarantine ORDER BY 1').fetchall() == [
        (25_000, 25_001, "reason"),
        (27_000, None, "ts"),
    ]
    assert len(_ids(store)) == 29_998


@settings(max_examples=examples(40), deadline=None)
@given(
    n=st.integers(1, 40),
    cuts=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 60)), min_size=1, max_size=4),
    crlf=st.booleans(),
)
def test_every_record_holding_a_stray_return_is_set_aside_and_no_other(
    n: int, cuts: list[tuple[int, int]], crlf: bool
) -> None:
    """Carriage returns put anywhere in the records of a reports file (in place of a
    byte, or between two): whether DuckDB's sniffer fails, its parser stops or it takes
    a return for a line's end (which read the record as two broken lines and numbered
    every later record one too far on), the records set aside are exactly those that
    hold a return, the others are read with their own numbers, and under raise the
    error names the first."""
    lines = _reports(n)
    hit = set()
    for record, at in cuts:
        record = record % n + 1
        text = lines[record]
        at %= len(text) - 1
        keep = 0 if text[at] == "," else 1
        lines[record] = text[:at] + "\r" + text[at + keep :]
        hit.add(record)
    data = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.csv"
        path.write_bytes(data.encode())
        with Store(":memory:") as quarantined:
            report = load(quarantined, path, "reports", on_error="quarantine")
            assert report.rows_read == n
            rows = quarantined.sql('SELECT DISTINCT "row" FROM quarantine ORDER BY 1').fetchall()
            assert [r for (r,) in rows] == sorted(hit)
            assert _ids(quarantined) == [i - 1 for i in range(1, n + 1) if i not in hit]
        with Store(":memory:") as raised, pytest.raises(SchemaError) as e:
            load(raised, path, "reports", on_error="raise")
        assert e.value.row == min(hit)


def test_a_stray_carriage_return_in_the_header_refuses_the_file(
    store: Store, tmp_path: Path
) -> None:
    """A return in the header line leaves no column names to read the records by: the
    file is refused, naming line 1 and the byte, under quarantine too."""
    lines = _reports(3)
    lines[0] = lines[0].replace("reporter_id", "reporter\r_id")
    path = tmp_path / "reports.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    with pytest.raises(SchemaError) as e:
        load(store, path, "reports", on_error="quarantine")
    assert e.value.line == 1
    at = len("report_id,reporter")
    assert f"holds a carriage return (byte {at}) that ends no line" in str(e.value)
