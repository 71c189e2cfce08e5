"""The conformance checks every detector passes, for plugin authors to run on theirs.

:func:`check_detector` runs each check on the planted case of
:mod:`concerted.testing.planted` (an organic population with its hard negatives, a
planted network and a planted brigade) and raises :class:`AssertionError` naming the
first that fails. The project's own suite (``tests/test_detectors.py``) runs the same
checks on every registered detector, so a plugin that passes them passes what the
built-in detectors pass::

    from concerted.testing import check_detector
    from mypackage import MyDetector

    def test_my_detector_conforms():
        check_detector(MyDetector())

The checks:

- :func:`check_contract`: the evidence has the contract's columns and types, every
  row names the detector, and something of the planted case is found;
- :func:`check_unit_scores`: signal scores, and edge scores where given, lie in [0, 1];
- :func:`check_empty`: empty in, empty out;
- :func:`check_row_order`: the rows' order changes nothing;
- :func:`check_deterministic`: the same input gives the same evidence;
- :func:`check_no_self_pairs`: no account is paired with itself, and pairs are ordered;
- :func:`check_recovers_planted`: the planted operation scores higher, on average, than
  everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, SIGNAL_COLUMNS, Detector
from concerted.detectors.base import Evidence as Evidence
from concerted.schema import EVIDENCE_CONTRACTS
from concerted.testing.planted import Planted, planted_case

__all__ = [
    "CHECKS",
    "check_contract",
    "check_detector",
    "check_deterministic",
    "check_empty",
    "check_no_self_pairs",
    "check_recovers_planted",
    "check_row_order",
    "check_unit_scores",
    "connect",
    "evidence_rows",
]

PARTS = ("edges", "events", "signals")
_COLUMNS = {"edges": EDGE_COLUMNS, "events": EVENT_COLUMNS, "signals": SIGNAL_COLUMNS}
_SQL_TYPES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in UTC with a 2 GB limit, as the checks use."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '2GB'")
    return con


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect()
    try:
        yield con
    finally:
        con.close()


def evidence_rows(evidence: Evidence) -> dict[str, list[tuple[Any, ...]]]:
    """Every part's rows, sorted, floats rounded to 9 places (parallel sums may differ
    in the last bits)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for part in PARTS:
        rows = getattr(evidence, part).fetchall()
        out[part] = sorted(
            (tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows),
            key=repr,
        )
    return out


def check_contract(detector: Detector) -> None:
    """The evidence has the contract's columns and types, and every row names the
    detector; something of the planted case is found."""
    with _connection() as con:
        planted_case(con)
        evidence = detector.detect(con, "actions")
        found = 0
        for part in PARTS:
            relation = getattr(evidence, part)
            assert relation.columns == list(_COLUMNS[part]), (
                f"{detector.name}: {part} has columns {relation.columns}, "
                f"not {list(_COLUMNS[part])}"
            )
            types = [str(t) for t in relation.types]
            expected = [_SQL_TYPES.get(c.type, c.type) for c in EVIDENCE_CONTRACTS[part].columns]
            assert types == expected, f"{detector.name}: {part} has types {types}"
            rows = relation.fetchall()
            found += len(rows)
            names = {row[0] for row in rows}
            assert names <= {detector.name}, f"{detector.name}: {part} rows name {names}"
        assert found, f"{detector.name} found nothing in the planted case"


def check_unit_scores(detector: Detector) -> None:
    """Signal scores, and edge scores where given, lie in [0, 1]."""
    with _connection() as con:
        planted_case(con)
        evidence = detector.detect(con, "actions")
        bad = evidence.signals.filter("score IS NULL OR NOT (score BETWEEN 0 AND 1)")
        assert bad.fetchall() == [], f"{detector.name}: signal scores outside [0, 1]"
        edges = evidence.edges.filter("score IS NOT NULL AND NOT (score BETWEEN 0 AND 1)")
        assert edges.fetchall() == [], f"{detector.name}: edge scores outside [0, 1]"


def check_empty(detector: Detector) -> None:
    """Empty in, empty out."""
    with _connection() as con:
        planted_case(con, empty=True)
        got = evidence_rows(detector.detect(con, "actions"))
        assert got == {part: [] for part in PARTS}, f"{detector.name}: evidence from no data"


def check_row_order(detector: Detector) -> None:
    """The same rows in another order give the same evidence."""
    with _connection() as con, _connection() as other:
        planted_case(con, seed=1)
        planted_case(other, seed=1, shuffle=True)
        first = evidence_rows(detector.detect(con, "actions"))
        assert evidence_rows(detector.detect(other, "actions")) == first, (
            f"{detector.name}: the rows' order changed the evidence"
        )


def check_deterministic(detector: Detector) -> None:
    """Two runs on the same input give the same evidence."""
    with _connection() as con:
        planted_case(con, seed=2)
        first = evidence_rows(detector.detect(con, "actions"))
        assert evidence_rows(detector.detect(con, "actions")) == first, (
            f"{detector.name}: two runs differ"
        )


def check_no_self_pairs(detector: Detector) -> None:
    """No account is paired with itself, even when it acts twice on one object a second
    apart, and every pair is ordered ``(platform_1, account_1) < (platform_2,
    account_2)``."""
    with _connection() as con:
        planted_case(con, seed=3)
        con.execute(
            "INSERT INTO actions SELECT actor_id, platform, kind, object_id, "
            "ts + INTERVAL 1 SECOND, source_id || '-again' FROM actions WHERE actor_id = 'm0'"
        )
        evidence = detector.detect(con, "actions")
        for part in ("edges", "events"):
            pairs = getattr(evidence, part).project("platform_1, account_1, platform_2, account_2")
            assert all((p1, a1) < (p2, a2) for p1, a1, p2, a2 in pairs.fetchall()), (
                f"{detector.name}: {part} pairs an account with itself or out of order"
            )


def check_recovers_planted(
    detector: Detector, planted: tuple[duckdb.DuckDBPyConnection, Planted] | None = None
) -> None:
    """Whatever it scores, the planted operation scores higher than the rest on average,
    and at least one planted thing is scored. ``planted`` is a connection holding
    :func:`~concerted.testing.planted.planted_case` (seed 4) and its truth, to share
    one between detectors; a new one is made when it is not given."""
    if planted is None:
        with _connection() as con:
            check_recovers_planted(detector, (con, planted_case(con, seed=4)))
        return
    con, truth = planted
    evidence = detector.detect(con, "actions")
    inside: list[float] = []
    outside: list[float] = []
    pairs: dict[tuple[str, str, str, str], float] = {}
    for p1, a1, p2, a2, weight, score in evidence.edges.project(
        "platform_1, account_1, platform_2, account_2, weight, score"
    ).fetchall():
        key = (p1, a1, p2, a2)
        pairs[key] = max(pairs.get(key, 0.0), score if score is not None else weight)
    accounts = truth.entities("account")
    for (p1, a1, p2, a2), value in pairs.items():
        both = (p1, a1) in accounts and (p2, a2) in accounts
        (inside if both else outside).append(value)
    for entity, platform, id_, score in evidence.signals.project(
        "entity, platform, id, score"
    ).fetchall():
        (inside if (platform, id_) in truth.entities(entity) else outside).append(score)
    assert inside, f"{detector.name} scored nothing planted"
    if outside:
        assert sum(inside) / len(inside) > sum(outside) / len(outside), (
            f"{detector.name} scores the planted operation no higher than the rest"
        )


#: Every check :func:`check_detector` runs, in order.
CHECKS: tuple[Callable[[Detector], None], ...] = (
    check_contract,
    check_unit_scores,
    check_empty,
    check_row_order,
    check_deterministic,
    check_no_self_pairs,
    check_recovers_planted,
)


def check_detector(detector: Detector) -> None:
    """Run every conformance check on ``detector``; :class:`AssertionError` names the
    first one that fails.

    >>> from concerted.detectors import get
    >>> check_detector(get("co_action"))
    """
    for check in CHECKS:
        check(detector)
