"""The null models and the false-discovery control."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from concerted.detectors.coaction import CoAction
from concerted.detectors.pairing import Pairs, pair_keys, pair_weight_counts
from concerted.errors import ConfigError
from concerted.significance import (
    Significance,
    benjamini_hochberg,
    null_actions,
    relabelled_rows,
    truncated_poisson_sf,
)
from concerted.testing.planted import actions_table as _table
from concerted.testing.planted import planted_actions as planted


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    _table(connection, "a", planted(seed=11, organic=300)[0])
    yield connection
    connection.close()


def _sorted(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[object, ...]]:
    return con.sql(query + " ORDER BY ALL").fetchall()


def test_relabel_keeps_each_accounts_posts_and_each_posts_actions(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # One post with a link and its domain: they must move together.
    con.execute(
        "INSERT INTO a SELECT 'o1', 'facebook', kind, object_id, ts, 'two-kinds' FROM (VALUES "
        "('share_url', 'x.example/1'), ('share_domain', 'x.example')) v(kind, object_id), "
        "(SELECT min(ts) AS ts FROM a)"
    )
    q = null_actions("a", null="relabel", seed=3)
    posts = "SELECT actor_id, count(DISTINCT source_id) FROM {} GROUP BY ALL"
    by_object = "SELECT kind, object_id, ts, source_id FROM {}"
    assert _sorted(con, posts.format(q)) == _sorted(con, posts.format("a"))
    assert _sorted(con, by_object.format(q)) == _sorted(con, by_object.format("a"))
    one_actor = con.sql(
        f"SELECT count(DISTINCT actor_id) FROM {q} WHERE source_id = 'two-kinds'"
    ).fetchone()
    assert one_actor == (1,)
    stayed = con.sql(f"SELECT count(*) FROM {q} JOIN a USING (source_id, actor_id)").fetchone()
    total = con.sql("SELECT count(*) FROM a").fetchone()
    assert stayed is not None and total is not None and stayed[0] < 0.2 * total[0]


def test_shift_keeps_each_accounts_objects_and_gaps(con: duckdb.DuckDBPyConnection) -> None:
    q = null_actions("a", null="shift", seed=3)
    objects = "SELECT actor_id, kind, object_id FROM {}"
    assert _sorted(con, objects.format(q)) == _sorted(con, objects.format("a"))
    span = (
        "SELECT min(ts) <= (SELECT min(ts) FROM {0}), max(ts) >= (SELECT max(ts) FROM {0}) FROM a"
    )
    assert con.sql(span.format(q)).fetchall() == [(True, True)]


def test_shuffle_keeps_who_acted_on_what_and_each_objects_times(
    con: duckdb.DuckDBPyConnection,
) -> None:
    q = null_actions("a", null="shuffle", seed=3)
    who = "SELECT actor_id, kind, object_id FROM {}"
    when = "SELECT kind, object_id, ts FROM {}"
    assert _sorted(con, who.format(q)) == _sorted(con, who.format("a"))
    assert _sorted(con, when.format(q)) == _sorted(con, when.format("a"))


@pytest.mark.parametrize("null", ["relabel", "shift", "shuffle"])
def test_a_replicate_is_the_same_for_the_same_seed(
    con: duckdb.DuckDBPyConnection, null: str
) -> None:
    one = _sorted(con, f"SELECT * FROM {null_actions('a', null=null, seed=5)}")
    two = _sorted(con, f"SELECT * FROM {null_actions('a', null=null, seed=5)}")
    other = _sorted(con, f"SELECT * FROM {null_actions('a', null=null, seed=6)}")
    assert one == two
    assert one != other


def test_the_planted_team_is_significant_and_no_one_else(con: duckdb.DuckDBPyConnection) -> None:
    detector = CoAction(window=60)
    test = Significance(replicates=3, fdr=0.01)
    counts = test.null_weights(con, "a", detector)
    evidence = detector.detect(con, "a")
    con.execute(f"CREATE TABLE e AS {evidence.edges.sql_query()}")
    result = test.test(con, "e", counts)
    tested, notes = result.edges, result.notes
    significant = tested.filter("significant").project("account_1, account_2").fetchall()
    members = {f"m{i}" for i in range(8)}
    assert {a for pair in significant for a in pair} == members
    pairs = con.sql("SELECT count(DISTINCT (account_1, account_2)) FROM e").fetchone()
    assert pairs is not None and notes["pairs_tested"] == pairs[0]
    rows = tested.project("weight, expected, p_value, q_value, significant").fetchall()
    for _, expected, p, q, flag in rows:
        assert expected >= 0 and 0 < p <= 1 and p <= q + 1e-12 and q <= 1
        assert flag == (q <= 0.01)


def _pairing(con: duckdb.DuckDBPyConnection, window: float = 60, min_objects: int = 1) -> Pairs:
    return pair_keys(con, "a", window=window, max_object_pairs=2_000_000, min_objects=min_objects)


def test_weight_counts_of_a_pairing_are_its_edges_weights(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """What the streamed count gives on the pairing's own rows is the histogram of the
    detector's pair weights (summed over layers), for every min_weight."""
    for min_weight in (1, 2, 3):
        detector = CoAction(window=60, min_weight=min_weight, max_object_pairs=2_000_000)
        edges = detector.detect(con, "a").edges.sql_query()
        expected = dict(
            con.sql(
                f"""SELECT w::BIGINT, count(*) FROM (SELECT sum(weight) AS w FROM ({edges})
                    GROUP BY platform_1, account_1, platform_2, account_2)
                    GROUP BY 1"""
            ).fetchall()
        )
        keys = _pairing(con, min_objects=min_weight)
        assert pair_weight_counts(con, keys, min_weight=min_weight) == expected
        assert sum(expected.values()) > 0


def test_relabelled_rows_keep_everything_but_the_account(con: duckdb.DuckDBPyConnection) -> None:
    keys = _pairing(con)
    copy = relabelled_rows(con, keys.rows, seed=3)
    kept = "SELECT rid, kid, oid, t, b FROM {}"
    assert _sorted(con, kept.format(copy)) == _sorted(con, kept.format(keys.rows))
    per_account = "SELECT aid, count(*) FROM {} GROUP BY aid"
    assert _sorted(con, per_account.format(copy)) == _sorted(con, per_account.format(keys.rows))
    # Each account keeps its platform; few rows keep their account.
    moved = con.sql(
        f"""SELECT count(*) FILTER (WHERE u.platform <> v.platform),
                   count(*) FILTER (WHERE x.aid = y.aid), count(*)
            FROM {copy} x JOIN {keys.rows} y USING (rid)
            JOIN {keys.accounts} u ON u.aid = x.aid JOIN {keys.accounts} v ON v.aid = y.aid"""
    ).fetchone()
    assert moved is not None and moved[0] == 0 and moved[1] < 0.2 * moved[2]
    again = relabelled_rows(con, keys.rows, seed=3)
    assert _sorted(con, f"SELECT * FROM {again}") == _sorted(con, f"SELECT * FROM {copy}")


@pytest.mark.parametrize("null", ["shift", "shuffle"])
def test_null_weights_of_a_pairing_match_the_detectors_own(
    con: duckdb.DuckDBPyConnection, null: str
) -> None:
    """Nulls other than relabel are made of the pairing's actions: the same copies as
    the detector's own run on them, so the same counts."""
    detector = CoAction(window=60, min_weight=2, max_object_pairs=2_000_000)
    test = Significance(null=null, replicates=2)
    by_detector = test.null_weights(con, "a", detector)
    by_pairing = test.null_weights_of_pairing(con, _pairing(con, min_objects=2), min_weight=2)
    size = max(by_detector.size, by_pairing.size)
    assert np.array_equal(
        np.pad(by_detector, (0, size - by_detector.size)),
        np.pad(by_pairing, (0, size - by_pairing.size)),
    )


def test_the_planted_team_is_significant_against_its_pairings_relabelled_copies(
    con: duckdb.DuckDBPyConnection,
) -> None:
    detector = CoAction(window=60, max_object_pairs=2_000_000)
    test = Significance(replicates=3, fdr=0.01)
    counts = test.null_weights_of_pairing(con, _pairing(con), min_weight=1)
    con.execute(f"CREATE TABLE e AS {detector.detect(con, 'a').edges.sql_query()}")
    tested = test.test(con, "e", counts).edges
    significant = tested.filter("significant").project("account_1, account_2").fetchall()
    assert {a for pair in significant for a in pair} == {f"m{i}" for i in range(8)}


def test_heavier_pairs_are_never_less_significant(con: duckdb.DuckDBPyConnection) -> None:
    detector = CoAction(window=3600)
    test = Significance(replicates=2)
    con.execute(f"CREATE TABLE e AS {detector.detect(con, 'a').edges.sql_query()}")
    tested = test.test(con, "e", test.null_weights(con, "a", detector)).edges
    by_weight = tested.aggregate("weight, max(q_value) AS q", "weight").order("weight").fetchall()
    qs = [q for _, q in by_weight]
    assert qs == sorted(qs, reverse=True)


def test_nothing_to_test(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE e AS {CoAction().detect(con, 'a').edges.sql_query()} LIMIT 0")
    result = Significance().test(con, "e", np.zeros(2, dtype=np.int64))
    tested, notes = result.edges, result.notes
    assert tested.fetchall() == []
    assert notes["pairs_significant"] == 0 and notes["min_significant_weight"] is None


@given(st.lists(st.floats(0, 1), max_size=50))
def test_bh_q_values_bound_their_p_values(p: list[float]) -> None:
    q = benjamini_hochberg(p)
    assert q.shape == (len(p),)
    assert np.all(q >= np.asarray(p) - 1e-12) and np.all(q <= 1)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-12)


@pytest.mark.parametrize(
    "settings",
    [
        {"null": "permute"},
        {"replicates": 0},
        {"fdr": 0},
        {"fdr": 1.5},
        {"copies": "stratified"},
        {"stratum": 0},
    ],
)
def test_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Significance(**settings)  # type: ignore[arg-type]


def _stratified(
    con: duckdb.DuckDBPyConnection, actions: str = "a", test: Significance | None = None
) -> tuple[duckdb.DuckDBPyRelation, dict[str, object]]:
    detector = CoAction(window=60)
    evidence = detector.detect(con, actions)
    con.execute(f"CREATE OR REPLACE TABLE e AS {evidence.edges.sql_query()}")
    con.execute(f"CREATE OR REPLACE TABLE ev AS {evidence.events.sql_query()}")
    tested = (test or Significance()).test_stratified(con, "e", "ev", actions)
    return tested.edges, tested.notes


def test_stratified_finds_the_planted_team_and_no_one_else(
    con: duckdb.DuckDBPyConnection,
) -> None:
    tested, notes = _stratified(con)
    significant = set(tested.filter("significant").project("account_1, account_2").fetchall())
    assert {a for pair in significant for a in pair} == {f"m{i}" for i in range(8)}
    assert len(significant) == 28  # every pair of the eight
    assert notes["null"] == "stratified" and notes["pairs_significant"] == 28
    for _, expected, p, q, flag in tested.project(
        "weight, expected, p_value, q_value, significant"
    ).fetchall():
        assert expected > 0 and 0 <= p <= 1 and p <= q + 1e-12 and q <= 1
        assert flag == (q <= 0.01)


def test_stratified_expects_each_strata_meetings_in_all(con: duckdb.DuckDBPyConnection) -> None:
    # Over every pair that could meet, the expectations add up to the meetings seen;
    # over the pairs that did meet, to no more than that.
    tested, notes = _stratified(con)
    assert notes["expected_weight"] <= notes["observed_weight"] + 1e-9  # type: ignore[operator]
    by_weight = notes["by_weight"]
    assert (
        isinstance(by_weight, list) and by_weight[0]["observed_at_least"] == notes["pairs_tested"]
    )


def test_accounts_never_active_on_the_same_day_expect_little(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # Two light accounts meeting twice on two quiet days are rare; the same two meetings
    # between two accounts that post all day, every day, are not.
    con.execute("CREATE TABLE q AS SELECT * FROM a WHERE false")
    rows = []
    for day in range(20):
        for i in range(30):
            at = f"TIMESTAMPTZ '2020-03-{day + 1:02d} 00:00:00+00' + INTERVAL ({i * 2000}) SECOND"
            for heavy in ("h1", "h2"):
                rows.append(
                    f"('{heavy}', 'x', 'repost', 'o{day}-{i}-{heavy}', {at}, '{heavy}-{day}-{i}')"
                )
    for day, obj in ((3, "shared-1"), (9, "shared-2")):
        at = f"TIMESTAMPTZ '2020-03-{day + 1:02d} 12:00:00+00'"
        rows.append(f"('l1', 'x', 'repost', '{obj}', {at}, 'l1-{obj}')")
        rows.append(f"('l2', 'x', 'repost', '{obj}', {at} + INTERVAL 5 SECOND, 'l2-{obj}')")
        rows.append(f"('h1', 'x', 'repost', 'h-{obj}', {at}, 'h1-{obj}')")
        rows.append(f"('h2', 'x', 'repost', 'h-{obj}', {at} + INTERVAL 5 SECOND, 'h2-{obj}')")
    # Everyone else: background meetings on every day, so that each day has a rate.
    for day in range(20):
        for k in range(40):
            at = f"TIMESTAMPTZ '2020-03-{day + 1:02d} 06:00:00+00' + INTERVAL ({k * 500}) SECOND"
            rows.append(f"('b{k}', 'x', 'repost', 'bg-{day}-{k}', {at}, 'b{k}-{day}')")
            rows.append(
                f"('c{k}', 'x', 'repost', 'bg-{day}-{k}', {at} + INTERVAL 1 SECOND, 'c{k}-{day}')"
            )
    con.execute(f"INSERT INTO q VALUES {', '.join(rows)}")
    tested, _ = _stratified(con, "q")
    got = {
        (a, b): (e, p)
        for a, b, e, p in tested.project("account_1, account_2, expected, p_value").fetchall()
    }
    light, busy = got[("l1", "l2")], got[("h1", "h2")]
    assert light[0] < busy[0] / 100
    assert light[1] < 0.01 < busy[1]


def test_stratified_needs_no_copies_for_a_small_p_value(con: duckdb.DuckDBPyConnection) -> None:
    tested, _ = _stratified(con)
    smallest = tested.aggregate("min(p_value)").fetchone()
    # Three randomised copies could never give less than about 1 / (chance pairs + 1).
    assert smallest is not None and smallest[0] < 1e-9


def test_a_pair_that_met_once_is_never_significant(con: duckdb.DuckDBPyConnection) -> None:
    tested, _ = _stratified(con)
    con.register("tested", tested)
    once = con.sql(
        """SELECT t.p_value FROM tested t SEMI JOIN (
               SELECT account_1, account_2 FROM ev GROUP BY ALL HAVING count(*) = 1) o
           USING (account_1, account_2)"""
    ).fetchall()
    assert once and all(p == 1.0 for (p,) in once)


@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=30),
    st.lists(st.floats(1e-9, 30), min_size=1, max_size=30),
)
def test_the_truncated_poisson_tail_is_a_probability_that_falls_with_weight(
    weights: list[int], means: list[float]
) -> None:
    n = min(len(weights), len(means))
    w, lam = np.asarray(weights[:n], dtype=float), np.asarray(means[:n])
    p = truncated_poisson_sf(w, lam)
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(truncated_poisson_sf(w + 1, lam) <= p + 1e-12)
    assert np.all(truncated_poisson_sf(np.ones(n), lam) == 1.0)


def test_the_truncated_poisson_tail_matches_scipy() -> None:
    from scipy import stats

    lam = np.array([0.01, 0.5, 3.0, 12.0])
    for w in (2, 3, 7):
        want = stats.poisson.sf(w - 1, lam) / stats.poisson.sf(0, lam)
        assert np.allclose(truncated_poisson_sf(np.full(4, w), lam), want, rtol=1e-9)


@given(
    st.lists(st.one_of(st.integers(1, 60), st.integers(61, 3000)), min_size=1, max_size=40),
    st.lists(
        st.one_of(st.just(0.0), st.floats(1e-15, 1e-3), st.floats(1e-3, 800)),
        min_size=1,
        max_size=40,
    ),
)
def test_the_notes_expect_per_weight_what_each_pairs_tail_sums_to(
    weights: list[int], means: list[float]
) -> None:
    """The notes' expected pairs per weight, from one tail and the Poisson terms below
    it, are the sums of every pair's own tail at that weight."""
    n = min(len(weights), len(means))
    w, lam = np.asarray(weights[:n], dtype=float), np.asarray(means[:n])
    p = truncated_poisson_sf(w, lam)
    notes = Significance()._stratified_notes(w, lam, p, benjamini_hochberg(p))
    by_weight = notes["by_weight"]
    assert isinstance(by_weight, list) and [r["weight"] for r in by_weight] == sorted(
        set(weights[:n])
    )
    for row in by_weight:
        plain = truncated_poisson_sf(np.full(n, float(row["weight"])), lam).sum()
        assert row["expected_at_least"] == pytest.approx(plain, rel=1e-12, abs=1e-300)


def test_the_monte_carlo_copies_of_the_analytic_default_are_relabelled() -> None:
    assert Significance().monte_carlo().null == "relabel"
    assert Significance(copies="shift").monte_carlo().null == "shift"
    assert Significance(null="shuffle").monte_carlo().null == "shuffle"
