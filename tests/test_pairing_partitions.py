"""The pairing in hash partitions of its objects: the same pairs for any number of them."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from unittest import mock

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.analysis import analyze
from concerted.detectors import pairing, synchrony
from concerted.detectors.pairing import (
    memory_limit_bytes,
    merge_pair_counts,
    numbered_slots,
    partitions_for,
)
from concerted.detectors.synchrony import Synchrony
from concerted.errors import ConfigError
from concerted.store import Store
from concerted.testing.planted import ACTION_COLUMNS, insert_rows, planted_case
from tests.budget import examples
from tests.test_synchrony import messy_actions

_EDGE = (
    "platform_1, account_1, platform_2, account_2, weight, score, events, lead_1, lead_2, "
    "median_dt, first_ts, last_ts"
)


def _con(rows: list[tuple[object, ...]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "SET TimeZone = 'UTC'; CREATE TABLE a (actor_id VARCHAR, platform VARCHAR, "
        "kind VARCHAR, object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    insert_rows(con, "a", ACTION_COLUMNS, rows)
    return con


def _paired_actions(
    con: duckdb.DuckDBPyConnection, keys: pairing.Pairs
) -> Counter[tuple[object, ...]]:
    """Each pair of a pairing as the two actions it pairs, whatever their numbers."""
    sides = ", ".join(
        f"{side}.kind, {side}.object_id, {side}.platform, {side}.actor_id, {side}.ts, "
        f"{side}.source_id"
        for side in ("x", "y")
    )
    return Counter(
        con.sql(
            f"""SELECT {sides}, p.t_1, p.t_2 FROM {keys.pairs} p
                JOIN {keys.rows} x ON x.rid = p.r_1 JOIN {keys.rows} y ON y.rid = p.r_2
                JOIN {keys.accounts} u ON u.aid = p.a_1 AND u.actor_id = x.actor_id
                JOIN {keys.accounts} v ON v.aid = p.a_2 AND v.actor_id = y.actor_id"""
        ).fetchall()
    )


@settings(max_examples=examples(40), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    acts=st.integers(0, 150),
    objects=st.integers(1, 12),
    window=st.sampled_from([0, 7, 30, 60]),
    cap=st.sampled_from([None, 2, 40]),
    min_objects=st.integers(1, 3),
)
def test_pairs_left_as_a_query_are_the_pairs_stored(
    seed: int, acts: int, objects: int, window: int, cap: int | None, min_objects: int
) -> None:
    """A pairing that leaves its pairs as the query that makes them (synchrony's) reads
    the same pairs of actions as one that stores them, and holds no table of them: its
    tables dropped, nothing of it is left."""
    con = _con(messy_actions(random.Random(seed), acts, objects))
    stored, query = (
        pairing.pair_keys(
            con, "a", window=window, max_object_pairs=cap, min_objects=min_objects, stored=keep
        )
        for keep in (True, False)
    )
    assert stored.pairs in stored.tables and query.pairs not in query.tables
    made = _paired_actions(con, query)
    assert made == _paired_actions(con, stored)
    # Every pair is one pair of actions: none is lost to the joins above.
    assert con.sql(f"SELECT count(*) FROM {stored.pairs}").fetchone() == (made.total(),)
    for table in (*stored.tables, *query.tables):
        con.execute(f"DROP TABLE {table}")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    con.close()


@settings(max_examples=examples(40), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    acts=st.integers(0, 150),
    objects=st.integers(1, 12),
    parts=st.integers(2, 7),
    window=st.sampled_from([0, 7, 30, 60]),
    min_actions=st.integers(1, 5),
    min_weight=st.integers(2, 4),
    cap=st.sampled_from([None, 2, 40]),
)
def test_the_copies_weights_are_the_same_in_any_number_of_partitions(
    seed: int,
    acts: int,
    objects: int,
    parts: int,
    window: int,
    min_actions: int,
    min_weight: int,
    cap: int | None,
) -> None:
    """Synchrony's relabelled copies counted one partition of the objects at a time
    give, pair by pair and in the same order, the weights of one partition."""
    con = _con(messy_actions(random.Random(seed), acts, objects))
    detector = Synchrony(
        window=window, min_actions=min_actions, min_weight=min_weight, max_object_pairs=cap
    )
    seeds = [seed, seed + 1]
    one = detector.null_statistics_of_seeds(con, "a", seeds, partitions=1)
    many = detector.null_statistics_of_seeds(con, "a", seeds, partitions=parts)
    for whole, split in zip(one, many, strict=True):
        assert np.array_equal(whole, split)
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    con.close()


@settings(max_examples=examples(40), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    acts=st.integers(0, 150),
    objects=st.integers(1, 12),
    parts=st.integers(2, 7),
    window=st.sampled_from([0, 7, 30, 60]),
    min_weight=st.integers(2, 4),
    cap=st.sampled_from([None, 2, 40]),
)
def test_synchronys_edges_are_the_same_in_any_number_of_partitions(
    seed: int, acts: int, objects: int, parts: int, window: int, min_weight: int, cap: int | None
) -> None:
    """`detect` counts the matched actions one partition of the objects at a time: the
    same edges and events as in one partition."""
    con = _con(messy_actions(random.Random(seed), acts, objects))
    detector = Synchrony(window=window, min_actions=2, min_weight=min_weight, max_object_pairs=cap)
    found = []
    for count in (1, parts):
        with mock.patch.object(synchrony, "partitions_for", return_value=count) as chosen:
            evidence = detector.detect(con, "a")
        edges = evidence.edges.project(_EDGE).order(_EDGE).fetchall()
        events = sorted(
            evidence.events.project("account_1, account_2, object_id, ts_1, ts_2").fetchall()
        )
        found.append((edges, events))
        evidence.release(con)
        assert chosen.call_count == 1
    assert found[0] == found[1]
    con.close()


def test_the_planted_network_is_the_same_in_partitions() -> None:
    """On the planted case, where there are many pairs: the same edges and copies in
    five partitions as in one."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    planted_case(con, seed=12)
    detector = Synchrony(min_actions=3)
    found = []
    for count in (1, 5):
        with mock.patch.object(synchrony, "partitions_for", return_value=count):
            evidence = detector.detect(con, "actions")
        found.append(evidence.edges.project(_EDGE).order(_EDGE).fetchall())
        evidence.release(con)
    assert len(found[0]) > 100
    assert found[0] == found[1]
    one = detector.null_statistics_of_seeds(con, "actions", [3, 4], partitions=1)
    five = detector.null_statistics_of_seeds(con, "actions", [3, 4], partitions=5)
    assert sum(w.size for w in one) > 100
    for whole, split in zip(one, five, strict=True):
        assert np.array_equal(whole, split)
    con.close()


def test_the_slots_partitions_hold_every_action_once_and_objects_whole() -> None:
    con = _con(messy_actions(random.Random(5), 300, 40))
    with numbered_slots(con, "a", None, 60.0, partitions=4) as slots:
        parts = list(slots.parts())
        assert len(parts) == 4
        with numbered_slots(con, "a", None, 60.0, partitions=1) as whole:
            (all_of,) = list(whole.parts())
        assert sum(p.slot.size for p in parts) == all_of.slot.size > 0
        objects = [set(p.obj.tolist()) for p in parts]
        assert sum(len(o) for o in objects) == len(set().union(*objects))
        assert np.array_equal(slots.count, whole.count)
    with pytest.raises(ConfigError, match="partitions"):
        with numbered_slots(con, "a", None, 60.0, partitions=0):
            pass
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.dictionaries(st.integers(0, 50), st.integers(1, 9), max_size=20), min_size=0, max_size=6
    )
)
def test_merged_pair_counts_are_the_sums_over_partitions(parts: list[dict[int, int]]) -> None:
    given_parts = [
        (np.array(sorted(p), dtype=np.int64), np.array([p[k] for k in sorted(p)], dtype=np.int64))
        for p in parts
    ]
    pairs, counts = merge_pair_counts(given_parts)
    total: Counter[int] = Counter()
    for p in parts:
        total.update(p)
    assert pairs.tolist() == sorted(total)
    assert counts.tolist() == [total[k] for k in sorted(total)]


def test_the_partitions_follow_the_actions_and_the_memory_limit() -> None:
    assert partitions_for(0, 4 * 10**9) == 1
    assert partitions_for(1_000_000, 4 * 10**9) == 1
    counts = [partitions_for(n, 6 * 10**9) for n in (10**6, 10**7, 10**8, 10**9)]
    assert counts == sorted(counts) and counts[-1] > counts[1] > 1
    assert partitions_for(10**8, 24 * 10**9) < partitions_for(10**8, 6 * 10**9)
    con = duckdb.connect()
    con.execute("SET memory_limit = '3GB'")
    # DuckDB shows the limit cut to a tenth of a GiB.
    assert abs(memory_limit_bytes(con) - 3 * 10**9) <= 0.1 * 2**30
    con.close()


def test_the_analysis_finds_the_same_in_partitions(tmp_path: Path) -> None:
    """The whole analysis of the planted case with its pairings' arrays in several
    partitions (as a memory limit too small for them in one would choose): the same
    counts and the same tested edges as in one."""
    found = []
    for per_action in (pairing.BYTES_PER_ACTION, 10**5):
        chosen: list[int] = []

        def counted(actions: int, memory_limit: int, chosen: list[int] = chosen) -> int:
            chosen.append(pairing.partitions_for(actions, memory_limit))
            return chosen[-1]

        with (
            mock.patch.object(pairing, "BYTES_PER_ACTION", per_action),
            mock.patch.object(synchrony, "partitions_for", counted),
            Store(":memory:", memory_limit="300MB") as store,
        ):
            planted_case(store.con, seed=4)
            out = tmp_path / str(per_action) / "result"
            run = analyze(store, out)
        # Synchrony's edges, and its copies when the test draws them.
        assert chosen and all((c > 1) == (per_action > 1000) for c in chosen)
        edges = pq.read_table(out / "edges.parquet").to_pylist()
        key = ("detector", "layer", "platform_1", "account_1", "platform_2", "account_2")
        found.append((run["counts"], sorted(edges, key=lambda e: tuple(str(e[k]) for k in key))))
    assert found[0][0]["significant_pairs"] > 0
    assert found[0] == found[1]
