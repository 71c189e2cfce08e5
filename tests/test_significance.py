"""The null models and the false-discovery control."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from concerted.detectors.coaction import CoAction, Pairs, pair_keys, pair_weight_counts
from concerted.errors import ConfigError
from concerted.significance import (
    Significance,
    benjamini_hochberg,
    null_actions,
    relabelled_rows,
)
from tests.planted import actions_table as _table
from tests.planted import planted_actions as planted


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
    tested, notes = test.test(con, "e", counts)
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
    tested, _ = test.test(con, "e", counts)
    significant = tested.filter("significant").project("account_1, account_2").fetchall()
    assert {a for pair in significant for a in pair} == {f"m{i}" for i in range(8)}


def test_heavier_pairs_are_never_less_significant(con: duckdb.DuckDBPyConnection) -> None:
    detector = CoAction(window=3600)
    test = Significance(replicates=2)
    con.execute(f"CREATE TABLE e AS {detector.detect(con, 'a').edges.sql_query()}")
    tested, _ = test.test(con, "e", test.null_weights(con, "a", detector))
    by_weight = tested.aggregate("weight, max(q_value) AS q", "weight").order("weight").fetchall()
    qs = [q for _, q in by_weight]
    assert qs == sorted(qs, reverse=True)


def test_nothing_to_test(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE e AS {CoAction().detect(con, 'a').edges.sql_query()} LIMIT 0")
    tested, notes = Significance().test(con, "e", np.zeros(2, dtype=np.int64))
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
    "settings", [{"null": "permute"}, {"replicates": 0}, {"fdr": 0}, {"fdr": 1.5}]
)
def test_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Significance(**settings)  # type: ignore[arg-type]
