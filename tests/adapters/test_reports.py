"""Report logs through the real ingest: CSV, JSON lines and renamed columns, the
report actions they give, --platform, idempotency, and broken logs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from concerted.errors import ConfigError, SchemaError
from concerted.store import Store
from tests.conftest import FIXTURES, load, rows

REPORTS = FIXTURES / "reports"
COLUMNS = (
    "report_id, reporter_id, target_id, target_kind, reason, ts, channel, client, text, "
    "outcome, platform"
)
MAPPING = {
    "report_id": "id",
    "reporter_id": "flagged_by",
    "target_id": "flagged",
    "target_kind": "object_type",
    "reason": "category",
    "ts": "created_at",
    "channel": "via",
    "outcome": "decision",
}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_csv_log(store: Store) -> None:
    report = load(store, REPORTS / "reports.csv", "reports")
    assert report.rows_read == 8
    assert report.rows_added == {"reports": 8}
    got = rows(store, f"SELECT {COLUMNS} FROM reports ORDER BY report_id")
    assert got[0] == (
        "r-001",
        "acct-101",
        "acct-900",
        "account",
        "impersonation",
        utc(2021, 5, 1, 10),
        "app",
        "Android 11; App 320.0",
        "This is a fake account",
        "upheld",
        "facebook",
    )
    # +02:00 offset, pending (empty) outcome
    assert got[2] == (
        "r-003",
        "acct-103",
        "post-555",
        "post",
        "hate_speech",
        utc(2021, 5, 1, 8, 1),
        "web",
        "Mozilla/5.0 (X11; Linux x86_64)",
        None,
        None,
        "facebook",
    )
    by_id = {r[0]: r for r in got}
    assert by_id["r-004"][5] == utc(2021, 5, 1, 10, 2)  # epoch seconds
    assert by_id["r-005"][3:6] == ("group", "harassment", utc(2021, 5, 1, 10, 3))  # "... UTC"
    assert by_id["r-005"][8] == "Group targets me, please review"
    assert (by_id["r-008"][3], by_id["r-008"][9]) == ("page", "upheld")  # "Page", "Upheld"
    assert by_id["r-007"][10] == "instagram"
    assert rows(store, "SELECT outcome, count(*) FROM reports GROUP BY 1 ORDER BY 1") == [
        ("rejected", 2),
        ("upheld", 4),
        (None, 2),
    ]
    assert rows(store, "SELECT DISTINCT target_kind FROM reports ORDER BY 1") == [
        ("account",),
        ("group",),
        ("page",),
        ("post",),
    ]
    assert rows(store, "SELECT count(DISTINCT reporter_id) FROM reports") == [(5,)]


def test_unmapped_columns_go_to_extra(store: Store) -> None:
    load(store, REPORTS / "reports.csv", "reports")
    assert rows(
        store,
        "SELECT extra->>'queue', extra->>'reporter_country', extra->>'report_id' "
        "FROM reports WHERE report_id = 'r-003'",
    ) == [("hate", "AU", None)]


def test_reports_become_report_actions(store: Store) -> None:
    report = load(store, REPORTS / "reports.csv", "reports")
    assert report.actions_added == 8
    got = rows(
        store,
        "SELECT actor_id, platform, kind, object_id, ts, source_id FROM actions ORDER BY source_id",
    )
    assert len(got) == 8
    assert got[0] == ("acct-101", "facebook", "report", "acct-900", utc(2021, 5, 1, 10), "r-001")
    assert {(a[0], a[3], a[5]) for a in got if a[3] in ("post-555", "page-42")} == {
        ("acct-103", "post-555", "r-003"),
        ("acct-102", "post-555", "r-006"),
        ("acct-101", "page-42", "r-004"),
        ("acct-103", "page-42", "r-008"),
    }
    assert rows(store, "SELECT DISTINCT kind FROM actions") == [("report",)]


def test_jsonl_log_with_platform_option(store: Store) -> None:
    report = load(store, REPORTS / "reports.jsonl", "reports", platform="Instagram")
    assert report.rows_read == 5  # the blank line is no record
    assert report.rows_added == {"reports": 5}
    assert rows(
        store,
        "SELECT report_id, target_kind, ts, outcome, platform, text, client, "
        "extra->>'device.os' FROM reports ORDER BY report_id",
    ) == [
        ("r-101", "post", utc(2021, 6, 1, 12), "upheld", "instagram", None, None, "android"),
        ("r-102", "post", utc(2021, 6, 1, 12, 0, 5), "rejected", "instagram", None, None, "ios"),
        ("r-103", "account", utc(2021, 6, 1, 12, 0, 10), None, "instagram", None, None, None),
        (
            "r-104",
            "group",
            utc(2021, 6, 1, 12),
            None,
            "instagram",
            "They organise raids here",
            None,
            "android",
        ),
        ("r-105", "page", utc(2021, 6, 1, 12, 1), None, "instagram", None, "Mozilla/5.0", None),
    ]
    # A nested object's keys are kept, not the object's text beside them.
    assert rows(store, "SELECT extra FROM reports WHERE report_id = 'r-101'") == [
        ('{"device.app_version":"320.0","device.os":"android"}',)
    ]
    assert rows(store, "SELECT count(*), count(DISTINCT object_id) FROM actions") == [(5, 4)]


def test_platform_column_wins_over_option(store: Store) -> None:
    load(store, REPORTS / "reports.csv", "reports", platform="tiktok")
    assert rows(store, "SELECT platform, count(*) FROM reports GROUP BY 1 ORDER BY 1") == [
        ("facebook", 7),
        ("instagram", 1),
    ]


def test_mapped_columns(store: Store) -> None:
    report = load(
        store, REPORTS / "reports_mapped.tsv", "reports", mapping=MAPPING, platform="facebook"
    )
    assert report.rows_added == {"reports": 3}
    assert rows(store, f"SELECT {COLUMNS}, extra->>'note' FROM reports ORDER BY report_id") == [
        (
            "m-1",
            "user-1",
            "user-9",
            "account",
            "spam",
            utc(2021, 7, 1, 9),
            "app",
            None,
            None,
            "upheld",
            "facebook",
            "first wave",
        ),
        (
            "m-2",
            "user-2",
            "user-9",
            "account",
            "spam",
            utc(2021, 7, 1, 9, 0, 2),
            "app",
            None,
            None,
            None,
            "facebook",
            "first wave",
        ),
        (
            "m-3",
            "user-3",
            "post-3",
            "post",
            "spam",
            utc(2021, 7, 1, 9, 0, 4),
            "web",
            None,
            None,
            "rejected",
            "facebook",
            None,
        ),
    ]
    assert sorted(rows(store, "SELECT actor_id, object_id, source_id FROM actions")) == [
        ("user-1", "user-9", "m-1"),
        ("user-2", "user-9", "m-2"),
        ("user-3", "post-3", "m-3"),
    ]


def test_mapped_bad_value_names_the_files_column(store: Store) -> None:
    mapping = {**MAPPING, "outcome": "note"}
    with pytest.raises(SchemaError, match="unknown value 'first wave'") as e:
        load(store, REPORTS / "reports_mapped.tsv", "reports", mapping=mapping, platform="x")
    assert (e.value.row, e.value.column) == (1, "note")


def test_no_platform_anywhere(store: Store) -> None:
    with pytest.raises(SchemaError, match="missing column 'platform'") as e:
        load(store, REPORTS / "reports_mapped.tsv", "reports", mapping=MAPPING)
    assert (e.value.row, e.value.column) == (None, "platform")


def test_map_to_a_column_reports_do_not_have(store: Store) -> None:
    with pytest.raises(ConfigError, match="author"):
        load(store, REPORTS / "reports.csv", "reports", mapping={"author": "reporter_id"})
    with pytest.raises(ConfigError, match="flagger"):
        load(store, REPORTS / "reports.csv", "reports", mapping={"reporter_id": "flagger"})


def test_other_tables_are_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="reports table only"):
        load(store, REPORTS / "reports.csv", "reports", table="posts")
    load(store, REPORTS / "reports.csv", "reports", table="reports")
    assert store.counts()["reports"] == 8


def test_reingest_adds_nothing(store: Store, tmp_path: Path) -> None:
    load(store, REPORTS / "reports.csv", "reports")
    before = store.counts()
    again = load(store, REPORTS / "reports.csv", "reports")
    assert again.status == "already ingested"
    assert store.counts() == before
    # The same reports in another order are another file, but nothing new.
    header, *lines = (REPORTS / "reports.csv").read_text(encoding="utf-8").splitlines()
    shuffled = tmp_path / "reports_reversed.csv"
    shuffled.write_text("\n".join([header, *reversed(lines)]) + "\n", encoding="utf-8")
    report = load(store, shuffled, "reports")
    assert report.status == "ingested"
    assert report.rows_added == {"reports": 0}
    assert report.rows_duplicate == 8
    assert report.actions_added == 0
    assert store.counts() == before


BROKEN = [
    # file, bad row, column, reason, the good report ids
    ("reports_bad_outcome.csv", 3, "outcome", "unknown value 'escalated'", ["b-1", "b-2", "b-4"]),
    (
        "reports_bad_ts.csv",
        2,
        "ts",
        "unparseable timestamp '31/02/2021 25:00'",
        ["t-1", "t-3", "t-4"],
    ),
    ("reports_broken.jsonl", 3, None, "broken JSON", ["j-1", "j-2", "j-4"]),
]


@pytest.mark.parametrize(("name", "row", "column", "reason", "good"), BROKEN)
def test_broken_log_raises(
    store: Store, name: str, row: int, column: str | None, reason: str, good: list[str]
) -> None:
    with pytest.raises(SchemaError) as e:
        load(store, REPORTS / name, "reports")
    assert (e.value.row, e.value.column) == (row, column)
    assert reason in e.value.reason
    assert store.counts()["reports"] == 0
    assert rows(store, "SELECT count(*) FROM sources") == [(0,)]


@pytest.mark.parametrize(("name", "row", "column", "reason", "good"), BROKEN)
def test_broken_log_quarantined(
    store: Store, name: str, row: int, column: str | None, reason: str, good: list[str]
) -> None:
    report = load(store, REPORTS / name, "reports", on_error="quarantine")
    assert report.rows_read == 4
    assert report.rows_set_aside == 1
    assert report.rows_added == {"reports": 3}
    table = None if column is None else "reports"
    q = rows(store, 'SELECT "table", "row", "column", reason FROM quarantine')
    assert [r[:3] for r in q] == [(table, row, column)]
    assert reason in q[0][3]
    assert rows(store, "SELECT report_id FROM reports ORDER BY 1") == [(g,) for g in good]
    assert rows(store, "SELECT source_id FROM actions ORDER BY 1") == [(g,) for g in good]


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
def test_missing_required_column(store: Store, on_error: str) -> None:
    with pytest.raises(SchemaError, match="missing column 'reporter_id'") as e:
        load(store, REPORTS / "reports_missing_column.csv", "reports", on_error=on_error)
    assert e.value.column == "reporter_id"
    assert e.value.row is None
    assert store.counts()["reports"] == 0
