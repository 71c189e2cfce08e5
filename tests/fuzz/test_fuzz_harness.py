"""The campaign's fast harness judges every input as the plain one does.

``harness.run`` opens a new case file for every run; ``harness.Runner`` keeps one case
(in memory, or a file) and empties it between runs, and ``campaign`` spreads the inputs
over worker processes. Here the three are held to the same outcomes and counts: on the
corpus, on the unmutated fixtures, on drawn inputs, and with faults planted in ingest
(a crash, a miscount) that each must flag on exactly the same runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import concerted.ingest
from concerted.ingest import SourceReport
from concerted.schema import Validated, validate
from concerted.store import Store
from tests.fuzz import campaign
from tests.fuzz.harness import MODES, Outcome, Runner, run
from tests.fuzz.mutations import mutate
from tests.fuzz.sources import FIXTURES, SOURCES
from tests.fuzz.test_fuzz_ingest import CORPUS

# Each test runs the plain harness and the fast one over some eighty inputs.
pytestmark = pytest.mark.heavy

Input = tuple[str, str, bytes]


def _corpus() -> list[tuple[Input, str]]:
    """Every corpus entry that is a drawn mutation: its input and its mode."""
    found = []
    for case in sorted(CORPUS.glob("*.json")):
        entry = json.loads(case.read_text(encoding="utf-8"))
        if "data_b64" in entry:
            continue
        data = mutate((FIXTURES / entry["fixture"]).read_bytes(), entry["mutations"], entry["seed"])
        found.append(((entry["format"], entry["fixture"], data), entry["on_error"]))
    return found


def _inputs() -> Iterator[tuple[Input, str]]:
    """The corpus, each fixture as given and a few drawn inputs, in both modes."""
    yield from _corpus()
    for fmt, fixture in SOURCES:
        for on_error in MODES:
            yield (fmt, fixture, (FIXTURES / fixture).read_bytes()), on_error
    for draw in campaign.draws(1, 29):
        for on_error in MODES:
            yield (draw.fmt, draw.fixture, draw.data()), on_error


def _seen(outcome: Outcome) -> tuple[str, dict[str, int], str]:
    """What must agree: the kind, the counts, and the message (of a refusal: the
    file's directory differs) or the miscount."""
    detail = outcome.detail
    if outcome.kind == "refused":
        # The first 200 characters of each message, its directory's name included.
        detail = re.sub(r"/\S*/", "/", detail)[:120]
    elif outcome.kind == "crash":
        detail = detail.strip().splitlines()[-1]
    return outcome.kind, outcome.counts, detail


def _both(inputs: list[tuple[Input, str]], runner: Runner) -> tuple[list[Any], list[Any]]:
    plain = [_seen(run(*item, on_error)) for item, on_error in inputs]
    kept = [_seen(runner.run(*item, on_error)) for item, on_error in inputs]
    return plain, kept


def test_the_kept_case_gives_the_plain_outcomes_and_counts(tmp_path: Path) -> None:
    """In memory or in a file, the kept case gives each run's kind, counts and message
    as a new case file does."""
    inputs = list(_inputs())
    with Runner() as memory, Runner(tmp_path / "case.duckdb", threads=None) as file:
        plain, in_memory = _both(inputs, memory)
        in_file = [_seen(file.run(*item, on_error)) for item, on_error in inputs]
    assert in_memory == plain
    assert in_file == plain
    kinds = {kind for kind, _, _ in plain}
    assert {"ok", "refused"} <= kinds
    assert any(counts.get("set_aside") for _, counts, _ in plain)


def test_both_modes_from_one_file_are_the_modes_run_apart() -> None:
    with Runner() as runner:
        for (fmt, fixture, data), _ in _corpus()[::2]:
            together = runner.run_both(fmt, fixture, data)
            apart = tuple(runner.run(fmt, fixture, data, on_error) for on_error in MODES)
            assert [_seen(o) for o in together] == [_seen(o) for o in apart]


def _state(store: Store) -> list[tuple[Any, ...]]:
    """What a run could leave behind: rows, temporary objects, settings."""
    tables = store.con.execute(
        "SELECT table_name, temporary, estimated_size FROM duckdb_tables() ORDER BY ALL"
    ).fetchall()
    views = store.con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
    ).fetchall()
    rows = [
        (name, store.con.execute(f'SELECT count(*) FROM "{name}"').fetchone())
        for name, temporary, _ in tables
        if not temporary
    ]
    meta = store.con.execute("SELECT * FROM case_meta ORDER BY ALL").fetchall()
    settings = store.con.execute("SELECT name, value FROM duckdb_settings() ORDER BY 1").fetchall()
    return [*rows, *views, *[t[:2] for t in tables], *meta, *settings]


def test_after_every_run_the_kept_case_is_as_new() -> None:
    with Runner() as runner:
        new = _state(runner.store)
        for item, on_error in _inputs():
            runner.run(*item, on_error)
            assert _state(runner.store) == new, (item[:2], on_error)


# -- planted faults -----------------------------------------------------------------


def _plant_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash inside ingest's transaction, only where a row of the file is bad."""

    def planted(*args: Any, **kwargs: Any) -> Validated:
        checked = validate(*args, **kwargs)
        if checked.bad_rows:
            raise RuntimeError("planted crash")
        return checked

    monkeypatch.setattr(concerted.ingest, "validate", planted)


def _plant_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """One row too many reported set aside, only where rows were set aside."""

    def planted(*args: Any, **kwargs: Any) -> SourceReport:
        report = SourceReport(*args, **kwargs)
        if report.rows_set_aside:
            return dataclasses.replace(report, rows_set_aside=report.rows_set_aside + 1)
        return report

    monkeypatch.setattr(concerted.ingest, "SourceReport", planted)


@pytest.mark.parametrize(
    ("plant", "flagged"), [(_plant_check, "crash"), (_plant_count, "mismatch")]
)
def test_a_planted_fault_is_flagged_on_the_same_runs(
    monkeypatch: pytest.MonkeyPatch, plant: Callable[[pytest.MonkeyPatch], None], flagged: str
) -> None:
    """The fault strikes only inputs with a bad row, among others that pass: the kept
    case flags exactly the runs a new case file flags, and the runs after a crash
    still find an empty case."""
    inputs = list(_inputs())
    plant(monkeypatch)
    with Runner() as runner:
        plain, kept = _both(inputs, runner)
        reopened = runner.reopened
    assert kept == plain
    kinds = [kind for kind, _, _ in plain]
    assert flagged in kinds and "ok" in kinds
    assert reopened == (kinds.count("crash") if flagged == "crash" else 0)


# -- the campaign -------------------------------------------------------------------


def test_the_pooled_campaign_counts_as_the_plain_one(tmp_path: Path) -> None:
    said: list[str] = []
    pooled = campaign.campaign(1, 31, workers=2, corpus=tmp_path, say=said.append)
    plain = campaign.campaign(1, 31, plain=True, corpus=tmp_path)
    assert pooled == plain
    assert sum(pooled.values()) == 2 * len(SOURCES)
    assert len(said) == len(SOURCES)
    assert not list(tmp_path.iterdir())


def _dies_on_odd_seeds(draw: campaign.Draw) -> tuple[Outcome, Outcome]:
    if draw.seed % 2:
        os._exit(3)  # as a process DuckDB aborts
    return campaign._work(draw)


def test_a_worker_that_dies_is_a_crash_of_its_input_only() -> None:
    items = list(campaign.draws(1, 31))[:6]
    done = dict(campaign._pooled(iter(items), 2, work=_dies_on_odd_seeds))
    assert list(done) == items
    for draw, outcomes in done.items():
        kinds = {o.kind for o in outcomes}
        assert (kinds == {"crash"}) == bool(draw.seed % 2), (draw, outcomes)
    assert any(draw.seed % 2 for draw in items) and not all(draw.seed % 2 for draw in items)
