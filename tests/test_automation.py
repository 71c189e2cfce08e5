"""S7, report automation: tools told from people by gaps, regularity, channel, order
and client."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.automation import ReportAutomation
from concerted.errors import ConfigError
from tests.test_report_content import at, by_id, make_case, signals

BROWSERS = (
    "Mozilla/5.0 (Linux; Android 10; SM-A505F) AppleWebKit/537.36 Chrome/83.0.4103.106",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/83.0.4103.97",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 13_5 like Mac OS X) AppleWebKit/605.1.15 Mobile",
)
APP = "FB4A/275.0.0.49.127"
TARGETS = [f"t{i}" for i in range(20)]


def _brigade(seed: int = 0, tools: int = 4, people: int = 12, organic: int = 60) -> list[Any]:
    """A wave: ``tools`` reporters file the list in order, 3 s apart, by direct link,
    with a marked client; ``people`` report most of it in their own order and pace;
    ``organic`` reporters file a report now and then through the app or the web."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def add(reporter: str, target: str, t: float, channel: str, client: str) -> None:
        rows.append(
            {"report_id": f"{reporter}-{len(rows)}", "reporter_id": reporter, "target_id": target,
             "reason": "terrorism", "ts": at(t), "channel": channel, "client": client}
        )  # fmt: skip

    for k in range(tools):
        t = rnd.uniform(600, 1800)
        for target in TARGETS:
            add(f"tool{k}", target, t, "direct_link", f"{BROWSERS[k % 3]} ListReporter/2.1")
            t += 3.0 + rnd.gauss(0, 0.1)
    for k in range(people):
        t = rnd.uniform(600, 5400)
        chosen = rnd.sample(TARGETS, 14)
        for target in chosen:
            add(f"person{k}", target, t, rnd.choice(("direct_link", "app")), BROWSERS[k % 3])
            t += rnd.lognormvariate(math.log(40), 0.7)
    for k in range(organic):
        for _ in range(rnd.randint(1, 3)):
            add(f"org{k}", f"x{rnd.randint(0, 40)}", rnd.uniform(0, 14 * 86_400),
                rnd.choice(("app", "web")), rnd.choice((*BROWSERS, APP)))  # fmt: skip
    return rows


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'; SET memory_limit = '1GB'")
    yield connection
    connection.close()


@pytest.fixture
def found(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, dict[str, Any]]]:
    make_case(con, reports=_brigade())
    rows = signals(ReportAutomation().detect(con, "actions"))
    layers = {r["layer"] for r in rows}
    return {layer: by_id([r for r in rows if r["layer"] == layer], "account") for layer in layers}


def _score(found: dict[str, dict[str, dict[str, Any]]], layer: str, who: str) -> float:
    return float(found[layer].get(who, {"score": 0.0})["score"])


TOOLS = [f"tool{k}" for k in range(4)]
PEOPLE = [f"person{k}" for k in range(12)]


def test_tools_are_faster_than_people(found: dict[str, dict[str, dict[str, Any]]]) -> None:
    assert min(_score(found, "subhuman_gap", t) for t in TOOLS) > 0.8
    assert max(_score(found, "subhuman_gap", p) for p in PEOPLE) < 0.1
    assert found["subhuman_gap"]["tool0"]["value"] == len(TARGETS) - 1


def test_tools_keep_time_like_clockwork(found: dict[str, dict[str, dict[str, Any]]]) -> None:
    assert min(_score(found, "clockwork", t) for t in TOOLS) > 0.9
    assert max(_score(found, "clockwork", p) for p in PEOPLE) < 0.7
    assert found["clockwork"]["tool0"]["value"] < 0.1  # the coefficient of variation


def test_tools_walk_the_list_in_one_order(found: dict[str, dict[str, dict[str, Any]]]) -> None:
    for tool in TOOLS:
        assert found["identical_sequence"][tool]["score"] == pytest.approx(1 - 1 / len(TOOLS))
        assert found["identical_sequence"][tool]["value"] == len(TOOLS)
    assert not set(PEOPLE) & set(found["identical_sequence"])


def test_a_rare_client_token_shared_in_a_burst_is_a_fingerprint(
    found: dict[str, dict[str, dict[str, Any]]],
) -> None:
    fingerprints = found["client_fingerprint"]
    assert set(fingerprints) == set(TOOLS)
    assert "listreporter/2.1" in fingerprints["tool0"]["detail"]
    # 4 of 76 reporters carry it, all 4 reported together.
    assert fingerprints["tool0"]["score"] == pytest.approx(1 * (1 - 1 / 4) * (1 - 4 / 76))


def test_direct_entry_is_scored_against_the_platform_share(
    found: dict[str, dict[str, dict[str, Any]]],
) -> None:
    direct = found["direct_entry"]
    assert min(direct[t]["score"] for t in TOOLS) > max(direct[p]["score"] for p in PEOPLE)
    assert not any(who.startswith("org") for who in direct)


def test_report_rows_carry_the_target(con: duckdb.DuckDBPyConnection) -> None:
    make_case(con, reports=_brigade())
    rows = signals(ReportAutomation().detect(con, "actions"), "subhuman_gap")
    reports = [r for r in rows if r["entity"] == "report"]
    assert reports and all(r["related_id"].startswith("t") for r in reports)
    assert all(r["id"].startswith("tool") for r in reports if r["score"] > 0.5)
    assert len([r for r in reports if r["id"].startswith("tool")]) == 4 * (len(TARGETS) - 1)


def test_a_slow_regular_tool_is_clockwork_but_not_subhuman(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = [
        {"report_id": f"r{i}", "reporter_id": "slow", "target_id": f"t{i}",
         "ts": at(60.0 * i), "channel": "web"}
        for i in range(10)
    ]  # fmt: skip
    make_case(con, reports=rows)
    found = signals(ReportAutomation().detect(con, "actions"))
    layers = {r["layer"] for r in found if r["entity"] == "account"}
    assert layers == {"clockwork"}
    clock = by_id(found, "account")["slow"]
    assert clock["score"] == 1.0 and clock["value"] == 0.0


def test_the_gap_score_is_half_at_the_human_floor(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        {"report_id": "a", "reporter_id": "u", "target_id": "t1", "ts": at(0)},
        {"report_id": "b", "reporter_id": "u", "target_id": "t2", "ts": at(5)},
    ]
    make_case(con, reports=rows)
    found = by_id(signals(ReportAutomation().detect(con, "actions"), "subhuman_gap"), "report")
    assert found["b"]["score"] == pytest.approx(0.5)
    assert found["b"]["value"] == pytest.approx(5.0)


def test_channels_are_compared_in_lower_case(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        {"report_id": f"r{i}", "reporter_id": f"u{i}", "target_id": "t", "ts": at(600 * i),
         "channel": ch}
        for i, ch in enumerate(("API", "web", "web", "app"))
    ]  # fmt: skip
    make_case(con, reports=rows)
    found = by_id(signals(ReportAutomation().detect(con, "actions"), "direct_entry"), "report")
    assert set(found) == {"r0"}
    assert found["r0"]["score"] == pytest.approx(1 - 1 / 4)


@pytest.mark.parametrize(
    "settings_",
    [{"human_floor": 0}, {"min_run": 2}, {"min_sequence": 1}, {"max_token_share": 2},
     {"session_gap": -5}],
)  # fmt: skip
def test_bad_settings_are_refused(settings_: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ReportAutomation(**settings_)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), tools=st.integers(0, 3), people=st.integers(0, 4))
def test_row_order_does_not_matter_and_scores_stay_in_the_unit_interval(
    seed: int, tools: int, people: int
) -> None:
    rows = _brigade(seed, tools=tools, people=people, organic=8)
    with duckdb.connect() as con:
        make_case(con, reports=rows)
        first = signals(ReportAutomation().detect(con, "actions"))
        make_case(con, reports=random.Random(seed).sample(rows, len(rows)))
        assert signals(ReportAutomation().detect(con, "actions")) == first
    assert all(0.0 <= r["score"] <= 1.0 for r in first)
