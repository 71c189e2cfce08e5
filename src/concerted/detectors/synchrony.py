"""Synchrony: accounts whose actions line up in time, across kinds and in rhythm.

Two detectors, both pairs of accounts:

:class:`Synchrony` (``synchrony``)
    SynchroTrap's similarity (Cao et al., CCS 2014): an action of one account is
    *matched* when the other account did the same kind of act on the same object
    within ``window`` seconds (the co-action join of :mod:`concerted.detectors.coaction`,
    over all the kinds asked for at once). The pair's similarity is the share of the
    two accounts' actions that are matched::

        score = (matched actions of a + matched actions of b) / (actions of a + actions of b)

    It lies in [0, 1], is symmetric, and is 1 only when everything either account did
    was echoed by the other. The ``weight`` is the matched actions (an integer), the
    statistic to test: on the simulator the matched count separates a network from
    chance pairs where the share does not (a network's camouflage dilutes the share).
    Only accounts with at least ``min_actions`` actions are paired: below that a
    similarity is a coin toss (one echo in two actions is 0.5).

:class:`Rhythm` (``rhythm``)
    Activity rhythm: each account's set of active ``bin_seconds`` bins (30 minutes by
    default). Comparing every pair is quadratic, so candidate pairs come from MinHash
    LSH over the bin sets (``bands`` bands of ``rows`` hashes; a pair of Jaccard
    similarity *J* becomes a candidate with probability ``1 - (1 - J**rows)**bands``),
    and only accounts with at least ``min_bins`` active bins take part. Every candidate
    is verified exactly. The ``score`` is the cosine of the two binary bin vectors,
    ``shared / sqrt(bins_a * bins_b)``; the ``weight``, the statistic to test, is how
    surprising the shared bins are: ``-log10`` of the hypergeometric chance that two
    accounts with that many active bins, placed at random over the pair's span (the
    first active bin of either to the last), share at least that many
    (:func:`surprise`). A raw count of shared bins, or the cosine, mostly measures how
    active two accounts are (two small accounts sharing 3 of 8 bins have a cosine of
    0.38); the surprise weighs the count against the activity. Pairs below
    ``min_surprise`` are dropped to keep the output finite.

Both leave thresholds to :mod:`concerted.significance`; their minimums only keep the
output finite. Test both on ``sum(weight)`` under the ``relabel`` null (see
``docs/signals.md``): Rhythm's weight is not a whole number, so use
:meth:`~concerted.significance.Significance.null_statistics` and
:meth:`~concerted.significance.Significance.test_statistic`.

>>> Synchrony().name, Rhythm().name
('synchrony', 'rhythm')
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.special import gammaln

from concerted.detectors.base import Evidence, empty
from concerted.detectors.columnar import arrow_table
from concerted.detectors.pairing import (
    Pairs,
    Slots,
    memory_limit_bytes,
    merge_pair_counts,
    numbered_slots,
    pair_keys,
    partition_of,
    partitions_for,
    viral_objects,
)
from concerted.errors import ConfigError
from concerted.fastpath import message_matches
from concerted.schema import sql_literal

__all__ = ["Rhythm", "Synchrony", "candidate_probability", "minhash", "surprise"]

_ids = itertools.count()

#: A Mersenne prime: universal hashing modulo it.
_PRIME = (1 << 31) - 1


def _where_kinds(kinds: tuple[str, ...] | None) -> str:
    if kinds is None:
        return ""
    return f"WHERE kind IN ({', '.join(sql_literal(k) for k in kinds)})"


def _kinds_tuple(owner: object, kinds: tuple[str, ...] | None) -> None:
    if kinds is not None:
        kinds = tuple(kinds)
        if not kinds:
            raise ConfigError(f"{type(owner).__name__}: kinds must not be empty (None for all)")
        object.__setattr__(owner, "kinds", kinds)


@dataclass(frozen=True, kw_only=True)
class Synchrony:
    """SynchroTrap-style similarity of two accounts' matched actions, across kinds.

    ``window``: seconds within which an act of the other account on the same object
    matches; ``kinds``: the action kinds considered (all when ``None``); ``min_actions``:
    actions an account needs to be paired; ``min_weight``: matched actions a pair needs
    (both accounts' together); ``max_object_pairs``: the viral-object cap of co-action.

    >>> Synchrony(window=30, min_actions=5).min_actions
    5
    """

    name: ClassVar[str] = "synchrony"
    family: ClassVar[str] = "tested"
    reads: ClassVar[tuple[str, ...]] = ()
    window: float = 60.0
    kinds: tuple[str, ...] | None = None
    min_actions: int = 10
    min_weight: int = 2
    max_object_pairs: int | None = 2_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", float(self.window))
        _kinds_tuple(self, self.kinds)
        if not self.window >= 0:
            raise ConfigError(f"synchrony: window must not be negative, got {self.window}")
        if self.min_actions < 1:
            raise ConfigError(f"synchrony: min_actions must be at least 1, got {self.min_actions}")
        if self.min_weight < 2:
            # One matched pair of actions is two matched actions.
            raise ConfigError(f"synchrony: min_weight must be at least 2, got {self.min_weight}")
        if self.max_object_pairs is not None and self.max_object_pairs < 1:
            raise ConfigError("synchrony: max_object_pairs must be at least 1 (or None)")

    def _pair(self, con: duckdb.DuckDBPyConnection, actions: str, n: int) -> tuple[str, Pairs]:
        """The accounts with ``min_actions`` actions (a table) and their pairing."""
        active = f"_synchrony_active_{n}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {active} AS
                SELECT platform, actor_id FROM {actions} {_where_kinds(self.kinds)}
                GROUP BY platform, actor_id HAVING count(*) >= {int(self.min_actions)}"""
        )
        source = (
            f"(SELECT x.* FROM (SELECT * FROM {actions} {_where_kinds(self.kinds)}) x "
            f"SEMI JOIN {active} USING (platform, actor_id))"
        )
        # The pairs are not stored: detect reads them twice (the edges' figures and the
        # events of the pairs asked for), and holding them was the largest table of the
        # stage (BENCHMARKS.md, "What synchrony holds at 10^7").
        keys = pair_keys(
            con,
            source,
            window=self.window,
            max_object_pairs=self.max_object_pairs,
            stored=False,
        )
        return active, keys

    def null_statistic(self, con: duckdb.DuckDBPyConnection, actions: str) -> npt.NDArray[Any]:
        """The ``weight`` of every pair :meth:`detect` finds in ``actions``, in no
        order, and nothing else: what a randomised copy of the significance test needs
        (``sum(weight)`` per pair: synchrony has one edge row per pair). Skips the
        edges' other columns, their events and the accounts' names."""
        active, keys = self._pair(con, actions, next(_ids))
        try:
            values = con.sql(
                f"""SELECT (count(DISTINCT r_1) + count(DISTINCT r_2))::DOUBLE AS s
                    FROM {keys.pairs} GROUP BY a_1, a_2
                    HAVING count(DISTINCT r_1) + count(DISTINCT r_2) >= {int(self.min_weight)}"""
            ).fetchnumpy()["s"]
        finally:
            for table in (*keys.tables, active):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        return np.asarray(values, dtype=np.float64)

    def null_statistics_of_draws(
        self,
        con: duckdb.DuckDBPyConnection,
        actions: str,
        draws: Sequence[str],
        *,
        partitions: int | None = None,
    ) -> list[npt.NDArray[np.float64]]:
        """:meth:`null_statistic` of each relabelled copy of ``actions``, the copies
        given as draws: relations of (``platform, source_id, actor_id``) slots and the
        account each goes to (``new_actor_id``), one row per slot, as
        :func:`~concerted.significance.relabelled_accounts` gives them; a slot of
        ``actions`` missing from a draw loses its actions, as the copy's join drops
        them. The same values as :meth:`null_statistic` on each copy: the actions are
        numbered once (:func:`~concerted.detectors.pairing.numbered_slots`), and each
        copy moves the slots and counts the pairs' matched actions on integers, one
        hash partition of the objects at a time (``partitions``; by default from the
        actions' number and the memory limit: the same values for any number)."""
        with numbered_slots(con, actions, self.kinds, self.window, partitions=partitions) as slots:
            out = []
            for draw in draws:
                moved = con.sql(
                    f"""SELECT s.sid, u.aid FROM {draw} d
                        JOIN {slots.slots} s ON s.platform = d.platform
                         AND s.source_id = d.source_id AND s.actor_id = d.actor_id
                        JOIN {slots.accounts} u ON u.platform = d.platform
                         AND u.actor_id = d.new_actor_id"""
                ).fetchnumpy()
                sid = np.asarray(moved["sid"], dtype=np.int64)
                if sid.size and np.bincount(sid).max() > 1:
                    raise ConfigError("synchrony: a draw gives one slot more than one account")
                account_of = np.full(slots.own.size, -1, dtype=np.int64)
                account_of[sid] = moved["aid"]
                out.append(self._copy_weights(slots, account_of))
        return out

    def null_statistics_of_seeds(
        self,
        con: duckdb.DuckDBPyConnection,
        actions: str,
        seeds: Sequence[int],
        *,
        partitions: int | None = None,
    ) -> list[npt.NDArray[np.float64]]:
        """:meth:`null_statistics_of_draws` of the ``relabel`` null's draws with these
        seeds (:func:`~concerted.significance.relabelled_accounts` on ``actions``), each
        made on the numbered slots (:meth:`~concerted.detectors.pairing.Slots.relabelled`)
        from hashes DuckDB computes as the draw's SQL does, instead of in SQL."""
        with numbered_slots(con, actions, self.kinds, self.window, partitions=partitions) as slots:
            out = []
            for seed in seeds:
                hashes = con.sql(
                    f"""SELECT hash(source_id, actor_id, {int(seed)}) AS h_slot,
                               hash(actor_id, source_id, {int(seed) + 7919}) AS h_actor
                        FROM {slots.slots} ORDER BY sid"""
                ).fetchnumpy()
                account_of = slots.relabelled(hashes["h_slot"], hashes["h_actor"])
                out.append(self._copy_weights(slots, account_of))
        return out

    def _copy_weights(
        self, slots: Slots, account_of: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """The weights of the copy where each slot goes to ``account_of[slot]``, in the
        order of their pairs (summed over the slots' partitions)."""
        moved = slots.moved(account_of, min_actions=self.min_actions, cap=self.max_object_pairs)
        _, weights = merge_pair_counts(_matched_actions(*part, self.window) for part in moved)
        return weights[weights >= self.min_weight].astype(np.float64)

    def _matched(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: Pairs,
        found: str,
        partitions: int | None = None,
    ) -> bool:
        """Table ``{found}_w``: each account pair of the pairing with its matched
        actions (``a_1, a_2, matched``), those with ``min_weight`` or more; whether
        that is every pair. The rows are read and counted one hash partition of their
        objects at a time (``partitions``; by default from their number and the memory
        limit), and the pairs' counts summed over them."""
        calm = f"ANTI JOIN {keys.viral} v USING (oid)" if keys.viral else ""
        if partitions is None:
            partitions = partitions_for(_count(con, keys.rows), memory_limit_bytes(con))

        def part(k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
            inside = f"AND {partition_of('oid', partitions)} = {k}" if partitions > 1 else ""
            rows = con.sql(
                f"SELECT aid, oid, t FROM {keys.rows} {calm} WHERE t IS NOT NULL {inside}"
            ).fetchnumpy()
            account, obj, t = (np.asarray(rows[c], dtype=np.int64) for c in ("aid", "oid", "t"))
            del rows
            return _matched_actions(account, obj, t, self.window)

        pair, weights = merge_pair_counts(part(k) for k in range(partitions))
        kept = weights >= self.min_weight
        low, high = (pair >> 32)[kept], (pair & 0xFFFFFFFF)[kept]
        arrow_table(con, {"a_1": low, "a_2": high, "matched": weights[kept]}, f"{found}_w")
        return bool(kept.all())

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        found = f"_synchrony_edges_{n}"
        active, keys = self._pair(con, actions, n)
        # Each pair's matched actions counted on integers as the copies count them,
        # the rest in SQL; with every pair kept (min_weight 2), no semi-join.
        every_pair = self._matched(con, keys, found)
        kept = in_found = keys.pairs
        if not every_pair:
            kept = f"(SELECT * FROM {keys.pairs} SEMI JOIN {found}_w USING (a_1, a_2))"
            in_found = f"(SELECT * FROM {keys.pairs} SEMI JOIN {found} USING (a_1, a_2))"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {found} AS
                WITH m AS (
                    SELECT a_1, a_2, count(*) AS events,
                           count(*) FILTER (WHERE t_1 < t_2) AS lead_1,
                           count(*) FILTER (WHERE t_2 < t_1) AS lead_2,
                           median(abs(t_1 - t_2)) / 1e6 AS median_dt,
                           min(least(t_1, t_2)) AS first_t, max(greatest(t_1, t_2)) AS last_t
                    FROM {kept} GROUP BY a_1, a_2),
                t AS (SELECT aid, count(*) AS n FROM {keys.rows} GROUP BY aid)
                SELECT m.*, w.matched, t1.n AS n_1, t2.n AS n_2
                FROM m JOIN {found}_w w USING (a_1, a_2)
                JOIN t t1 ON t1.aid = m.a_1 JOIN t t2 ON t2.aid = m.a_2;
                DROP TABLE {found}_w"""
        )
        name = sql_literal(self.name)
        edges = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer,
                   u1.platform AS platform_1, u1.actor_id AS account_1,
                   u2.platform AS platform_2, u2.actor_id AS account_2,
                   e.matched::DOUBLE AS weight,
                   (e.matched / (e.n_1 + e.n_2))::DOUBLE AS score,
                   e.events, e.lead_1, e.lead_2, e.median_dt::DOUBLE AS median_dt,
                   make_timestamptz(e.first_t) AS first_ts, make_timestamptz(e.last_t) AS last_ts,
                   NULL::DOUBLE AS expected, NULL::DOUBLE AS p_value,
                   NULL::DOUBLE AS q_value, NULL::BOOLEAN AS significant
            FROM {found} e
            JOIN {keys.accounts} u1 ON u1.aid = e.a_1
            JOIN {keys.accounts} u2 ON u2.aid = e.a_2
            """
        )

        def events_in(pairs: str) -> str:
            return f"""
                SELECT {name} AS detector, {name} AS layer,
                       x.platform AS platform_1, x.actor_id AS account_1,
                       y.platform AS platform_2, y.actor_id AS account_2,
                       x.object_id, x.ts AS ts_1, y.ts AS ts_2,
                       x.source_id AS source_1, y.source_id AS source_2
                FROM {pairs} p
                JOIN {keys.rows} x ON x.rid = p.r_1
                JOIN {keys.rows} y ON y.rid = p.r_2
            """

        def events_of(edges: str) -> str:
            # The edges' accounts as the pairing numbered them: the events are picked
            # on integers, and only theirs joined to the actions.
            wanted = f"""(SELECT u1.aid AS a_1, u2.aid AS a_2 FROM {edges} s
                JOIN {keys.accounts} u1
                  ON u1.platform = s.platform_1 AND u1.actor_id = s.account_1
                JOIN {keys.accounts} u2
                  ON u2.platform = s.platform_2 AND u2.actor_id = s.account_2
                WHERE s.layer = {name})"""
            return events_in(f"(SELECT * FROM {in_found} SEMI JOIN {wanted} w USING (a_1, a_2))")

        events = con.sql(events_in(in_found))
        notes: dict[str, Any] = {
            "window_seconds": self.window,
            "kinds": list(self.kinds) if self.kinds is not None else "all",
            "min_actions": self.min_actions,
            "min_weight": self.min_weight,
            "max_object_pairs": self.max_object_pairs,
            "accounts_paired": _count(con, active),
            "viral_objects": viral_objects(con, keys),
        }
        return Evidence(
            edges=edges,
            events=events,
            signals=empty(con, "signals"),
            notes=notes,
            temporary=(*keys.tables, found, active),
            events_of=events_of,
        )


def _matched_actions(
    account: npt.NDArray[np.int64],
    obj: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    window: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each pair's matched actions (the distinct rows of each side of a pairing), from
    the actions' accounts (0 to 2**31), objects and times (microseconds), summed from
    the codes of :func:`~concerted.fastpath.message_matches`: the pairs as ``low *
    2**32 + high``, sorted, and their counts."""
    codes = message_matches(account, obj, t, round(window * 1_000_000))
    if codes.size == 0:
        return codes, codes
    codes.sort(kind="stable")  # sorted runs: merged
    pair = codes >> 2
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    weights = np.add.reduceat(((codes >> 1) & 1) + (codes & 1), starts)
    low, high = np.divmod(pair[starts], int(account.max()) + 1)
    return (low << 32) + high, weights


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.sql(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def candidate_probability(similarity: float, *, bands: int, rows: int) -> float:
    """The chance that MinHash LSH with ``bands`` bands of ``rows`` hashes makes a
    candidate of a pair whose sets have Jaccard ``similarity``.

    >>> round(candidate_probability(0.2, bands=64, rows=2), 3)
    0.927
    """
    return float(1.0 - (1.0 - similarity**rows) ** bands)


def minhash(
    owner: npt.NDArray[np.int64], items: npt.NDArray[np.int64], *, hashes: int, seed: int
) -> npt.NDArray[np.uint64]:
    """MinHash signatures of sets given as rows (``owner[i]`` holds ``items[i]``),
    ``owner`` sorted and numbered 0..m-1 without gaps: an ``m`` × ``hashes`` array.

    The hashes are universal, ``(a * x + b) mod (2**31 - 1)``, with ``a`` and ``b``
    drawn from ``seed``: the same sets give the same signatures on every run, whatever
    the order their rows came in. Items are taken modulo the prime first (time bins
    collide only when they lie 2**31 bins apart).

    >>> sig = minhash(np.array([0, 0, 1, 1]), np.array([5, 9, 9, 5]), hashes=4, seed=0)
    >>> bool((sig[0] == sig[1]).all())
    True
    """
    m = int(owner[-1]) + 1 if owner.size else 0
    out = np.empty((m, hashes), dtype=np.uint64)
    if m == 0:
        return out
    rng = np.random.default_rng([seed, 4_242])
    a = rng.integers(1, _PRIME, size=hashes, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=hashes, dtype=np.uint64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    x = (items.astype(np.int64) % _PRIME).astype(np.uint64)[:, None]
    p = np.uint64(_PRIME)
    # Below 2**62 before the modulo: no overflow.
    step = max(1, (1 << 22) // max(1, x.shape[0]))
    for k in range(0, hashes, step):
        h = (x * a[None, k : k + step] + b[None, k : k + step]) % p
        out[:, k : k + step] = np.minimum.reduceat(h, starts, axis=0)
    return out


@dataclass(frozen=True, kw_only=True)
class Rhythm:
    """Accounts active in the same time bins more than their activity explains, found
    by MinHash LSH and verified exactly.

    ``bin_seconds``: the bin width; ``kinds``: the action kinds that count as activity
    (all when ``None``); ``min_bins``: active bins an account needs to take part;
    ``min_shared``: shared active bins a pair needs; ``min_surprise``: the weight a
    pair needs (2: one chance in a hundred); ``bands`` and ``rows``: the LSH
    (see the module's notes); ``max_bucket``: an LSH bucket holding more accounts than
    this makes no candidates (accounts active in every bin collide with everyone);
    ``seed``: the hash functions.

    >>> Rhythm(bin_seconds=900).bin_seconds
    900.0
    """

    name: ClassVar[str] = "rhythm"
    family: ClassVar[str] = "tested"
    reads: ClassVar[tuple[str, ...]] = ()
    bin_seconds: float = 1800.0
    kinds: tuple[str, ...] | None = None
    min_bins: int = 8
    min_shared: int = 3
    min_surprise: float = 2.0
    bands: int = 256
    rows: int = 3
    max_bucket: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bin_seconds", float(self.bin_seconds))
        _kinds_tuple(self, self.kinds)
        if not self.bin_seconds >= 1:
            raise ConfigError(f"rhythm: bin_seconds must be at least 1, got {self.bin_seconds}")
        if self.min_bins < 1:
            raise ConfigError(f"rhythm: min_bins must be at least 1, got {self.min_bins}")
        if self.min_shared < 1:
            raise ConfigError(f"rhythm: min_shared must be at least 1, got {self.min_shared}")
        if not self.min_surprise >= 0:
            raise ConfigError(f"rhythm: min_surprise must not be negative, got {self.min_surprise}")
        if self.bands < 1 or self.rows < 1:
            raise ConfigError("rhythm: bands and rows must be at least 1")
        if self.max_bucket < 2:
            raise ConfigError(f"rhythm: max_bucket must be at least 2, got {self.max_bucket}")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        bins, accounts = f"_rhythm_bins_{n}", f"_rhythm_accounts_{n}"
        bands, candidates = f"_rhythm_bands_{n}", f"_rhythm_candidates_{n}"
        kept, found = f"_rhythm_pairs_{n}", f"_rhythm_shared_{n}"
        width = max(1, round(self.bin_seconds * 1_000_000))
        # Each account's active bins, with its first act in each (the evidence).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {bins} AS
                SELECT platform, actor_id, epoch_us(ts) // {width} AS bin,
                       min(epoch_us(ts)) AS t, arg_min(source_id, (epoch_us(ts), source_id)) AS src
                FROM {actions} {_where_kinds(self.kinds)}
                GROUP BY platform, actor_id, bin"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {accounts} AS
                SELECT (row_number() OVER (ORDER BY platform, actor_id) - 1)::BIGINT AS aid,
                       platform, actor_id, nb, first_bin, last_bin
                FROM (SELECT platform, actor_id, count(*) AS nb, min(bin) AS first_bin,
                             max(bin) AS last_bin FROM {bins}
                      GROUP BY platform, actor_id HAVING count(*) >= {int(self.min_bins)});
                CREATE OR REPLACE TEMP TABLE {bins} AS
                SELECT u.aid, b.bin, b.t, b.src FROM {bins} b
                JOIN {accounts} u USING (platform, actor_id)"""
        )
        sets = con.sql(f"SELECT aid, bin FROM {bins} ORDER BY aid, bin").fetchnumpy()
        owner = np.asarray(sets["aid"], dtype=np.int64)
        signature = minhash(
            owner,
            np.asarray(sets["bin"], dtype=np.int64),
            hashes=self.bands * self.rows,
            seed=self.seed,
        )
        m = signature.shape[0]
        keys = _band_keys(signature, self.bands, self.rows)
        con.register(
            f"_rhythm_arrow_{n}",
            pa.table(
                {
                    "band": np.repeat(np.arange(self.bands, dtype=np.int32), m),
                    "key": keys.T.reshape(-1).view(np.int64),
                    "aid": np.tile(np.arange(m, dtype=np.int64), self.bands),
                }
            ),
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {bands} AS
                SELECT band, key, aid, count(*) OVER (PARTITION BY band, key) AS size
                FROM _rhythm_arrow_{n}"""
        )
        con.unregister(f"_rhythm_arrow_{n}")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {candidates} AS
                SELECT DISTINCT x.aid AS a_1, y.aid AS a_2
                FROM {bands} x JOIN {bands} y ON y.band = x.band AND y.key = x.key
                WHERE x.aid < y.aid AND x.size <= {int(self.max_bucket)}"""
        )
        capped = con.sql(
            f"SELECT count(*) FROM (SELECT DISTINCT band, key FROM {bands} "
            f"WHERE size > {int(self.max_bucket)})"
        ).fetchone()
        con.execute(f"DROP TABLE {bands}")
        # Exact verification: the bins both accounts were active in, and how
        # surprising that many would be by chance.
        shared = con.sql(
            f"""SELECT c.a_1, c.a_2, count(*) AS k FROM {candidates} c
                JOIN {bins} x ON x.aid = c.a_1
                JOIN {bins} y ON y.aid = c.a_2 AND y.bin = x.bin
                GROUP BY c.a_1, c.a_2 HAVING count(*) >= {int(self.min_shared)}"""
        ).fetchnumpy()
        spans = con.sql(f"SELECT nb, first_bin, last_bin FROM {accounts} ORDER BY aid").fetchnumpy()
        active = np.asarray(spans["nb"], dtype=np.int64)
        first = np.asarray(spans["first_bin"], dtype=np.int64)
        last = np.asarray(spans["last_bin"], dtype=np.int64)
        a_1 = np.asarray(shared["a_1"], dtype=np.int64)
        a_2 = np.asarray(shared["a_2"], dtype=np.int64)
        k = np.asarray(shared["k"], dtype=np.int64)
        # The pair's own span: from the first active bin of either to the last.
        total = np.maximum(last[a_1], last[a_2]) - np.minimum(first[a_1], first[a_2]) + 1
        weight = surprise(k, active[a_1], active[a_2], total)
        keep = (weight > 0) & (weight >= self.min_surprise)
        con.register(
            f"_rhythm_arrow_{n}",
            pa.table({"a_1": a_1[keep], "a_2": a_2[keep], "weight": weight[keep]}),
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {kept} AS SELECT * FROM _rhythm_arrow_{n};
                CREATE OR REPLACE TEMP TABLE {found} AS
                SELECT c.a_1, c.a_2, x.bin, x.t AS t_1, y.t AS t_2,
                       x.src AS src_1, y.src AS src_2
                FROM {kept} c
                JOIN {bins} x ON x.aid = c.a_1
                JOIN {bins} y ON y.aid = c.a_2 AND y.bin = x.bin"""
        )
        con.unregister(f"_rhythm_arrow_{n}")
        name = sql_literal(self.name)
        edges = con.sql(
            f"""
            WITH e AS (
                SELECT a_1, a_2, count(*) AS shared,
                       count(*) FILTER (WHERE t_1 < t_2) AS lead_1,
                       count(*) FILTER (WHERE t_2 < t_1) AS lead_2,
                       median(abs(t_1 - t_2)) / 1e6 AS median_dt,
                       min(least(t_1, t_2)) AS first_t, max(greatest(t_1, t_2)) AS last_t
                FROM {found} GROUP BY a_1, a_2)
            SELECT {name} AS detector, {name} AS layer,
                   u1.platform AS platform_1, u1.actor_id AS account_1,
                   u2.platform AS platform_2, u2.actor_id AS account_2,
                   w.weight::DOUBLE AS weight,
                   (e.shared / sqrt(u1.nb * u2.nb))::DOUBLE AS score,
                   e.shared AS events, e.lead_1, e.lead_2, e.median_dt::DOUBLE AS median_dt,
                   make_timestamptz(e.first_t) AS first_ts, make_timestamptz(e.last_t) AS last_ts,
                   NULL::DOUBLE AS expected, NULL::DOUBLE AS p_value,
                   NULL::DOUBLE AS q_value, NULL::BOOLEAN AS significant
            FROM e JOIN {kept} w USING (a_1, a_2)
            JOIN {accounts} u1 ON u1.aid = e.a_1 JOIN {accounts} u2 ON u2.aid = e.a_2
            """
        )
        events = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer,
                   u1.platform AS platform_1, u1.actor_id AS account_1,
                   u2.platform AS platform_2, u2.actor_id AS account_2,
                   strftime(make_timestamptz(f.bin * {width}), '%Y-%m-%dT%H:%M:%SZ')
                       AS object_id,
                   make_timestamptz(f.t_1) AS ts_1, make_timestamptz(f.t_2) AS ts_2,
                   f.src_1 AS source_1, f.src_2 AS source_2
            FROM {found} f
            JOIN {accounts} u1 ON u1.aid = f.a_1 JOIN {accounts} u2 ON u2.aid = f.a_2
            """
        )
        notes: dict[str, Any] = {
            "bin_seconds": self.bin_seconds,
            "kinds": list(self.kinds) if self.kinds is not None else "all",
            "min_bins": self.min_bins,
            "min_shared": self.min_shared,
            "min_surprise": self.min_surprise,
            "bands": self.bands,
            "rows": self.rows,
            "accounts_compared": m,
            "candidate_pairs": _count(con, candidates),
            "pairs_above_chance": int(keep.sum()),
            "buckets_over_cap": int(capped[0]) if capped else 0,
            "candidate_probability": {
                str(j): round(candidate_probability(j, bands=self.bands, rows=self.rows), 4)
                for j in (0.05, 0.1, 0.2, 0.3, 0.5)
            },
        }
        con.execute(f"DROP TABLE {candidates}")
        return Evidence(
            edges=edges,
            events=events,
            signals=empty(con, "signals"),
            notes=notes,
            temporary=(bins, accounts, kept, found),
        )


def surprise(
    shared: npt.ArrayLike, bins_1: npt.ArrayLike, bins_2: npt.ArrayLike, total: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """``-log10`` of the chance that two accounts active in ``bins_1`` and ``bins_2`` of
    ``total`` bins, at random, share at least ``shared`` of them (the hypergeometric
    tail); 0 where ``shared`` is no more than the likeliest count. Every argument may
    be an array (one entry per pair).

    Symmetric in the two accounts, exact (a series in log space, not an
    approximation), and vectorised.

    >>> surprise([3, 30], [8, 100], [8, 100], 672).round(2).tolist()
    [4.22, 4.74]
    >>> surprise([1], [100], [100], 672).tolist()
    [0.0]
    """
    k, n1, n2, t = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (shared, bins_1, bins_2, total))
    )
    out = np.zeros(k.shape, dtype=np.float64)
    mode = np.floor((n1 + 1) * (n2 + 1) / (t + 2))
    go = k > mode
    if not go.any():
        return out
    # The smaller count first: the same sums in the same order whichever way round.
    k, t = k[go], t[go]
    n1, n2 = np.minimum(n1[go], n2[go]), np.maximum(n1[go], n2[go])
    log_pk = (
        gammaln(n1 + 1)
        - gammaln(k + 1)
        - gammaln(n1 - k + 1)
        + gammaln(t - n1 + 1)
        - gammaln(n2 - k + 1)
        - gammaln(t - n1 - n2 + k + 1)
        - gammaln(t + 1)
        + gammaln(n2 + 1)
        + gammaln(t - n2 + 1)
    )
    # Above the mode the terms fall: sum them until they no longer count.
    top = np.minimum(n1, n2)
    term = np.ones_like(k)
    tail = np.ones_like(k)
    x = k.copy()
    while True:
        ratio = np.where(
            x < top, (n1 - x) * (n2 - x) / ((x + 1) * np.maximum(t - n1 - n2 + x + 1, 1)), 0.0
        )
        term *= ratio
        tail += term
        x += 1
        if not (term > 1e-17 * tail).any():
            break
    out[go] = np.maximum(-(log_pk + np.log(tail)) / np.log(10), 0.0)
    return out


def _band_keys(signature: npt.NDArray[np.uint64], bands: int, rows: int) -> npt.NDArray[np.uint64]:
    """One key per account and band: the band's ``rows`` hash values mixed into 64 bits
    (FNV-style; a false collision only adds a candidate, which verification drops)."""
    m = signature.shape[0]
    keys = np.full((m, bands), np.uint64(14_695_981_039_346_656_037), dtype=np.uint64)
    prime = np.uint64(1_099_511_628_211)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys = (keys ^ signature[:, r::rows][:, :bands]) * prime
    return keys
