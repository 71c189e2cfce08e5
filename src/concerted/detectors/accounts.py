"""Account signals: what the accounts' own records say about who runs them.

Four detectors that read the case's ``accounts`` and ``roles`` tables, not only the
actions. They are corroborating layers: on their own they tie together accounts that
organic users share too (a common name, a busy sign-up day, a handle with digits), so
they are scored for precision and meant to attach accounts to networks that
co-action found, not to make networks of their own.

:class:`CreationBurst` (``creation_burst``)
    Accounts created in a burst (many more creations within ``window_hours`` than the
    platform's baseline over ``baseline_days`` predicts), and pairs of them created
    within ``window_hours`` of each other that then act on a shared object within
    ``coaction_window`` seconds.
:class:`SharedAdmins` (``shared_admins``)
    Pages and groups run by the same admins or moderators.
:class:`HandlePattern` (``handle_pattern``)
    Handles made of a name and a run of digits, and accounts whose handles share the
    stem.
:class:`CrossPlatformName` (``cross_platform``)
    The same handle or name on two platforms, down-weighted by how many accounts hold it.

Their statistics do not move when the actions are randomised (only
:class:`CreationBurst` reads actions at all), so the engine's null models cannot test
them; their ``score`` is built to be read directly (see ``docs/signals.md``).

>>> [d.name for d in (CreationBurst(), SharedAdmins(), HandlePattern(), CrossPlatformName())]
['creation_burst', 'shared_admins', 'handle_pattern', 'cross_platform']
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import pyarrow as pa
from scipy.special import bdtrc, pdtrc

from concerted.detectors.base import Evidence, empty
from concerted.detectors.pairing import pair_keys, viral_objects
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = [
    "AFFIXES",
    "CreationBurst",
    "CrossPlatformName",
    "HandlePattern",
    "SharedAdmins",
]

_ids = itertools.count()
#: Rows of the accounts' burst windows read at a time.
_BURST_BATCH = 1 << 17
_BURST_FIELDS: list[pa.Field[Any]] = [
    pa.field("platform", pa.string()),
    pa.field("account_id", pa.string()),
    pa.field("t", pa.int64()),
    pa.field("k", pa.int64()),
    pa.field("expected", pa.float64()),
    pa.field("p", pa.float64()),
]
_BURST_SCHEMA = pa.schema(_BURST_FIELDS)

#: Where a time is unknown (a role without ``since``, an account without
#: ``created_at``) evidence rows, whose times the contract requires, show the epoch.
_UNKNOWN = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"

_NULL_TEST = (
    "NULL::DOUBLE AS expected, NULL::DOUBLE AS p_value, "
    "NULL::DOUBLE AS q_value, NULL::BOOLEAN AS significant"
)

#: Separated tokens at the end (or start) of a handle that operators add to one name
#: on a second platform: ``ali.khan_official``, ``the_ali_khan``, ``alikhan.pk``.
AFFIXES: dict[str, tuple[str, ...]] = {
    "suffix": (
        "official",
        "real",
        "tv",
        "news",
        "page",
        "fan",
        "fans",
        "pk",
        "in",
        "uk",
        "us",
        "ae",
        "sa",
        "bd",
    ),
    "prefix": ("the", "real", "its", "iam", "im", "official"),
}


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.sql(f"SELECT count(*) FROM {query}").fetchone()
    return int(row[0]) if row else 0


def _where_kinds(kinds: tuple[str, ...] | None) -> str:
    if kinds is None:
        return ""
    return f"WHERE kind IN ({', '.join(sql_literal(k) for k in kinds)})"


@dataclass(frozen=True, kw_only=True)
class CreationBurst:
    """Accounts created in a burst that then act together.

    An account is in a burst when the accounts of its platform created within
    ``window_hours`` either side of it number at least ``min_burst`` and more than the
    baseline explains: the baseline is the platform's creation rate over
    ``baseline_days`` either side (the window itself left out, plus one account), and
    the Poisson chance of so many at that rate must be at most ``burst_alpha`` divided
    by the platform's accounts (Bonferroni: every account's window is a test, and
    ``burst_alpha`` bounds the chance of any false burst account on a platform whose
    creations follow its baseline). Bursts are
    the runs of such accounts, no more than ``window_hours`` apart.

    Signals: every account in a burst (``value`` = accounts in its burst, ``score`` =
    the share of its window's creations the baseline does not explain). Edges: two
    burst accounts created within ``window_hours`` of each other that acted on at
    least ``min_shared`` shared objects within ``coaction_window`` seconds (``weight``
    = shared objects, ``score`` = the weaker of their two burst scores; ``events`` =
    the matched actions).

    >>> CreationBurst(window_hours=3).window_hours
    3.0
    """

    name: ClassVar[str] = "creation_burst"
    family: ClassVar[str] = "corroborating"
    reads: ClassVar[tuple[str, ...]] = ("accounts",)
    window_hours: float = 6.0
    baseline_days: float = 30.0
    min_burst: int = 5
    burst_alpha: float = 0.01
    coaction_window: float = 3600.0
    kinds: tuple[str, ...] | None = None
    min_shared: int = 1
    max_object_pairs: int | None = 2_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_hours", float(self.window_hours))
        object.__setattr__(self, "baseline_days", float(self.baseline_days))
        object.__setattr__(self, "coaction_window", float(self.coaction_window))
        if self.kinds is not None:
            object.__setattr__(self, "kinds", tuple(self.kinds))
        if not self.window_hours > 0:
            raise ConfigError(
                f"creation_burst: window_hours must be positive, got {self.window_hours}"
            )
        if not self.baseline_days * 24 > self.window_hours:
            raise ConfigError("creation_burst: baseline_days must span more than window_hours")
        if self.min_burst < 2:
            raise ConfigError(f"creation_burst: min_burst must be at least 2, got {self.min_burst}")
        if not 0 < self.burst_alpha <= 1:
            raise ConfigError(
                f"creation_burst: burst_alpha must lie in (0, 1], got {self.burst_alpha}"
            )
        if not self.coaction_window >= 0:
            raise ConfigError("creation_burst: coaction_window must not be negative")
        if self.min_shared < 1:
            raise ConfigError(
                f"creation_burst: min_shared must be at least 1, got {self.min_shared}"
            )
        if self.max_object_pairs is not None and self.max_object_pairs < 1:
            raise ConfigError("creation_burst: max_object_pairs must be at least 1 (or None)")

    def _bursts(self, batch: pa.RecordBatch, w: int, b: int) -> pa.RecordBatch:
        """The accounts of ``batch`` created in a burst, with its expectation and
        p-value."""
        k = np.asarray(batch.column("k"), dtype=np.float64)
        base = np.asarray(batch.column("base"), dtype=np.float64)
        # The baseline's rate outside the window, smoothed by one account.
        expected = (base - k + 1) * (2 * w) / (2 * b - 2 * w)
        p = pdtrc(k - 1, expected)
        inside = p <= self.burst_alpha / np.asarray(batch.column("accounts"), dtype=np.float64)
        mask = pa.array(inside, pa.bool_())
        return pa.RecordBatch.from_arrays(
            [
                batch.column("platform").filter(mask).cast(pa.string()),
                batch.column("account_id").filter(mask).cast(pa.string()),
                pa.array(np.asarray(batch.column("t"), dtype=np.int64)[inside], pa.int64()),
                pa.array(k[inside].astype(np.int64), pa.int64()),
                pa.array(expected[inside], pa.float64()),
                pa.array(p[inside], pa.float64()),
            ],
            schema=_BURST_SCHEMA,
        )

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        windows, burst, found = f"_burst_windows_{n}", f"_burst_accounts_{n}", f"_burst_pairs_{n}"
        w = round(self.window_hours * 3600 * 1_000_000)
        b = round(self.baseline_days * 86400 * 1_000_000)
        # Creations within the window and within the baseline, per account.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {windows} AS
                WITH c AS (SELECT platform, account_id, epoch_us(min(created_at)) AS t
                           FROM accounts WHERE created_at IS NOT NULL
                           GROUP BY platform, account_id)
                SELECT platform, account_id, t,
                       count(*) OVER (PARTITION BY platform ORDER BY t
                           RANGE BETWEEN {w} PRECEDING AND {w} FOLLOWING) AS k,
                       count(*) OVER (PARTITION BY platform ORDER BY t
                           RANGE BETWEEN {b} PRECEDING AND {b} FOLLOWING) AS base
                FROM c"""
        )
        # Read in batches, and only the burst accounts kept: every account of a large
        # case at once would be a table that grows with the case, in Python memory.
        reader = con.sql(
            f"SELECT * FROM (SELECT platform, account_id, t, k, base, "
            f"count(*) OVER (PARTITION BY platform) AS accounts FROM {windows}) "
            f"WHERE k >= {self.min_burst}"
        ).fetch_record_batch(_BURST_BATCH)
        kept = pa.Table.from_batches([self._bursts(batch, w, b) for batch in reader], _BURST_SCHEMA)
        con.register(f"_burst_arrow_{n}", kept)
        # Runs of burst accounts no more than a window apart are one burst.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {burst} AS
                WITH x AS (
                    SELECT *, greatest(0.0, 1.0 - expected / k) AS score,
                           CASE WHEN t - lag(t) OVER (PARTITION BY platform ORDER BY t,
                                account_id) <= {w} THEN 0 ELSE 1 END AS starts
                    FROM _burst_arrow_{n}),
                y AS (SELECT *, sum(starts) OVER (PARTITION BY platform ORDER BY t, account_id
                                ROWS UNBOUNDED PRECEDING) AS run FROM x)
                SELECT platform, account_id, t, k, expected, p, score,
                       count(*) OVER (PARTITION BY platform, run) AS size,
                       min(t) OVER (PARTITION BY platform, run) AS run_start,
                       max(t) OVER (PARTITION BY platform, run) AS run_end
                FROM y"""
        )
        con.unregister(f"_burst_arrow_{n}")
        name = sql_literal(self.name)
        hours = f"{self.window_hours:g}"
        signals = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, 'account' AS entity, platform,
                   account_id AS id, score::DOUBLE AS score, size::DOUBLE AS value,
                   'burst:' || platform || ':'
                       || strftime(make_timestamptz(run_start), '%Y-%m-%dT%H:%M:%SZ')
                       AS related_id,
                   make_timestamptz(run_start) AS first_ts, make_timestamptz(run_end) AS last_ts,
                   'created with ' || (k - 1) || ' other ' || platform || ' accounts within '
                       || '{hours} h either side, where the {self.baseline_days:g}-day baseline '
                       || 'expects ' || round(expected, 1) || '; burst of ' || size
                       || ' accounts' AS detail
            FROM {burst}
            """
        )
        source = (
            f"(SELECT x.* FROM (SELECT * FROM {actions} {_where_kinds(self.kinds)}) x "
            f"SEMI JOIN (SELECT platform, account_id AS actor_id FROM {burst}) b "
            f"USING (platform, actor_id))"
        )
        keys = pair_keys(
            con, source, window=self.coaction_window, max_object_pairs=self.max_object_pairs
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {found} AS
                WITH p AS (
                    SELECT a_1, a_2, count(DISTINCT oid) AS shared, count(*) AS events,
                           count(*) FILTER (WHERE t_1 < t_2) AS lead_1,
                           count(*) FILTER (WHERE t_2 < t_1) AS lead_2,
                           median(abs(t_1 - t_2)) / 1e6 AS median_dt,
                           min(least(t_1, t_2)) AS first_t, max(greatest(t_1, t_2)) AS last_t
                    FROM {keys.pairs} GROUP BY a_1, a_2
                    HAVING count(DISTINCT oid) >= {int(self.min_shared)})
                SELECT p.*, u1.platform AS platform_1, u1.actor_id AS account_1,
                       u2.platform AS platform_2, u2.actor_id AS account_2,
                       least(b1.score, b2.score) AS score
                FROM p
                JOIN {keys.accounts} u1 ON u1.aid = p.a_1
                JOIN {keys.accounts} u2 ON u2.aid = p.a_2
                JOIN {burst} b1 ON b1.platform = u1.platform AND b1.account_id = u1.actor_id
                JOIN {burst} b2 ON b2.platform = u2.platform AND b2.account_id = u2.actor_id
                WHERE abs(b1.t - b2.t) <= {w}"""
        )
        edges = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform_1, account_1,
                   platform_2, account_2, shared::DOUBLE AS weight, score::DOUBLE AS score,
                   events, lead_1, lead_2, median_dt::DOUBLE AS median_dt,
                   make_timestamptz(first_t) AS first_ts, make_timestamptz(last_t) AS last_ts,
                   {_NULL_TEST}
            FROM {found}
            """
        )
        events = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer,
                   x.platform AS platform_1, x.actor_id AS account_1,
                   y.platform AS platform_2, y.actor_id AS account_2,
                   x.object_id, x.ts AS ts_1, y.ts AS ts_2,
                   x.source_id AS source_1, y.source_id AS source_2
            FROM (SELECT * FROM {keys.pairs} SEMI JOIN {found} USING (a_1, a_2)) p
            JOIN {keys.rows} x ON x.rid = p.r_1
            JOIN {keys.rows} y ON y.rid = p.r_2
            """
        )
        notes: dict[str, Any] = {
            "window_hours": self.window_hours,
            "baseline_days": self.baseline_days,
            "min_burst": self.min_burst,
            "burst_alpha": self.burst_alpha,
            "coaction_window_seconds": self.coaction_window,
            "kinds": list(self.kinds) if self.kinds is not None else "all",
            "accounts_in_bursts": kept.num_rows,
            "bursts": _count(con, f"(SELECT DISTINCT platform, run_start FROM {burst})"),
            "viral_objects": viral_objects(con, keys),
        }
        con.execute(f"DROP TABLE {windows}")
        return Evidence(
            edges=edges,
            events=events,
            signals=signals,
            notes=notes,
            temporary=(*keys.tables, burst, found),
        )


@dataclass(frozen=True, kw_only=True)
class SharedAdmins:
    """Pages and groups that share admins or moderators (``roles``).

    Edges join two venues of one platform (``weight`` = admins and moderators they
    share; ``score`` = the Jaccard similarity of their admin sets; ``events`` = one row
    per shared admin, ``object_id`` the admin's id, times the roles' ``since``).
    Signals: every admin or moderator of at least two venues (``value`` = venues,
    ``score`` = 1 - 1/venues). An account holding the role in more than
    ``max_venues`` venues (a platform's own support account, a social-media agency)
    pairs none of them; the notes count such accounts.

    >>> SharedAdmins().roles
    ('admin', 'moderator')
    """

    name: ClassVar[str] = "shared_admins"
    family: ClassVar[str] = "corroborating"
    reads: ClassVar[tuple[str, ...]] = ("roles", "accounts")
    roles: tuple[str, ...] = ("admin", "moderator")
    max_venues: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", tuple(self.roles))
        if not self.roles:
            raise ConfigError("shared_admins: roles must name at least one role")
        if self.max_venues < 2:
            raise ConfigError(
                f"shared_admins: max_venues must be at least 2, got {self.max_venues}"
            )

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        held, pairs = f"_admins_held_{n}", f"_admins_pairs_{n}"
        wanted = ", ".join(sql_literal(r) for r in self.roles)
        # One row per admin and venue: the earliest time the role is known from.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {held} AS
                WITH r AS (
                    SELECT r.platform, r.account_id, r.venue_id,
                           min(coalesce(r.since, v.created_at, a.created_at, {_UNKNOWN}))
                               AS since
                    FROM roles r
                    LEFT JOIN accounts v ON v.platform = r.platform AND v.account_id = r.venue_id
                    LEFT JOIN accounts a ON a.platform = r.platform
                                        AND a.account_id = r.account_id
                    WHERE r.role IN ({wanted}) AND r.account_id <> r.venue_id
                    GROUP BY r.platform, r.account_id, r.venue_id)
                SELECT *, count(*) OVER (PARTITION BY platform, account_id) AS venues,
                       count(*) OVER (PARTITION BY platform, venue_id) AS admins
                FROM r"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
                SELECT x.platform, x.venue_id AS venue_1, y.venue_id AS venue_2,
                       x.account_id AS admin, x.since AS since_1, y.since AS since_2,
                       x.admins AS admins_1, y.admins AS admins_2
                FROM {held} x JOIN {held} y
                  ON y.platform = x.platform AND y.account_id = x.account_id
                 AND x.venue_id < y.venue_id
                WHERE x.venues <= {int(self.max_venues)}"""
        )
        name = sql_literal(self.name)
        edges = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform AS platform_1,
                   venue_1 AS account_1, platform AS platform_2, venue_2 AS account_2,
                   count(*)::DOUBLE AS weight,
                   (count(*) / (any_value(admins_1) + any_value(admins_2) - count(*)))::DOUBLE
                       AS score,
                   count(*) AS events,
                   count(*) FILTER (WHERE since_1 < since_2) AS lead_1,
                   count(*) FILTER (WHERE since_2 < since_1) AS lead_2,
                   (median(abs(epoch_us(since_1) - epoch_us(since_2))) / 1e6)::DOUBLE
                       AS median_dt,
                   min(least(since_1, since_2)) AS first_ts,
                   max(greatest(since_1, since_2)) AS last_ts,
                   {_NULL_TEST}
            FROM {pairs} GROUP BY platform, venue_1, venue_2
            """
        )
        events = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform AS platform_1,
                   venue_1 AS account_1, platform AS platform_2, venue_2 AS account_2,
                   admin AS object_id, since_1 AS ts_1, since_2 AS ts_2,
                   venue_1 AS source_1, venue_2 AS source_2
            FROM {pairs}
            """
        )
        signals = con.sql(
            f"""
            WITH h AS (
                SELECT h.platform, h.account_id, h.since, coalesce(v.kind, 'venue') AS kind,
                       h.venues
                FROM {held} h
                LEFT JOIN accounts v ON v.platform = h.platform AND v.account_id = h.venue_id
                WHERE h.venues >= 2),
            k AS (SELECT platform, account_id, kind, count(*) AS c FROM h GROUP BY ALL)
            SELECT {name} AS detector, {name} AS layer, 'account' AS entity, h.platform,
                   h.account_id AS id, (1.0 - 1.0 / any_value(h.venues))::DOUBLE AS score,
                   any_value(h.venues)::DOUBLE AS value, NULL::VARCHAR AS related_id,
                   min(h.since) AS first_ts, max(h.since) AS last_ts,
                   'admin or moderator of ' || any_value(h.venues) || ' ' || h.platform
                       || ' venues (' || (SELECT string_agg(k.c || ' ' || k.kind, ', '
                           ORDER BY k.kind) FROM k WHERE k.platform = h.platform
                           AND k.account_id = h.account_id) || ')' AS detail
            FROM h GROUP BY h.platform, h.account_id
            """
        )
        notes: dict[str, Any] = {
            "roles": list(self.roles),
            "max_venues": self.max_venues,
            "accounts_over_cap": _count(
                con,
                f"(SELECT DISTINCT platform, account_id FROM {held} "
                f"WHERE venues > {int(self.max_venues)})",
            ),
        }
        return Evidence(
            edges=edges,
            events=events,
            signals=signals,
            notes=notes,
            temporary=(held, pairs),
        )


#: The writing system of a name, for word frequencies: the first non-Latin script
#: found, else Latin, else other.
_SCRIPTS = (
    "Arabic",
    "Devanagari",
    "Bengali",
    "Gurmukhi",
    "Cyrillic",
    "Greek",
    "Hebrew",
    "Han",
    "Hangul",
    "Thai",
    "Latin",
)
_SCRIPT = (
    "CASE "
    + " ".join(f"WHEN regexp_matches(key, '\\p{{{s}}}') THEN '{s}'" for s in _SCRIPTS)
    + " ELSE 'other' END"
)

# A handle in normal form: lower case, no leading '@'.
_HANDLE = "lower(nfc_normalize(trim(handle, '@ ')))"


@dataclass(frozen=True, kw_only=True)
class HandlePattern:
    """Handles made of a name and a run of digits (``ali_khan4821``), and accounts
    whose handles share the name part (the stem) with different digits.

    The stem is the handle before its final run of at least ``min_digits`` digits,
    without separators (``._-``), and must hold at least ``min_letters`` letters.
    Signals: every such account (``value`` = the length of its digit run, ``score`` =
    the share of its platform's handles with a shorter run or none: how unusual the run
    is there). Edges: accounts whose stems are equal (``weight`` = accounts holding
    the stem with digits; ``score`` = how unlikely it is that so many of the stem's
    holders carry a digit run so long at the rate all handles do: the binomial tail at
    each run length its holders show, the least times the lengths tried and the stems
    that could pair (Bonferroni), as ``-log10`` over 6, capped at 1. A common name held
    plain by many scores 0; ten accounts holding a stem only with digits, where a
    quarter of all handles carry digits, 0.5 among a thousand stems). A stem held with
    digits by more than ``max_stem`` accounts makes no edges (the pairs grow as the
    square; such stems are common names); the notes count them.

    >>> HandlePattern().min_digits
    2
    """

    name: ClassVar[str] = "handle_pattern"
    family: ClassVar[str] = "corroborating"
    reads: ClassVar[tuple[str, ...]] = ("accounts",)
    min_digits: int = 2
    min_letters: int = 3
    max_stem: int = 50

    def __post_init__(self) -> None:
        if self.min_digits < 1:
            raise ConfigError(
                f"handle_pattern: min_digits must be at least 1, got {self.min_digits}"
            )
        if self.min_letters < 1:
            raise ConfigError("handle_pattern: min_letters must be at least 1")
        if self.max_stem < 2:
            raise ConfigError(f"handle_pattern: max_stem must be at least 2, got {self.max_stem}")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        parts, stems = f"_handles_{n}", f"_handle_stems_{n}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {parts} AS
                WITH h AS (
                    SELECT platform, account_id, created_at,
                           regexp_extract({_HANDLE}, '^(.*?)([0-9]*)$', ['stem', 'digits'])
                               AS m
                    FROM accounts WHERE handle IS NOT NULL AND trim(handle, '@ ') <> '')
                SELECT platform, account_id, created_at,
                       regexp_replace(m.stem, '[._-]+', '', 'g') AS stem,
                       length(m.digits) AS digits
                FROM h"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {stems} AS
                SELECT stem, count(*) FILTER (WHERE digits >= {int(self.min_digits)}) AS k,
                       count(*) AS holders
                FROM {parts}
                WHERE length(regexp_replace(stem, '[^\\pL]', '', 'g')) >= {int(self.min_letters)}
                GROUP BY stem HAVING k >= 1"""
        )
        # How unlikely it is that so many of a stem's holders carry a digit run this
        # long, at the rate all handles do: the binomial tail at each run length the
        # stem's holders show, the least of them times the lengths tried, times the
        # stems that could pair (Bonferroni), as a score (1 at a million to one).
        levels = con.sql(
            f"""WITH lv AS (SELECT DISTINCT p.stem, p.digits AS length FROM {parts} p
                            SEMI JOIN {stems} s USING (stem)
                            WHERE p.digits >= {int(self.min_digits)}),
                rate AS (SELECT lv.length, (SELECT count(*) FILTER (WHERE digits >= lv.length)
                                            / count(*) FROM {parts}) AS r
                         FROM (SELECT DISTINCT length FROM lv) lv)
                SELECT lv.stem, count(*) FILTER (WHERE p.digits >= lv.length) AS k_l,
                       count(*) AS holders, any_value(rate.r) AS r,
                       count(*) OVER (PARTITION BY lv.stem) AS tried
                FROM lv JOIN {parts} p USING (stem) JOIN rate USING (length)
                GROUP BY lv.stem, lv.length"""
        ).fetchnumpy()
        tests = max(1, _count(con, f"(SELECT 1 FROM {stems} WHERE k >= 2)"))
        tail_p = bdtrc(
            np.asarray(levels["k_l"], dtype=np.int64) - 1,
            np.asarray(levels["holders"], dtype=np.int64),
            np.asarray(levels["r"], dtype=np.float64),
        )
        p_level = np.minimum(1.0, tail_p * np.asarray(levels["tried"], dtype=np.float64) * tests)
        con.register(
            f"_handle_arrow_{n}",
            pa.table(
                {
                    "stem": pa.array(levels["stem"], pa.string()),
                    "p": pa.array(p_level, pa.float64()),
                }
            ),
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {stems} AS
                SELECT s.*, coalesce(least(1.0, greatest(0.0,
                           -log10(greatest(c.p, 1e-300)) / 6.0)), 0.0) + 0.0 AS stem_score
                FROM {stems} s
                LEFT JOIN (SELECT stem, min(p) AS p FROM _handle_arrow_{n} GROUP BY stem) c
                USING (stem)"""
        )
        con.unregister(f"_handle_arrow_{n}")
        name = sql_literal(self.name)
        patterned = (
            f"(SELECT p.*, s.k, s.holders, s.stem_score FROM {parts} p JOIN {stems} s USING (stem) "
            f"WHERE p.digits >= {int(self.min_digits)})"
        )
        signals = con.sql(
            f"""
            WITH r AS (
                SELECT platform, account_id, created_at, digits, k,
                       -- Handles of the platform whose digit run is shorter (or none).
                       (count(*) OVER (PARTITION BY platform ORDER BY digits
                           RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS shorter,
                       count(*) OVER (PARTITION BY platform) AS handles, stem_ok
                FROM (SELECT p.*, s.k, s.stem IS NOT NULL AS stem_ok FROM {parts} p
                      LEFT JOIN {stems} s USING (stem)))
            SELECT {name} AS detector, {name} AS layer, 'account' AS entity, platform,
                   account_id AS id, (coalesce(shorter, 0) / handles)::DOUBLE AS score,
                   digits::DOUBLE AS value, NULL::VARCHAR AS related_id,
                   created_at AS first_ts, created_at AS last_ts,
                   'handle is a name and ' || digits || ' digits; ' || (k - 1)
                       || ' other accounts share the name part with digits' AS detail
            FROM r WHERE stem_ok AND digits >= {int(self.min_digits)}
            """
        )
        pairs = f"""
            SELECT x.platform AS platform_1, x.account_id AS account_1,
                   y.platform AS platform_2, y.account_id AS account_2, x.stem, x.k,
                   x.stem_score, coalesce(x.created_at, {_UNKNOWN}) AS ts_1,
                   coalesce(y.created_at, {_UNKNOWN}) AS ts_2
            FROM {patterned} x JOIN {patterned} y
              ON y.stem = x.stem AND (x.platform, x.account_id) < (y.platform, y.account_id)
            WHERE x.k <= {int(self.max_stem)}
        """
        edges = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform_1, account_1,
                   platform_2, account_2, k::DOUBLE AS weight, stem_score::DOUBLE AS score,
                   1::BIGINT AS events,
                   (ts_1 < ts_2)::BIGINT AS lead_1, (ts_2 < ts_1)::BIGINT AS lead_2,
                   (abs(epoch_us(ts_1) - epoch_us(ts_2)) / 1e6)::DOUBLE AS median_dt,
                   least(ts_1, ts_2) AS first_ts, greatest(ts_1, ts_2) AS last_ts,
                   {_NULL_TEST}
            FROM ({pairs})
            """
        )
        events = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform_1, account_1,
                   platform_2, account_2, stem AS object_id, ts_1, ts_2,
                   account_1 AS source_1, account_2 AS source_2
            FROM ({pairs})
            """
        )
        big = con.sql(
            f"SELECT count(*), coalesce(sum(k), 0) FROM {stems} WHERE k > {int(self.max_stem)}"
        ).fetchone()
        notes: dict[str, Any] = {
            "min_digits": self.min_digits,
            "min_letters": self.min_letters,
            "max_stem": self.max_stem,
            "stems_over_cap": int(big[0]) if big else 0,
            "accounts_in_stems_over_cap": int(big[1]) if big else 0,
        }
        return Evidence(
            edges=edges,
            events=events,
            signals=signals,
            notes=notes,
            temporary=(parts, stems),
        )


def _affix_sql(tokens: str) -> str:
    """The handle's separated tokens without one known suffix and one known prefix."""
    suffixes = ", ".join(sql_literal(a) for a in AFFIXES["suffix"])
    prefixes = ", ".join(sql_literal(a) for a in AFFIXES["prefix"])
    no_suffix = (
        f"CASE WHEN len({tokens}) > 1 AND {tokens}[-1] IN ({suffixes}) "
        f"THEN {tokens}[1:-2] ELSE {tokens} END"
    )
    return (
        f"(SELECT CASE WHEN len(t) > 1 AND t[1] IN ({prefixes}) THEN t[2:] ELSE t END "
        f"FROM (SELECT {no_suffix} AS t))"
    )


@dataclass(frozen=True, kw_only=True)
class CrossPlatformName:
    """The same handle or display name on two platforms: one operator's accounts.

    Handles compare in normal form (lower case, separators ``._-`` removed, one
    separated affix such as ``_official`` or ``.pk`` dropped, see :data:`AFFIXES`) and
    must keep at least ``min_handle`` characters; names compare case-folded with
    punctuation as spaces and must keep at least ``min_name`` characters. A handle or
    name held by more than ``max_holders`` accounts on either platform says little
    (common names) and pairs nothing; the others pair every holder on one platform with
    every holder on the other. ``weight`` = the keys matched (handle, name: 1 or 2);
    ``score`` = 1 - ∏(1 - s) over them, where a key's strength s is

    * for a handle ending in three or more digits (random digits make it specific):
      1/(f - 1), f the accounts on any platform holding it (1 when only the two do);
    * for any other key: 1/(1 + max(c, f - 2)), f the accounts holding the name, or
      any handle with the same letters whatever digits follow (``ahmedkhan`` counts
      ``ahmed_khan92``), and c the holders chance alone would give it: the accounts
      times the product of its words' shares among keys of the same script (a name of
      two common words is common even when few in the case hold it), the larger of
      the figures for the account's name and handle (a handle spells the name).

    ``events`` say which key matched (``object_id`` ``handle`` or ``name``; never the
    name itself).

    >>> CrossPlatformName().max_holders
    3
    """

    name: ClassVar[str] = "cross_platform"
    family: ClassVar[str] = "corroborating"
    reads: ClassVar[tuple[str, ...]] = ("accounts",)
    max_holders: int = 3
    min_handle: int = 5
    min_name: int = 5

    def __post_init__(self) -> None:
        if self.max_holders < 1:
            raise ConfigError(
                f"cross_platform: max_holders must be at least 1, got {self.max_holders}"
            )
        if self.min_handle < 1 or self.min_name < 1:
            raise ConfigError("cross_platform: min_handle and min_name must be at least 1")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        keys, matched = f"_names_keys_{n}", f"_names_matched_{n}"
        tokens = f"string_split_regex({_HANDLE}, '[._-]+')"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {keys} AS
                WITH k AS (
                    SELECT platform, account_id, created_at, 'handle' AS key_kind,
                           array_to_string({_affix_sql(tokens)}, ' ') AS spaced
                    FROM accounts WHERE handle IS NOT NULL
                    UNION ALL
                    SELECT platform, account_id, created_at, 'name',
                           trim(regexp_replace(lower(nfc_normalize(name)), '[^\\pL\\pM\\pN]+', ' ',
                                'g'))
                    FROM accounts WHERE name IS NOT NULL),
                d AS (SELECT DISTINCT platform, account_id, created_at, key_kind,
                             CASE WHEN key_kind = 'handle' THEN replace(spaced, ' ', '')
                                  ELSE spaced END AS key,
                             list_distinct(regexp_extract_all(spaced, '[\\pL\\pM]+')) AS words
                      FROM k),
                f AS (SELECT *,
                             key_kind = 'handle' AND regexp_matches(key, '[0-9]{{3}}$')
                                 AS specific,
                             CASE WHEN key_kind = 'handle'
                                  THEN regexp_replace(key, '[0-9]+$', '') ELSE key END
                                 AS stripped,
                             {_SCRIPT} AS script
                      FROM d
                      WHERE (key_kind = 'handle' AND length(key) >= {int(self.min_handle)})
                         OR (key_kind = 'name' AND length(key) >= {int(self.min_name)}))
                SELECT *, count(*) OVER (PARTITION BY key_kind, key, platform) AS holders,
                       CASE WHEN specific THEN count(*) OVER (PARTITION BY key_kind, key)
                            ELSE count(*) OVER (PARTITION BY key_kind, stripped) END AS family,
                       count(*) OVER (PARTITION BY key_kind, script) AS population
                FROM f"""
        )
        # How many accounts would hold each name or handle by chance, were its words
        # drawn independently at the rates they occur among the keys of its script
        # (names cluster by language): common first and family names make a name
        # common even when few in the case hold it.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {keys} AS
                WITH w AS (SELECT platform, account_id, key_kind, script, key,
                                  unnest(words) AS word
                           FROM {keys}),
                r AS (SELECT key_kind, script, word, count(*) AS holding FROM w GROUP BY ALL),
                e AS (SELECT w.platform, w.account_id, w.key_kind, w.key,
                             exp(sum(ln(r.holding))) AS product, count(*) AS n_words
                      FROM w JOIN r USING (key_kind, script, word)
                      GROUP BY w.platform, w.account_id, w.key_kind, w.key)
                SELECT *, max(chance) OVER (PARTITION BY platform, account_id) AS common
                FROM (SELECT k.*,
                             coalesce((k.population - 1)
                                 * (e.product / pow(k.population, e.n_words)), 0.0) AS chance
                      FROM {keys} k LEFT JOIN e USING (platform, account_id, key_kind, key))"""
        )
        # A handle ending in 3 or more digits stands for itself (random digits); any
        # other key is as strong as it is rare, by count and by its words, and by the
        # words of the account's other key (a handle spells the name it comes from).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {matched} AS
                SELECT x.platform AS platform_1, x.account_id AS account_1,
                       y.platform AS platform_2, y.account_id AS account_2, x.key_kind,
                       CASE WHEN x.specific THEN 1.0 / greatest(x.family - 1, 1)
                            ELSE 1.0 / (1.0 + greatest(x.common, y.common, x.family - 2)) END
                           AS strength,
                       coalesce(x.created_at, {_UNKNOWN}) AS ts_1,
                       coalesce(y.created_at, {_UNKNOWN}) AS ts_2
                FROM {keys} x JOIN {keys} y
                  ON y.key_kind = x.key_kind AND y.key = x.key AND y.platform > x.platform
                WHERE x.holders <= {int(self.max_holders)}
                  AND y.holders <= {int(self.max_holders)}"""
        )
        name = sql_literal(self.name)
        edges = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform_1, account_1,
                   platform_2, account_2, count(*)::DOUBLE AS weight,
                   max(strength)::DOUBLE AS score,
                   count(*) AS events,
                   count(*) FILTER (WHERE ts_1 < ts_2) AS lead_1,
                   count(*) FILTER (WHERE ts_2 < ts_1) AS lead_2,
                   (abs(epoch_us(any_value(ts_1)) - epoch_us(any_value(ts_2))) / 1e6)::DOUBLE
                       AS median_dt,
                   least(min(ts_1), min(ts_2)) AS first_ts,
                   greatest(max(ts_1), max(ts_2)) AS last_ts,
                   {_NULL_TEST}
            FROM {matched} GROUP BY platform_1, account_1, platform_2, account_2
            """
        )
        events = con.sql(
            f"""
            SELECT {name} AS detector, {name} AS layer, platform_1, account_1,
                   platform_2, account_2, key_kind AS object_id, ts_1, ts_2,
                   account_1 AS source_1, account_2 AS source_2
            FROM {matched}
            """
        )
        common = con.sql(
            f"SELECT key_kind, count(DISTINCT key) FROM {keys} "
            f"WHERE holders > {int(self.max_holders)} GROUP BY key_kind ORDER BY key_kind"
        ).fetchall()
        notes: dict[str, Any] = {
            "max_holders": self.max_holders,
            "keys_over_cap": {str(kind): int(c) for kind, c in common},
        }
        return Evidence(
            edges=edges,
            events=events,
            signals=empty(con, "signals"),
            notes=notes,
            temporary=(keys, matched),
        )
