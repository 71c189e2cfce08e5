"""The stratified null's shared strata summed compiled (concerted.engines.strata):
the same sums as the SQL join, bit for bit."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.coaction import CoAction
from concerted.engines import duck, strata
from concerted.engines.duck import DuckDBEngine
from tests.budget import examples
from tests.test_engines import ACTIONS, _load


def test_units_are_duckdbs_casts_to_decimal() -> None:
    """Random doubles over 14 orders of magnitude, halves (3.8397666450631463e-07 * 1e22
    ends in .5), values whose shortest decimal string is not their value, and values
    of 2^53 units and more (the high word)."""
    rng = random.Random(3)
    xs = [rng.random() * 10 ** rng.randint(-9, 5) for _ in range(5_000)]
    xs += [3.8397666450631463e-07, 9.333806207298506e-08, 0.009364405867994597, 1 / 3, 0.0]
    xs += [2.0**53 * 1e-22, 2.0**53 * 1e-22 * 3 + 1e-22, 123456.789]
    high, low = strata.units(np.array(xs))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, x DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(xs)))
    want = [
        int(d.scaleb(22))
        for (d,) in con.sql("SELECT x::DECIMAL(38, 22) FROM t ORDER BY i").fetchall()
    ]
    assert [h * 2**53 + lo for h, lo in zip(high.tolist(), low.tolist(), strict=True)] == want
    assert all(0 <= lo <= 2**53 for lo in low.tolist())


#: Numbered strata of accounts: (account 1-12, stratum, posts); duplicates of an
#: (account, stratum) are dropped, as act_ids holds one row each.
ACT = st.lists(
    st.tuples(st.integers(1, 12), st.sampled_from([-3, 0, 1, 2, 5, 18_414]), st.integers(1, 5_000)),
    max_size=60,
)
#: A rate for some strata (not every stratum with posts has one), any double.
RATES = st.dictionaries(
    st.sampled_from([-3, 0, 1, 2, 5, 18_414, 99]),
    st.floats(min_value=1e-12, max_value=1e4, allow_nan=False, allow_infinity=False),
)
#: Pairs of account numbers, some of accounts with no strata (13, 14).
PAIRS = st.lists(st.tuples(st.integers(1, 14), st.integers(1, 14)), max_size=50, unique=True)


def _tables(
    con: duckdb.DuckDBPyConnection,
    act: list[tuple[int, int, int]],
    rates: dict[int, float],
    pairs: list[tuple[int, int]],
) -> dict[str, str]:
    names = {k: f"t_{k}" for k in duck._SCRATCH}
    con.execute("CREATE OR REPLACE TABLE t_act_ids (aid INTEGER, s BIGINT, n DOUBLE)")
    seen = {(a, s): n for a, s, n in act}
    if seen:
        con.executemany(
            "INSERT INTO t_act_ids VALUES (?, ?, ?)",
            [(a, s, float(n)) for (a, s), n in seen.items()],
        )
    con.execute("CREATE OR REPLACE TABLE t_rate (s BIGINT, r DOUBLE)")
    if rates:
        con.executemany("INSERT INTO t_rate VALUES (?, ?)", list(rates.items()))
    con.execute("CREATE OR REPLACE TABLE t_pairs (aid_1 INTEGER, aid_2 INTEGER)")
    if pairs:
        con.executemany("INSERT INTO t_pairs VALUES (?, ?)", pairs)
    return names


def _shared(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return sorted(con.sql("SELECT aid_1, aid_2, lam FROM t_shared").fetchall())


@settings(max_examples=examples(100), deadline=None)
@given(act=ACT, rates=RATES, pairs=PAIRS, at_once=st.sampled_from([1, 3, 1 << 21]))
def test_compiled_shared_strata_are_the_sql_join(
    act: list[tuple[int, int, int]],
    rates: dict[int, float],
    pairs: list[tuple[int, int]],
    at_once: int,
) -> None:
    """Every pair's sum over the strata both accounts hold a rate in, as exact decimals:
    many terms a pair, posts in the thousands, rates of any size, strata without a rate,
    accounts without strata, and the pairs read a few at a time."""
    con = duckdb.connect()
    names = _tables(con, act, rates, pairs)
    con.execute(duck._SHARED.format(exact=duck._EXACT, **names))
    want = _shared(con)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duck, "_PAIRS_AT_ONCE", at_once)
        duck._compiled_shared(con, names)
    assert con.sql("DESCRIBE t_shared").fetchall()[2][1] == "DECIMAL(38,22)"
    # The SQL keeps no row for a pair that shares no rated stratum; nor does this.
    assert _shared(con) == want
    con.close()


@settings(max_examples=examples(50), deadline=None)
@given(
    rows=ACTIONS,
    window=st.sampled_from([0, 30, 60]),
    stratum=st.sampled_from([1.0, 30.0, 60.0, 86_400.0]),
)
def test_the_expectations_are_the_same_either_way(
    rows: list[tuple[str, str, float, str, str]], window: float, stratum: float
) -> None:
    """The engine's expectations of a real pairing, compiled and plain: the same rows,
    bit for bit (strata of a second to a day)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _load(con, rows)
    engine = DuckDBEngine(con)
    paired = engine.pair(table, [CoAction(window=window, min_weight=1)])
    got = {}
    for plain in (True, False):
        sums = engine.expectations(paired.events, table, stratum=stratum, plain=plain)
        got[plain] = sorted(con.sql(f"SELECT * FROM {sums}").fetchall())
        engine.release(sums)
    assert got[False] == got[True]
    con.close()


@pytest.mark.parametrize("seed", range(12))
def test_compiled_shared_strata_on_dense_random_worlds(seed: int) -> None:
    """Many accounts sharing many rated strata, posts in the thousands and rates over
    13 orders of magnitude: a sum whose terms were rounded or added otherwise than the
    SQL's (n_1 * (n_2 * r), say, or the low word's carry dropped) differs here."""
    rng = random.Random(seed)
    strata_ = list(range(-3, 40))
    act = [(rng.randint(1, 12), rng.choice(strata_), rng.randint(1, 5_000)) for _ in range(300)]
    rates = {s: rng.random() * 10 ** rng.randint(-12, 1) for s in strata_ if rng.random() < 0.8}
    pairs = list({(rng.randint(1, 14), rng.randint(1, 14)) for _ in range(80)})
    con = duckdb.connect()
    names = _tables(con, act, rates, pairs)
    con.execute(duck._SHARED.format(exact=duck._EXACT, **names))
    want = _shared(con)
    duck._compiled_shared(con, names)
    assert len(want) > 40 and _shared(con) == want
    con.close()


def test_sums_beyond_the_compiled_words_are_left_to_sql() -> None:
    """Posts and rates so high that a pair's sum could pass what two int64 hold: the
    SQL sums them, as it always did (no overflow, the same decimals)."""
    act = [(1, s, 50_000) for s in range(40)] + [(2, s, 40_000) for s in range(40)]
    rates = {s: 9_000.0 + s for s in range(40)}
    con = duckdb.connect()
    names = _tables(con, act, rates, [(1, 2)])
    con.execute(duck._SHARED.format(exact=duck._EXACT, **names))
    want = _shared(con)
    read: list[object] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(strata, "shared", lambda *a: read.append(a))
        duck._compiled_shared(con, names)
    assert not read and _shared(con) == want
    assert float(str(want[0][2])) > 4.2e12
    con.close()
