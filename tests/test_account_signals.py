"""Account signals: creation bursts, shared admins, handle patterns, one name on two
platforms."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import pdtrc

from concerted.detectors import accounts as accounts_module
from concerted.detectors.accounts import (
    CreationBurst,
    CrossPlatformName,
    HandlePattern,
    SharedAdmins,
)
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS, INPUT_TABLES
from concerted.testing.planted import ACTION_COLUMNS, insert_rows
from tests.budget import examples

START = datetime(2020, 6, 1, tzinfo=UTC)


def _case(
    con: duckdb.DuckDBPyConnection,
    *,
    accounts: list[dict[str, Any]] | None = None,
    roles: list[dict[str, Any]] | None = None,
    actions: list[tuple[str, str, str, str, datetime, str]] | None = None,
) -> None:
    """The case tables, empty but for the rows given."""
    given = {"accounts": accounts or [], "roles": roles or []}
    for name in (*INPUT_TABLES, "actions"):
        contract = CONTRACTS[name]
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(contract.ddl())
        rows = given.get(name, [])
        columns = [c for c in contract.names if c != "extra"]
        insert_rows(con, name, columns, [tuple(r.get(c) for c in columns) for r in rows])
    insert_rows(con, "actions", ACTION_COLUMNS, actions or [])


def _account(id_: str, created: datetime | None, **values: Any) -> dict[str, Any]:
    row = {"account_id": id_, "platform": "facebook", "kind": "user", "created_at": created}
    return row | values


# -- creation bursts


def _burst_case(con: duckdb.DuckDBPyConnection, shuffle: bool = False) -> None:
    rnd = random.Random(1)
    accounts = [
        _account(f"o{i}", START - timedelta(days=400) + timedelta(hours=37 * i)) for i in range(300)
    ]
    made = START - timedelta(days=200, hours=5)
    accounts += [_account(f"f{i}", made + timedelta(minutes=15 * i)) for i in range(8)]
    actions = []
    for i in range(4):  # four of the eight act together; the rest act alone
        actions.append((f"f{i}", "facebook", "repost", "p1", START + timedelta(minutes=i), f"s{i}"))
    for i in range(4, 8):
        actions.append((f"f{i}", "facebook", "repost", f"q{i}", START, f"t{i}"))
    # An organic account created long before acts on the same post.
    actions.append(("o5", "facebook", "repost", "p1", START, "u5"))
    if shuffle:
        rnd.shuffle(accounts)
        rnd.shuffle(actions)
    _case(con, accounts=accounts, actions=actions)


def test_creation_burst_flags_the_burst_and_pairs_those_who_act_together(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _burst_case(con)
    evidence = CreationBurst().detect(con, "actions")
    signals = evidence.signals.project("id, value, score, related_id").fetchall()
    assert {s[0] for s in signals} == {f"f{i}" for i in range(8)}
    assert {s[1] for s in signals} == {8.0}
    assert len({s[3] for s in signals}) == 1
    assert all(0.5 < s[2] <= 1 for s in signals)
    edges = evidence.edges.project("account_1, account_2, weight").fetchall()
    assert sorted(edges) == [(f"f{i}", f"f{j}", 1.0) for i in range(4) for j in range(i + 1, 4)]
    assert {r[0] for r in evidence.events.project("object_id").fetchall()} == {"p1"}


def _plain_bursts(
    accounts: list[dict[str, Any]], detector: CreationBurst
) -> dict[tuple[str, str], float]:
    """The burst accounts and their scores, counted one account at a time in Python."""
    w = round(detector.window_hours * 3600 * 1_000_000)
    b = round(detector.baseline_days * 86400 * 1_000_000)
    times: dict[str, list[tuple[str, int]]] = {}
    for a in accounts:
        if a["created_at"] is not None:
            t = (a["created_at"] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            times.setdefault(a["platform"], []).append((a["account_id"], t))
    out: dict[tuple[str, str], float] = {}
    for platform, held in times.items():
        for account, t in held:
            k = sum(abs(u - t) <= w for _, u in held)
            base = sum(abs(u - t) <= b for _, u in held)
            if k < detector.min_burst:
                continue
            expected = (base - k + 1) * (2 * w) / (2 * b - 2 * w)
            if pdtrc(k - 1, expected) <= detector.burst_alpha / len(held):
                out[(platform, account)] = max(0.0, 1.0 - expected / k)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch", [3, 1 << 17])
def test_creation_burst_read_in_batches_finds_what_each_account_counted_finds(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, seed: int, batch: int
) -> None:
    """The accounts' windows are read in batches: at any batch size, the bursts and
    their scores are those counted account by account."""
    rnd = random.Random(seed)
    accounts = []
    for platform in ("facebook", "instagram"):
        for i in range(rnd.randrange(150, 300)):
            at = START - timedelta(days=400, minutes=rnd.randrange(400 * 24 * 60))
            accounts.append(_account(f"o{i}", at, platform=platform))
        for j in range(rnd.randrange(1, 4)):
            made = START - timedelta(days=rnd.randrange(20, 380))
            for i in range(rnd.randrange(5, 14)):
                at = made + timedelta(minutes=rnd.randrange(300))
                accounts.append(_account(f"b{j}-{i}", at, platform=platform))
        accounts.append(_account("no-date", None, platform=platform))
    _case(con, accounts=accounts)
    monkeypatch.setattr(accounts_module, "_BURST_BATCH", batch)
    detector = CreationBurst()
    found = detector.detect(con, "actions").signals.project("platform, id, score").fetchall()
    want = _plain_bursts(accounts, detector)
    assert want, "some planted burst is found"
    assert {(p, i) for p, i, _ in found} == set(want)
    for platform, id_, score in found:
        assert score == pytest.approx(want[(platform, id_)], rel=1e-12, abs=1e-12)


def test_creation_burst_needs_a_baseline_to_beat(con: duckdb.DuckDBPyConnection) -> None:
    # The same eight accounts among a crowd created at the same pace: no burst.
    accounts = [
        _account(f"o{i}", START - timedelta(days=200, hours=5) + timedelta(minutes=15 * i))
        for i in range(-2000, 2000)
    ]
    _case(con, accounts=accounts)
    assert CreationBurst().detect(con, "actions").signals.fetchall() == []


def test_creation_burst_is_order_free(con: duckdb.DuckDBPyConnection) -> None:
    _burst_case(con)
    first = CreationBurst().detect(con, "actions")
    one = (sorted(first.edges.fetchall()), sorted(first.signals.fetchall()))
    other = duckdb.connect()
    _burst_case(other, shuffle=True)
    second = CreationBurst().detect(other, "actions")
    assert (sorted(second.edges.fetchall()), sorted(second.signals.fetchall())) == one
    other.close()


# -- shared admins


def _roles(*rows: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [
        {
            "account_id": who,
            "venue_id": venue,
            "role": role,
            "since": START + timedelta(days=i),
            "platform": "facebook",
        }
        for i, (who, venue, role) in enumerate(rows)
    ]


ROLES = _roles(
    ("x", "p1", "admin"),
    ("x", "p2", "admin"),
    ("x", "p3", "admin"),
    ("y", "p1", "admin"),
    ("y", "p2", "moderator"),
    ("z", "g1", "moderator"),
    ("z", "p3", "admin"),
    ("w", "p1", "member"),
    ("w", "p2", "member"),
)


def test_shared_admins_pairs_venues_by_their_admins(con: duckdb.DuckDBPyConnection) -> None:
    venues = [_account(v, None, kind="page") for v in ("p1", "p2", "p3")]
    _case(con, accounts=[*venues, _account("g1", None, kind="group")], roles=ROLES)
    evidence = SharedAdmins().detect(con, "actions")
    edges = evidence.edges.project("account_1, account_2, weight, score").order("ALL").fetchall()
    assert edges == [
        ("g1", "p3", 1.0, pytest.approx(1 / 2)),
        ("p1", "p2", 2.0, 1.0),
        ("p1", "p3", 1.0, pytest.approx(1 / 3)),
        ("p2", "p3", 1.0, pytest.approx(1 / 3)),
    ]
    admins = evidence.events.project("account_1, account_2, object_id").order("ALL").fetchall()
    assert ("p1", "p2", "x") in admins and ("p1", "p2", "y") in admins
    assert not any(a == "w" for _, _, a in admins)
    signals = evidence.signals.project("id, value, detail").order("id").fetchall()
    assert [(s[0], s[1]) for s in signals] == [("x", 3.0), ("y", 2.0), ("z", 2.0)]
    assert signals[2][2] == "admin or moderator of 2 facebook venues (1 group, 1 page)"


def test_shared_admins_caps_accounts_running_many_venues(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _case(con, roles=ROLES)
    evidence = SharedAdmins(max_venues=2).detect(con, "actions")
    edges = evidence.edges.project("account_1, account_2, weight").order("ALL").fetchall()
    assert edges == [("g1", "p3", 1.0), ("p1", "p2", 1.0)]
    assert evidence.notes["accounts_over_cap"] == 1


def test_shared_admins_show_unknown_times_as_the_epoch(
    con: duckdb.DuckDBPyConnection,
) -> None:
    roles = _roles(("x", "p1", "admin"), ("x", "p2", "admin"))
    for r in roles:
        r["since"] = None
    _case(con, roles=roles)
    times = SharedAdmins().detect(con, "actions").events.project("ts_1, ts_2").fetchall()
    assert times == [(datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC))]


# -- handle patterns


HANDLES = {
    "h1": "ali_khan4821",
    "h2": "alikhan77",
    "h3": "ali.khan",
    "h4": "sara12",
    "h5": "bob",
    "h6": "x9",
    **{f"w{i}": f"watansipahi{1000 + 137 * i}" for i in range(4)},
}


def test_handle_pattern_finds_names_with_digit_runs(con: duckdb.DuckDBPyConnection) -> None:
    accounts = [_account(k, START, handle=h) for k, h in HANDLES.items()]
    _case(con, accounts=accounts)
    evidence = HandlePattern().detect(con, "actions")
    signals = dict(evidence.signals.project("id, value").fetchall())
    assert signals == {
        "h1": 4.0,
        "h2": 2.0,
        "h4": 2.0,
        **{f"w{i}": 4.0 for i in range(4)},
    }
    edges = evidence.edges.project("account_1, account_2, weight").order("ALL").fetchall()
    watan = [(f"w{i}", f"w{j}", 4.0) for i in range(4) for j in range(i + 1, 4)]
    assert edges == [("h1", "h2", 2.0), *watan]
    stems = {r[0] for r in evidence.events.project("object_id").fetchall()}
    assert stems == {"alikhan", "watansipahi"}
    # The stem held only with long runs is stronger than the one also held plain.
    score = dict(
        ((a, b), s) for a, b, s in evidence.edges.project("account_1, account_2, score").fetchall()
    )
    assert score[("w0", "w1")] > score[("h1", "h2")]


def test_handle_pattern_caps_large_stems(con: duckdb.DuckDBPyConnection) -> None:
    accounts = [_account(k, START, handle=h) for k, h in HANDLES.items()]
    _case(con, accounts=accounts)
    evidence = HandlePattern(max_stem=3).detect(con, "actions")
    assert evidence.edges.project("account_1, account_2").fetchall() == [("h1", "h2")]
    assert evidence.notes["stems_over_cap"] == 1
    assert evidence.notes["accounts_in_stems_over_cap"] == 4


# -- one name on two platforms


def _named(id_: str, platform: str, name: str, handle: str) -> dict[str, Any]:
    return _account(id_, START, platform=platform, name=name, handle=handle)


def test_cross_platform_ties_one_operators_accounts(con: duckdb.DuckDBPyConnection) -> None:
    accounts = [
        _named("fb1", "facebook", "Zarghun Wazir Khel", "zarghun.wazir4821"),
        _named("ig1", "instagram", "Zarghun Wazir Khel", "zarghun_wazir4821_official"),
        # A common name on both platforms, held by many.
        *[_named(f"fb-a{i}", "facebook", "Ahmed Khan", f"ahmed.khan{i}") for i in range(6)],
        *[_named(f"ig-a{i}", "instagram", "Ahmed Khan", f"ahmedkhan_{i}") for i in range(6)],
        # The same handle twice on one platform is not a cross-platform pair.
        _named("fb2", "facebook", "Someone Else", "zarghun.wazir4821"),
    ]
    _case(con, accounts=accounts)
    evidence = CrossPlatformName().detect(con, "actions")
    edges = evidence.edges.project(
        "platform_1, account_1, platform_2, account_2, weight, score"
    ).fetchall()
    best = {(r[1], r[3]): (r[4], r[5]) for r in edges}
    assert best[("fb1", "ig1")][0] == 2.0
    # The same handle twice on Facebook halves what it says about either holder.
    assert best[("fb2", "ig1")] == (1.0, 0.5)
    common = [score for (a, _), (_, score) in best.items() if a.startswith("fb-a")]
    assert common and max(common) < 0.2
    assert all(r[0] != r[2] for r in edges)
    kinds = {r[0] for r in evidence.events.project("object_id").fetchall()}
    assert kinds <= {"handle", "name"}
    assert evidence.notes["keys_over_cap"]["name"] == 1


def test_cross_platform_scores_specific_handles_above_common_names(
    con: duckdb.DuckDBPyConnection,
) -> None:
    accounts = [
        _named("fb1", "facebook", "Quiet Person", "rare.handle.5521"),
        _named("ig1", "instagram", "Loud Person", "rare_handle_5521"),
        _named("fb2", "facebook", "Ahmed Khan", "first.one"),
        _named("ig2", "instagram", "Ahmed Khan", "second.one"),
        *[_named(f"x{i}", "facebook", f"Ahmed {w}", f"x{i}") for i, w in enumerate("ABCDEFGH")],
        *[_named(f"y{i}", "facebook", f"{w} Khan", f"y{i}") for i, w in enumerate("ABCDEFGH")],
    ]
    _case(con, accounts=accounts)
    scores = dict(
        ((a, b), s)
        for a, b, s in CrossPlatformName()
        .detect(con, "actions")
        .edges.project("account_1, account_2, score")
        .fetchall()
    )
    assert scores[("fb1", "ig1")] == 1.0
    assert scores[("fb2", "ig2")] < 0.5


@settings(max_examples=examples(20), deadline=None)
@given(
    names=st.lists(
        st.tuples(st.sampled_from(["facebook", "instagram", "twitter"]), st.integers(0, 5)),
        max_size=30,
    ),
    seed=st.integers(0, 1000),
)
def test_cross_platform_pairs_are_across_platforms_and_order_free(
    names: list[tuple[str, int]], seed: int
) -> None:
    accounts = [
        _named(f"a{i}", platform, f"Name Number{n}", f"handle_{n}{n}{n}")
        for i, (platform, n) in enumerate(names)
    ]
    con = duckdb.connect()
    _case(con, accounts=accounts)
    first = sorted(CrossPlatformName().detect(con, "actions").edges.fetchall(), key=repr)
    for row in first:
        assert (row[2], row[3]) < (row[4], row[5]) and row[2] != row[4]
        assert 0 <= row[7] <= 1
    random.Random(seed).shuffle(accounts)
    _case(con, accounts=accounts)
    assert sorted(CrossPlatformName().detect(con, "actions").edges.fetchall(), key=repr) == first
    con.close()


# -- all four


@pytest.mark.parametrize(
    "detector", [CreationBurst(), SharedAdmins(), HandlePattern(), CrossPlatformName()]
)
def test_empty_tables_give_nothing(detector: Any, con: duckdb.DuckDBPyConnection) -> None:
    _case(con)
    evidence = detector.detect(con, "actions")
    for part in (evidence.edges, evidence.events, evidence.signals):
        assert part.fetchall() == []


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (CreationBurst, {"window_hours": 0}),
        (CreationBurst, {"baseline_days": 0.1}),
        (CreationBurst, {"min_burst": 1}),
        (CreationBurst, {"burst_alpha": 0}),
        (CreationBurst, {"min_shared": 0}),
        (SharedAdmins, {"roles": ()}),
        (SharedAdmins, {"max_venues": 1}),
        (HandlePattern, {"min_digits": 0}),
        (HandlePattern, {"max_stem": 1}),
        (CrossPlatformName, {"max_holders": 0}),
    ],
)
def test_bad_settings(cls: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        cls(**options)
