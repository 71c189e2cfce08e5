"""The analysis keeps its memory bounded: every DuckDB database it opens holds the
case's memory limit, and its counts come from Arrow, not from Python lists of rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from concerted.analysis import analyze
from concerted.outputs import model
from concerted.outputs.base import Result
from concerted.store import Store
from concerted.testing.planted import planted_case

_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _bytes(setting: str) -> float:
    """DuckDB's ``memory_limit`` as it prints it (``286.1 MiB``), in bytes.

    >>> _bytes("1.5 KiB")
    1536.0
    """
    found = re.fullmatch(r"([0-9.]+) ?(bytes|KiB|MiB|GiB|TiB)", setting.strip())
    assert found, setting
    return float(found.group(1)) * _UNITS[found.group(2)]


def _limit(con: Any) -> str:
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The planted case analysed under a 300 MB limit; the limits the page's databases
    were opened with."""
    seen: list[str] = []

    class Watched(Result):
        def __init__(self, directory: str | Path, **kwargs: Any) -> None:
            super().__init__(directory, **kwargs)
            seen.append(_limit(self.con))

    out = tmp_path_factory.mktemp("planted") / "result"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "Result", Watched)
        with Store(":memory:", memory_limit="300MB") as store:
            planted_case(store.con, seed=4)
            case_limit = _limit(store.con)
            run = analyze(store, out)
    yield {"run": run, "out": out, "case_limit": case_limit, "page_limits": seen}


def test_the_page_reads_the_result_within_the_case_limit(planted: dict[str, Any]) -> None:
    case = _bytes(planted["case_limit"])
    assert planted["page_limits"], "the page opened no result"
    for limit in planted["page_limits"]:
        # DuckDB prints the limit rounded: read back, it may come out a little lower.
        assert 0.95 * case <= _bytes(limit) <= case


def test_a_result_takes_the_limit_it_is_given(planted: dict[str, Any]) -> None:
    with Result(planted["out"], memory_limit="200MB") as res:
        assert _bytes(_limit(res.con)) <= 200e6
    with Result(planted["out"]) as res:
        assert _bytes(_limit(res.con)) > 300e6


def test_flagged_reports_are_counted_as_the_rows_say(planted: dict[str, Any]) -> None:
    flags = pq.read_table(planted["out"] / "report_scores.parquet").column("flagged")
    plain = sum(bool(f) for f in flags.to_pylist())
    assert plain > 0, "the planted brigade's reports are flagged"
    assert planted["run"]["counts"]["reports_flagged"] == plain
