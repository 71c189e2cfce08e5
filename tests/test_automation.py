"""S7, report automation: tools told from people by gaps, regularity, channel, order
and client."""

from __future__ import annotations

import math
import random
from typing import Any
from unittest import mock

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors import automation
from concerted.detectors.automation import ReportAutomation
from concerted.detectors.columnar import as_signals
from concerted.errors import ConfigError
from concerted.schema import sql_literal
from tests.budget import examples
from tests.test_report_content import (
    at,
    by_id,
    make_case,
    ranked_times,
    rows_as_signals,
    same_signals,
    signals,
)

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


@settings(max_examples=examples(20), deadline=None)
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


def reference(detector: ReportAutomation, con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The layers as plain SQL defines them (windows over every reporter's reports, the
    clients of every report), to hold the detector's numpy timeline and client codes to.
    The queries that read the intermediate tables are the detector's own."""
    d = detector
    channels = ", ".join(sql_literal(c) for c in d.direct_channels) or "NULL"
    w = max(1, round(d.fingerprint_window * 1_000_000))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ref_timeline AS
        WITH r AS (
            SELECT platform, reporter_id, report_id, target_id, ts, epoch_us(ts) AS t
            FROM reports
            SEMI JOIN (SELECT platform, reporter_id FROM reports GROUP BY ALL
                       HAVING count(*) >= 2) USING (platform, reporter_id)),
        g AS (
            SELECT *, t - lag(t) OVER w AS gap_us, (t - lag(t) OVER w) / 1000000.0 AS gap
            FROM r WINDOW w AS (PARTITION BY platform, reporter_id ORDER BY t, report_id))
        SELECT *, sum(CASE WHEN gap IS NULL OR gap > {d.session_gap} THEN 1 ELSE 0 END)
                  OVER (PARTITION BY platform, reporter_id ORDER BY t, report_id
                        ROWS UNBOUNDED PRECEDING) AS session,
               1.0 / (1.0 + pow(gap / {d.human_floor}, 4)) AS quick
        FROM g;

        CREATE OR REPLACE TEMP TABLE ref_sessions AS
        SELECT platform, reporter_id, session, count(*) AS reports, min(ts) AS first_ts,
               max(ts) AS last_ts
        FROM ref_timeline GROUP BY ALL;

        CREATE OR REPLACE TEMP TABLE ref_spread AS
        WITH g AS (
            SELECT platform, reporter_id, session, gap_us FROM ref_timeline
            SEMI JOIN (SELECT platform, reporter_id, session FROM ref_sessions
                       WHERE reports >= {d.min_run}) USING (platform, reporter_id, session)
            WHERE gap <= {d.session_gap}),
        m AS (SELECT platform, reporter_id, session, median(gap_us) AS med FROM g GROUP BY ALL),
        x AS (SELECT platform, reporter_id, session, any_value(m.med) AS med,
                     median(abs(g.gap_us - m.med)) AS mad
              FROM g JOIN m USING (platform, reporter_id, session) GROUP BY ALL)
        SELECT s.*, x.med / 1000000 AS median_gap,
               CASE WHEN x.med > 0 THEN 1.4826 * x.mad / x.med WHEN x.mad = 0 THEN 0.0
                    ELSE 'infinity'::DOUBLE END AS cv
        FROM ref_sessions s JOIN x USING (platform, reporter_id, session);

        CREATE OR REPLACE TEMP TABLE ref_sequences AS
        SELECT platform, reporter_id, session,
               md5(string_agg(target_id, chr(31) ORDER BY t, report_id)) AS sequence
        FROM ref_timeline
        SEMI JOIN (SELECT platform, reporter_id, session FROM ref_sessions
                   WHERE reports >= {d.min_sequence}) USING (platform, reporter_id, session)
        GROUP BY ALL;

        CREATE OR REPLACE TEMP TABLE ref_shared AS
        SELECT platform, sequence, count(DISTINCT reporter_id) AS k FROM ref_sequences
        GROUP BY ALL HAVING count(DISTINCT reporter_id) >= 2;

        CREATE OR REPLACE TEMP TABLE ref_reports AS
        SELECT platform, reporter_id, report_id, target_id, ts,
               coalesce(lower(channel) IN ({channels}), false) AS direct
        FROM reports;

        CREATE OR REPLACE TEMP TABLE ref_per AS
        SELECT platform, reporter_id, count(*) AS n, count(*) FILTER (direct) AS d,
               min(ts) AS first_ts, max(ts) AS last_ts
        FROM ref_reports GROUP BY ALL;

        CREATE OR REPLACE TEMP TABLE ref_base AS
        SELECT platform, sum(CAST(d / n AS DECIMAL(38, 18)))::DOUBLE / count(*) AS p0
        FROM ref_per GROUP BY ALL;

        CREATE OR REPLACE TEMP TABLE ref_tokens AS
        WITH clients AS (
            SELECT DISTINCT platform, reporter_id, client FROM reports
            WHERE client IS NOT NULL AND trim(client) <> ''),
        split AS (
            SELECT DISTINCT platform, client, token FROM (
                SELECT platform, client,
                       unnest(list_append(string_split_regex(lower(client), '[\\s;()\\[\\],]+'),
                                          '=' || lower(trim(client)))) AS token
                FROM (SELECT DISTINCT platform, client FROM clients))
            WHERE token <> '' AND token <> '='),
        carried AS (
            SELECT DISTINCT c.platform, c.reporter_id, s.token
            FROM clients c JOIN split s USING (platform, client)),
        n AS (SELECT platform, count(DISTINCT reporter_id) AS n FROM clients GROUP BY ALL),
        r AS (SELECT platform, token, count(*) AS r FROM carried GROUP BY ALL),
        rare AS (
            SELECT r.platform, r.token, r.r, n.n FROM r JOIN n USING (platform)
            WHERE r.r >= 2
              AND r.r <= greatest({d.max_token_share} * n.n, {automation._ALWAYS_EXAMINED})),
        marked AS (SELECT s.platform, s.client, s.token FROM split s
                   SEMI JOIN rare x USING (platform, token)),
        acts AS (
            SELECT DISTINCT t.platform, m.token, t.reporter_id, t.target_id, epoch_us(t.ts) AS t
            FROM reports t JOIN marked m ON m.platform = t.platform AND m.client = t.client),
        together AS (
            SELECT DISTINCT x.platform, x.token, x.reporter_id
            FROM acts x JOIN acts y ON y.platform = x.platform AND y.token = x.token
             AND y.target_id = x.target_id
            WHERE y.reporter_id <> x.reporter_id AND abs(y.t - x.t) <= {w}),
        b AS (SELECT platform, token, count(*) AS b FROM together GROUP BY ALL)
        SELECT rare.platform, rare.token, rare.r, rare.n, b.b,
               (b.b / rare.r) * (1.0 - 1.0 / b.b) * (1.0 - rare.r / rare.n) AS score
        FROM rare JOIN b USING (platform, token) WHERE b.b >= 2;

        CREATE OR REPLACE TEMP TABLE ref_carriers AS
        SELECT s.platform, s.client, k.token, k.r, k.n, k.b, k.score
        FROM (SELECT DISTINCT platform, client FROM reports WHERE client IS NOT NULL) s
        JOIN ref_tokens k ON k.platform = s.platform
         AND (list_contains(string_split_regex(lower(s.client), '[\\s;()\\[\\],]+'), k.token)
              OR k.token = '=' || lower(trim(s.client)))
        QUALIFY row_number() OVER (PARTITION BY s.platform, s.client
                                   ORDER BY k.score DESC, k.token) = 1
        """
    )
    name = sql_literal(d.name)
    queries = [
        *d._gaps("ref_timeline", name),
        *d._clockwork("ref_timeline", "ref_spread", name),
        *d._pace("ref_timeline", "ref_spread", name),
        *d._direct("ref_reports", "(SELECT * FROM ref_per WHERE d > 0)", "ref_base", name),
        *d._sequences("ref_timeline", "ref_sessions", "ref_sequences", "ref_shared", name),
        *d._fingerprint_queries("ref_carriers", name),
    ]
    return rows_as_signals(con, as_signals(con, queries).sql_query())


MARKED = "Mozilla/5.0 (Linux; Android 10) Chrome/83.0 MassFlag/1.2"


@st.composite
def sessions(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Reporters on two platforms filing short lists of few targets seconds apart (some
    at the same instant), with breaks, through a few channels and clients."""
    rows: list[dict[str, Any]] = []
    for r in range(draw(st.integers(0, 8))):
        platform = draw(st.sampled_from(("facebook", "facebook", "instagram")))
        client = draw(st.sampled_from((None, "  ", APP, MARKED, *BROWSERS)))
        t = float(draw(st.integers(0, 4)) * 3000)
        for _ in range(draw(st.integers(1, 9))):
            t += draw(st.sampled_from((0, 1, 3, 3, 3, 7, 12, 15, 16, 40, 2000)))
            rows.append(
                {"report_id": f"x{draw(st.integers(0, 999))}-{len(rows)}",
                 "reporter_id": f"u{r}", "target_id": draw(st.sampled_from(TARGETS[:4])),
                 "ts": at(t), "platform": platform, "client": client,
                 "channel": draw(st.sampled_from((None, "app", "Direct_Link")))}
            )  # fmt: skip
    return rows


@settings(max_examples=examples(60), deadline=None)
@given(
    rows=sessions(),
    ranked=st.booleans(),
    hashed=st.booleans(),
    floor=st.sampled_from((1, 20)),
    share=st.sampled_from((0.01, 0.3)),
)
def test_the_layers_are_what_the_sql_definition_gives(
    rows: list[dict[str, Any]], ranked: bool, hashed: bool, floor: int, share: float
) -> None:
    """The numpy timeline and client codes give, row for row, what windows over every
    reporter's reports and the clients of every report give: with times packed as
    offsets or ranks, clients found by hash or by text, tokens settled by their bounds
    or counted."""
    detector = ReportAutomation(min_run=3, min_sequence=3, max_token_share=share)
    with (
        duckdb.connect() as con,
        ranked_times(ranked),
        mock.patch.object(automation, "_ALWAYS_EXAMINED", floor),
        mock.patch.object(automation, "_one_to_one", lambda *_: hashed),
    ):
        con.execute("SET TimeZone = 'UTC'")
        make_case(con, reports=rows)
        same_signals(signals(detector.detect(con, "actions")), reference(detector, con))


def test_a_tool_that_hides_its_clockwork_keeps_its_pace(con: duckdb.DuckDBPyConnection) -> None:
    # 2 to 8 s apart at random, the common desktop client, no mark: not clockwork, not
    # always under the human floor, but a pace over the whole list no person keeps.
    rnd = random.Random(3)
    rows: list[dict[str, Any]] = []
    for k in range(3):
        t = 600.0 * (k + 1)
        for target in TARGETS:
            rows.append({"report_id": f"tool{k}-{target}", "reporter_id": f"tool{k}",
                         "target_id": target, "ts": at(t), "channel": "direct_link",
                         "client": BROWSERS[1]})  # fmt: skip
            t += rnd.uniform(2, 8)
    for k in range(6):
        t = rnd.uniform(600, 5400)
        for i, target in enumerate(rnd.sample(TARGETS, 10)):
            rows.append({"report_id": f"person{k}-{target}", "reporter_id": f"person{k}",
                         "target_id": target, "ts": at(t), "channel": "app",
                         "client": BROWSERS[1]})  # fmt: skip
            # One quick pair of reports each: it happens to people.
            t += 3.0 if i == 0 else rnd.lognormvariate(math.log(40), 0.7)
    make_case(con, reports=rows)
    found = by_id(signals(ReportAutomation().detect(con, "actions"), "sustained_pace"), "account")
    tools = [found[f"tool{k}"]["score"] for k in range(3)]
    people = [found.get(f"person{k}", {"score": 0.0})["score"] for k in range(6)]
    assert min(tools) > 0.8 and max(people) < 0.05
    clockwork = by_id(signals(ReportAutomation().detect(con, "actions"), "clockwork"), "account")
    assert max(clockwork[f"tool{k}"]["score"] for k in range(3)) < 0.6
