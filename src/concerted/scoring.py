"""A coordination score and a recommendation for every report, online and in batch.

The scorer looks at one report at a time and only at what came before it (its
*causal features*), so that the same numbers come out whether reports are scored as
they arrive (:class:`OnlineScorer`, river's shape: ``score_one`` then ``learn_one``)
or all at once over a table (:func:`score_reports`, vectorised SQL and numpy). Both
take reports in the order ``(ts, platform, report_id)``; fed in that order, the online
scorer gives the batch scores (a test checks it on random streams).

**Features** of report *x* by reporter *r* on target *t* at time *ts*, each from the
reports before *x* only:

``coreport``
    Of the ``recent`` latest reports on *t* within ``window`` seconds before *x*, the
    distinct other reporters *q* who had already co-reported at least ``min_shared``
    distinct targets with *r* (two reports of one target within ``window`` and among
    its ``recent`` latest count as co-reporting). *a* such reporters give
    ``1 - exp(-a / 2)``. This is the signal that tells a brigade (the same people
    again and again) from a viral spike (many people, once each).
``automation``
    The longest of the reporter's last ``gaps`` gaps between reports (the one ending at
    *x* included; at least two needed): ``1 / (1 + (gap / fast_gap)^4)``, near 1 for
    sub-human clockwork, near 0 for a person.
``pace``
    The reporter's reports in the ``pace_window`` before *x*: ``1 - exp(-n / 10)``.
``burst``
    Reports on *t* in the ``burst_window`` before *x* against its own baseline (the
    reports in the ``baseline_window`` before that, scaled, plus one): the Poisson
    distribution function at the recent count.
``young_account``
    ``exp(-age / young_days)`` of the reporter's account age at *ts*, when
    ``created_at`` is known; 0 otherwise.
``direct_channel``
    1 when the report came in through a channel of ``direct_channels`` (a link straight
    into the report flow, an API), else 0.
``rare_client``
    ``exp(-n / 50)`` where *n* is the earlier reports with the same client string; 0
    when the client is unknown.
``reputation``
    Rejected over (upheld + rejected + 2) among the reporter's earlier reports whose
    outcome was known by then: as S5 does, an outcome counts from ``decision_lag``
    seconds after the report it concerns was filed (the contract has no decision
    time), for later reports of the reporter.

The **score** is a noisy-or: ``1 - prod(1 - weight_f * feature_f)``, in [0, 1]. A
**recommendation** follows: ``discount`` when the score reaches ``discount``;
``review`` (hold the target for a human before report-driven enforcement) when it
reaches ``review``, or when the target drew a discounted report in the ``hold`` seconds
before; ``count`` otherwise. :mod:`concerted.brigades` adds what only hindsight knows
(the brigades found in the whole case) to the batch scores.

>>> from datetime import datetime, UTC
>>> scorer = OnlineScorer(ScoreSettings())
>>> report = {"report_id": "r1", "platform": "facebook", "reporter_id": "a",
...           "target_id": "t", "ts": datetime(2020, 6, 1, tzinfo=UTC)}
>>> scorer.score_one(report)
0.0
>>> scorer.learn_one(report)
>>> scorer.seen
1
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from concerted.config import FEATURES, ScoreSettings
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = [
    "FEATURES",
    "RECOMMENDATIONS",
    "FeatureTable",
    "OnlineScorer",
    "ScoreSettings",
    "combine",
    "recommend",
    "score_reports",
]

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A feature this strong is listed in a report's ``signals``.
_SHOWN = 0.5


#: The integer facts each feature is computed from, one array per name. Counts and
#: microseconds only, so that online and batch compute them exactly alike.
FeatureTable = Mapping[str, npt.NDArray[Any]]

_RAW: tuple[str, ...] = (
    "co_reporters",  # distinct recent co-reporters with >= min_shared shared targets
    "gap_count",  # gaps available (0 .. gaps)
    "gap_max_us",  # longest of them
    "pace",  # reporter's reports in pace_window before
    "recent",  # reports on the target in burst_window before
    "baseline",  # reports on the target in the baseline_window before that
    "age_us",  # account age at the report (-1 when unknown)
    "direct",  # 1 when the channel is direct
    "client_seen",  # earlier reports with the same client (-1 when unknown)
    "upheld",  # reporter's earlier reports upheld
    "rejected",  # reporter's earlier reports rejected
)


def features(raw: FeatureTable, settings: ScoreSettings) -> dict[str, npt.NDArray[np.float64]]:
    """Each feature in [0, 1] from the integer facts (see the module's notes)."""
    s = settings
    n_co = np.asarray(raw["co_reporters"], dtype=np.float64)
    gap_count = np.asarray(raw["gap_count"], dtype=np.int64)
    gap = np.asarray(raw["gap_max_us"], dtype=np.float64) / _US
    pace = np.asarray(raw["pace"], dtype=np.float64)
    recent = np.asarray(raw["recent"], dtype=np.float64)
    baseline = np.asarray(raw["baseline"], dtype=np.float64)
    age_us = np.asarray(raw["age_us"], dtype=np.int64)
    client_seen = np.asarray(raw["client_seen"], dtype=np.int64)
    upheld = np.asarray(raw["upheld"], dtype=np.float64)
    rejected = np.asarray(raw["rejected"], dtype=np.float64)

    expected = (baseline + 1.0) * s.burst_window / (s.baseline_window - s.burst_window)
    burst = np.where(recent > 0, special.pdtr(np.maximum(recent - 1, 0), expected), 0.0)
    age_days = np.maximum(age_us, 0) / _DAY_US
    return {
        "coreport": 1.0 - np.exp(-n_co / 2.0),
        "automation": np.where(gap_count >= 2, 1.0 / (1.0 + (gap / s.fast_gap) ** 4), 0.0),
        "pace": 1.0 - np.exp(-pace / 10.0),
        "burst": burst,
        "young_account": np.where(age_us >= 0, np.exp(-age_days / s.young_days), 0.0),
        "direct_channel": np.asarray(raw["direct"], dtype=np.float64),
        "rare_client": np.where(client_seen >= 0, np.exp(-np.maximum(client_seen, 0) / 50.0), 0.0),
        "reputation": rejected / (upheld + rejected + 2.0),
    }


def combine(values: Mapping[str, npt.NDArray[np.float64]], settings: ScoreSettings) -> Any:
    """The noisy-or of the weighted features: the score in [0, 1].

    >>> s = ScoreSettings()
    >>> one = {f: np.array([0.0]) for f in FEATURES}
    >>> float(combine(one | {"coreport": np.array([1.0])}, s)[0])
    0.9
    """
    keep = np.ones_like(next(iter(values.values())), dtype=np.float64)
    for name, weight in settings.weights.items():
        keep = keep * (1.0 - weight * values[name])
    return np.clip(1.0 - keep, 0.0, 1.0)


def recommend(
    score: npt.NDArray[np.float64], held: npt.NDArray[np.bool_], settings: ScoreSettings
) -> npt.NDArray[np.str_]:
    """``discount``, ``review`` or ``count`` for each score; ``held`` marks reports on a
    target that drew a discounted report within ``hold`` before.

    >>> recommend(np.array([0.9, 0.4, 0.1, 0.1]), np.array([0, 0, 0, 1], bool),
    ...           ScoreSettings()).tolist()
    ['discount', 'review', 'count', 'review']
    """
    return np.asarray(RECOMMENDATIONS)[_recommendation_codes(score, held, settings)]


#: The recommendations, in the order of their codes.
RECOMMENDATIONS: tuple[str, str, str] = ("count", "review", "discount")


def _recommendation_codes(
    score: npt.NDArray[np.float64], held: npt.NDArray[np.bool_], settings: ScoreSettings
) -> npt.NDArray[np.int64]:
    return np.where(
        score >= settings.discount, 2, np.where((score >= settings.review) | held, 1, 0)
    ).astype(np.int64)


def _signals(values: Mapping[str, npt.NDArray[np.float64]]) -> pa.Array[Any]:
    """For each report, the names of the features at or above 0.5, as a list column."""
    shown = np.stack([values[name] >= _SHOWN for name in FEATURES], axis=1)
    offsets = np.concatenate([[0], np.cumsum(shown.sum(axis=1))]).astype(np.int32)
    names = pa.array(FEATURES, pa.string()).take(np.nonzero(shown)[1].astype(np.int64))
    lists: pa.Array[Any] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), names)
    return lists


def _pair(platform: str, a: str, b: str) -> tuple[str, str, str]:
    """The key of an unordered reporter pair."""
    return (platform, a, b) if a <= b else (platform, b, a)


def _micros(ts: Any) -> int:
    """Microseconds since the epoch of a timezone-aware datetime (or an int, as is)."""
    if isinstance(ts, int):
        return ts
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise ConfigError(f"a report's time must be a timezone-aware datetime, got {ts!r}")
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


class OnlineScorer:
    """Scores reports one at a time, as they arrive (river's ``score_one``, then
    ``learn_one``).

    A report is a mapping with ``report_id``, ``platform``, ``reporter_id``,
    ``target_id``, ``ts`` (timezone-aware) and, when known, ``channel``, ``client``,
    ``outcome`` and ``reporter_created_at``. State grows with the reporter pairs seen.
    """

    def __init__(self, settings: ScoreSettings | None = None) -> None:
        self.settings = settings or ScoreSettings()
        s = self.settings
        self.seen = 0
        self._recent_reports: dict[tuple[str, str], deque[tuple[int, str]]] = {}
        self._target_times: dict[tuple[str, str], deque[int]] = {}
        self._reporter_times: dict[tuple[str, str], deque[int]] = {}
        self._pace_window = round(s.pace_window * _US)
        self._pairs: dict[tuple[str, str, str], set[str]] = {}
        self._clients: Counter[tuple[str, str]] = Counter()
        # Per reporter: outcomes known by now (upheld, rejected), and those still
        # waiting for ``decision_lag`` to pass (time, 0 upheld or 1 rejected).
        self._outcomes: dict[tuple[str, str], list[int]] = {}
        self._pending: dict[tuple[str, str], deque[tuple[int, int]]] = {}
        self._discounted: dict[tuple[str, str], deque[int]] = {}
        self._cache: tuple[int, Any, tuple[str, ...], dict[str, float], float] | None = None

    def _co_reporters(self, report: Mapping[str, Any], t: int) -> tuple[str, ...]:
        platform, reporter = str(report["platform"]), str(report["reporter_id"])
        recent = self._recent_reports.get((platform, str(report["target_id"])), ())
        window = round(self.settings.window * _US)
        return tuple(sorted({q for ty, q in recent if t - ty <= window and q != reporter}))

    def _evaluate(self, report: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, float]]:
        s = self.settings
        cached = self._cache
        if cached is not None and cached[0] == self.seen and cached[1] is report:
            return cached[2], cached[3]
        platform = str(report["platform"])
        reporter = (platform, str(report["reporter_id"]))
        target = (platform, str(report["target_id"]))
        t = _micros(report["ts"])
        others = self._co_reporters(report, t)
        co = sum(
            len(self._pairs.get(_pair(platform, reporter[1], q), ())) >= s.min_shared
            for q in others
        )
        times = self._reporter_times.get(reporter, deque())
        last = [*list(times)[-s.gaps :], t]
        gap_list = [b - a for a, b in zip(last, last[1:], strict=False)]
        pace_from = t - self._pace_window
        burst_us = round(s.burst_window * _US)
        base_us = round(s.baseline_window * _US)
        target_times = self._target_times.get(target, deque())
        recent = sum(1 for ty in target_times if ty >= t - burst_us)
        baseline = sum(1 for ty in target_times if t - base_us <= ty < t - burst_us)
        created = report.get("reporter_created_at")
        client = report.get("client")
        known = list(self._outcomes.get(reporter, [0, 0]))
        lag = round(s.decision_lag * _US)
        for ty, code in self._pending.get(reporter, ()):
            if ty < t - lag:
                known[code] += 1
        upheld, rejected = known
        raw = {
            "co_reporters": co,
            "gap_count": len(gap_list),
            "gap_max_us": max(gap_list, default=0),
            "pace": sum(1 for ty in times if ty >= pace_from),
            "recent": recent,
            "baseline": baseline,
            "age_us": t - _micros(created) if created is not None else -1,
            "direct": int(report.get("channel") in s.direct_channels),
            "client_seen": self._clients[(platform, str(client))] if client is not None else -1,
            "upheld": upheld,
            "rejected": rejected,
        }
        arrays = {k: np.asarray([v]) for k, v in raw.items()}
        values = {k: float(v[0]) for k, v in features(arrays, s).items()}
        self._cache = (self.seen, report, others, values, 0.0)
        return others, values

    def features_one(self, report: Mapping[str, Any]) -> dict[str, float]:
        """The report's features, each in [0, 1], from the reports learnt so far."""
        return dict(self._evaluate(report)[1])

    def score_one(self, report: Mapping[str, Any]) -> float:
        """The report's coordination score in [0, 1], from the reports learnt so far."""
        values = self._evaluate(report)[1]
        arrays = {k: np.asarray([v]) for k, v in values.items()}
        return float(combine(arrays, self.settings)[0])

    def held(self, report: Mapping[str, Any]) -> bool:
        """Whether the report's target drew a discounted report in ``hold`` before it."""
        t = _micros(report["ts"])
        times = self._discounted.get((str(report["platform"]), str(report["target_id"])), ())
        return any(t - ty <= round(self.settings.hold * _US) for ty in times)

    def recommend_one(self, report: Mapping[str, Any]) -> str:
        """``count``, ``review`` or ``discount`` for the report, before learning it."""
        score = np.asarray([self.score_one(report)])
        return str(recommend(score, np.asarray([self.held(report)]), self.settings)[0])

    def learn_one(self, report: Mapping[str, Any]) -> None:
        """Add the report to what later reports are scored against."""
        s = self.settings
        score = self.score_one(report)
        others, _ = self._evaluate(report)
        platform = str(report["platform"])
        reporter_id = str(report["reporter_id"])
        reporter = (platform, reporter_id)
        target_id = str(report["target_id"])
        target = (platform, target_id)
        t = _micros(report["ts"])
        for q in others:
            self._pairs.setdefault(_pair(platform, reporter_id, q), set()).add(target_id)
        self._recent_reports.setdefault(target, deque(maxlen=s.recent)).append((t, reporter_id))
        base_us = round(s.baseline_window * _US)
        target_times = self._target_times.setdefault(target, deque())
        target_times.append(t)
        while target_times and target_times[0] < t - base_us:
            target_times.popleft()
        keep = max(self._pace_window, 1)
        times = self._reporter_times.setdefault(reporter, deque())
        times.append(t)
        while len(times) > s.gaps and times[0] < t - keep:
            times.popleft()
        client = report.get("client")
        if client is not None:
            self._clients[(platform, str(client))] += 1
        outcome = report.get("outcome")
        pending = self._pending.setdefault(reporter, deque())
        if outcome in ("upheld", "rejected"):
            pending.append((t, 0 if outcome == "upheld" else 1))
        lag = round(s.decision_lag * _US)
        while pending and pending[0][0] < t - lag:
            _, code = pending.popleft()
            self._outcomes.setdefault(reporter, [0, 0])[code] += 1
        if score >= s.discount:
            held = self._discounted.setdefault(target, deque())
            held.append(t)
            while held and held[0] < t - round(s.hold * _US):
                held.popleft()
        self.seen += 1
        self._cache = None

    def learn_outcome(
        self, report: Mapping[str, Any], outcome: str | None, previous: str | None = None
    ) -> None:
        """A decision on a report learnt earlier: its outcome is now ``outcome``
        (``upheld``, ``rejected`` or None), where it was ``previous`` (the outcome it was
        learnt with, or set to by the last call). From then on the reporter's later
        reports count it as :func:`score_reports` counts the ``outcome`` column: from
        ``decision_lag`` after the report's own time."""
        codes = {"upheld": 0, "rejected": 1}
        reporter = (str(report["platform"]), str(report["reporter_id"]))
        t = _micros(report["ts"])
        if previous == outcome:
            return
        if previous in codes:
            item = (t, codes[previous])
            pending = self._pending.get(reporter)
            if pending is not None and item in pending:
                pending.remove(item)
            else:
                counts = self._outcomes.get(reporter)
                if counts is not None and counts[item[1]] > 0:
                    counts[item[1]] -= 1
        if outcome in codes:
            pending = self._pending.setdefault(reporter, deque())
            at = len(pending)
            while at > 0 and pending[at - 1][0] > t:
                at -= 1
            pending.insert(at, (t, codes[outcome]))
        self._cache = None


def _prior_within(partition: str, width_us: int, flag: str | None = None) -> str:
    """SQL: over ``partition``, the earlier rows (order ``i``) at most ``width_us``
    before this row (by ``t``), counted, or with ``flag`` summed. Rows come in ``(t,
    i)`` order, so the earlier rows are all those of lower ``i``; those more than the
    width before are exactly the rows with ``t`` below ``t - width``."""
    value = "1" if flag is None else flag
    before = (
        f"sum({value}) OVER (PARTITION BY {partition} ORDER BY i "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    )
    older = (
        f"sum({value}) OVER (PARTITION BY {partition} ORDER BY t "
        f"RANGE BETWEEN UNBOUNDED PRECEDING AND {width_us + 1} PRECEDING)"
    )
    return f"(coalesce({before}, 0) - coalesce({older}, 0))"


def _created(accounts: str | None) -> tuple[str, str]:
    """SQL: the reporter's creation time in microseconds (an expression over the join)
    and the join of report ``r`` to ``accounts`` that gives it."""
    if accounts is None:
        return "NULL::BIGINT", ""
    return "epoch_us(a.created_at)", (
        f"LEFT JOIN (SELECT platform, account_id, any_value(created_at) AS created_at "
        f"FROM {accounts} GROUP BY ALL) a "
        "ON a.platform = r.platform AND a.account_id = r.reporter_id"
    )


def _codes(column: pa.ChunkedArray[Any]) -> tuple[npt.NDArray[np.int64], int]:
    """Each value's number in the column's dictionary (from 0), and how many there are.

    >>> codes, size = _codes(pa.chunked_array([["b", "a"], ["b", "c"]]))
    >>> codes.tolist(), size
    ([0, 1, 0, 2], 3)
    """
    encoded: Any = pc.dictionary_encode(column)
    if encoded.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), 0
    # One dictionary grows over the chunks: the last chunk's holds every value.
    parts = [np.asarray(chunk.indices.to_numpy(), dtype=np.int64) for chunk in encoded.chunks]
    return np.concatenate(parts), len(encoded.chunks[-1].dictionary)


def _base_fast(
    con: duckdb.DuckDBPyConnection,
    reports: str,
    accounts: str | None,
    direct_channels: tuple[str, ...],
) -> tuple[pa.Table, dict[str, npt.NDArray[np.int64]]]:
    """What :func:`_base_tables` gives, from one sorted scan and no table: the reports'
    ids in scoring order (``report_id, platform, reporter_id, target_id, ts``) and
    their integer facts as arrays (``t, r, g, c, d, o, age_us``; ``c`` -1 where the
    client is not known). Reporters and targets are numbered by dictionary-encoding
    their ids, with the platform's number; clients by a join to their distinct values
    (a few, so their long strings never leave DuckDB)."""
    created, join = _created(accounts)
    direct = ", ".join(sql_literal(c) for c in direct_channels) or "NULL"
    table = con.sql(
        f"""SELECT r.report_id, r.platform, r.reporter_id, r.target_id, r.ts,
                   epoch_us(r.ts) AS t, coalesce(ck.c, -1)::BIGINT AS c,
                   coalesce(r.channel::VARCHAR IN ({direct}), false)::BIGINT AS d,
                   CASE r.outcome::VARCHAR WHEN 'upheld' THEN 1 WHEN 'rejected' THEN 2
                        ELSE 0 END::BIGINT AS o,
                   CASE WHEN {created} IS NULL THEN -1
                        ELSE epoch_us(r.ts) - {created} END::BIGINT AS age_us
            FROM {reports} r {join}
            LEFT JOIN (SELECT platform, client, (row_number() OVER ())::BIGINT AS c
                       FROM (SELECT DISTINCT platform, client::VARCHAR AS client
                             FROM {reports} WHERE client IS NOT NULL)) ck
              ON ck.platform = r.platform AND ck.client = r.client::VARCHAR
            ORDER BY r.ts, r.platform, r.report_id"""
    ).to_arrow_table()
    arrays = {
        name: np.asarray(table.column(name).to_numpy(), dtype=np.int64)
        for name in ("t", "c", "d", "o", "age_us")
    }
    platform, _ = _codes(table.column("platform"))
    # (platform, id) as one number: the platform's times the ids' count, plus the id's.
    for key, column in (("r", "reporter_id"), ("g", "target_id")):
        values, size = _codes(table.column(column))
        arrays[key] = platform * size + values
    return table.select(["report_id", "platform", "reporter_id", "target_id", "ts"]), arrays


def _base_tables(
    con: duckdb.DuckDBPyConnection,
    reports: str,
    accounts: str | None,
    direct_channels: tuple[str, ...],
    name: str,
) -> None:
    """``{name}``: every report in scoring order ``i`` with its ids; ``{name}_keys``: the
    same rows as integers only (time ``t`` in microseconds, reporter ``r``, target
    ``g``, client ``c``, direct entry ``d``, outcome ``o``: 1 upheld, 2 rejected, 0
    not known; ``age_us``), which every window runs on."""
    created, join = _created(accounts)
    direct = ", ".join(sql_literal(c) for c in direct_channels) or "NULL"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
            SELECT (row_number() OVER (ORDER BY r.ts, r.platform, r.report_id))::BIGINT AS i,
                   r.report_id, r.platform, r.reporter_id, r.target_id, r.ts,
                   r.client::VARCHAR AS client,
                   coalesce(r.channel::VARCHAR IN ({direct}), false)::INTEGER AS d,
                   CASE r.outcome::VARCHAR WHEN 'upheld' THEN 1 WHEN 'rejected' THEN 2
                        ELSE 0 END::INTEGER AS o,
                   CASE WHEN {created} IS NULL THEN -1
                        ELSE epoch_us(r.ts) - {created} END::BIGINT AS age_us
            FROM {reports} r {join}"""
    )
    # Integer keys: which number an id gets does not matter, only that it is one.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name}_keys AS
            WITH rk AS (SELECT platform, reporter_id, (row_number() OVER ())::BIGINT AS r
                        FROM (SELECT DISTINCT platform, reporter_id FROM {name})),
                 gk AS (SELECT platform, target_id, (row_number() OVER ())::BIGINT AS g
                        FROM (SELECT DISTINCT platform, target_id FROM {name})),
                 ck AS (SELECT platform, client, (row_number() OVER ())::BIGINT AS c
                        FROM (SELECT DISTINCT platform, client FROM {name}
                              WHERE client IS NOT NULL))
            SELECT b.i, epoch_us(b.ts) AS t, rk.r, gk.g, ck.c, b.d, b.o, b.age_us
            FROM {name} b
            JOIN rk ON rk.platform = b.platform AND rk.reporter_id = b.reporter_id
            JOIN gk ON gk.platform = b.platform AND gk.target_id = b.target_id
            LEFT JOIN ck ON ck.platform = b.platform AND ck.client = b.client"""
    )


def _co_reporters_sql(keys: str, s: ScoreSettings) -> str:
    """SQL: ``i, co_reporters`` for the reports with any, as the online scorer counts
    them (see :class:`OnlineScorer`)."""
    window = round(s.window * _US)
    k = s.recent
    return f"""
    WITH rt AS (
        SELECT i, g, r, t,
               row_number() OVER w AS k, lag(t) OVER w AS t_prev, lead(t) OVER w AS t_next
        FROM {keys} WINDOW w AS (PARTITION BY g ORDER BY i)),
    xs AS (SELECT i, g, r, t, k, unnest([k // {k} - 1, k // {k}]) AS b FROM rt
           WHERE t - t_prev <= {window}),
    ys AS (SELECT g, r, t, k, k // {k} AS b FROM rt WHERE t_next - t <= {window}),
    e AS (
        SELECT DISTINCT x.i, x.g, x.r, y.r AS q
        FROM xs x JOIN ys y ON y.g = x.g AND y.b = x.b
        WHERE y.k < x.k AND y.k >= x.k - {k} AND x.t - y.t <= {window} AND y.r <> x.r),
    p AS (
        SELECT i, least(r, q) AS a, greatest(r, q) AS z,
               row_number() OVER (PARTITION BY least(r, q), greatest(r, q), g ORDER BY i) = 1
                   AS first
        FROM e),
    s AS (
        SELECT i, coalesce(sum(first::INTEGER) OVER (
                   PARTITION BY a, z ORDER BY i
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS shared
        FROM p)
    SELECT i, count(*) FILTER (WHERE shared >= {s.min_shared}) AS co_reporters
    FROM s GROUP BY i"""


class _Partitions:
    """Rows in scoring order (``i``) grouped by an integer key, each group in scoring
    order: one stable sort, from which every windowed count over the key is a cumulative
    sum and a binary search. Times are nondecreasing in scoring order, so within a group
    the rows before a row are exactly its earlier reports, and those at most ``width``
    before it are a contiguous run ending at it.

    >>> p = _Partitions(np.array([1, 2, 1, 1]), np.array([0, 5, 10, 20]))
    >>> p.prior_within(10).tolist()
    [0, 0, 1, 1]
    >>> p.position().tolist()
    [0, 0, 1, 2]
    """

    def __init__(self, key: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> None:
        n = key.size
        # Times come nondecreasing: their distinct values and each one's rank need no
        # sort (numpy's unique hashes, many times slower here).
        change = np.ones(n, dtype=bool)
        change[1:] = t[1:] != t[:-1]
        self.times = t[change]
        self._t = t
        self.order = np.argsort(key, kind="stable")
        k = key[self.order]
        self.t = t[self.order]
        begins = np.ones(n, dtype=bool)
        begins[1:] = k[1:] != k[:-1]
        index = np.arange(n, dtype=np.int64)
        self.first = np.maximum.accumulate(np.where(begins, index, 0)) if n else index
        self.index = index
        # (group, time rank) as one nondecreasing integer, for binary searches by time
        # within a group; time ranks keep it well inside 64 bits.
        self.span = np.int64(self.times.size + 1)
        self.group = (np.cumsum(begins, dtype=np.int64) - 1) * self.span
        rank = np.cumsum(change, dtype=np.int64) - 1
        self.composite = self.group + rank[self.order]

    def _unsorted(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = np.empty_like(values)
        out[self.order] = values
        return out

    def position(self) -> npt.NDArray[np.int64]:
        """Earlier rows of each row's group."""
        return self._unsorted(self.index - self.first)

    def _older(self, width_us: int) -> npt.NDArray[np.int64]:
        """Sorted order: the group's rows more than ``width_us`` before each row, which
        are those at or below ``t - width_us - 1``, a prefix of the group."""
        # Searched in scoring order, where the times (and so the queries) are sorted.
        rank = np.searchsorted(self.times, self._t - (width_us + 1), side="right") - 1
        ends = np.searchsorted(self.composite, self.group + rank[self.order], side="right")
        return ends.astype(np.int64)

    def prior_within(
        self, width_us: int, flag: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.int64]:
        """Earlier rows of the group at most ``width_us`` before each row, counted, or
        with ``flag`` summed (as :func:`_prior_within` in SQL)."""
        ends = self._older(width_us)
        if flag is None:
            return self._unsorted(self.index - ends)
        total = np.concatenate([[0], np.cumsum(flag[self.order], dtype=np.int64)])
        return self._unsorted(total[self.index] - total[ends])

    def older(self, width_us: int, flag: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``flag`` summed over the group's rows more than ``width_us`` before each row."""
        ends = self._older(width_us)
        total = np.concatenate([[0], np.cumsum(flag[self.order], dtype=np.int64)])
        return self._unsorted(total[ends] - total[self.first])

    def lags(self, gaps: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The number of gaps between each row and up to ``gaps`` earlier rows of its
        group (each gap between two consecutive ones), and the longest (0 if none)."""
        have = np.minimum(self.index - self.first, gaps)
        longest = np.zeros(self.t.size, dtype=np.int64)
        for j in range(1, gaps + 1):
            ok = have >= j
            newer = self.t[np.where(ok, self.index - (j - 1), 0)]
            older = self.t[np.where(ok, self.index - j, 0)]
            longest = np.where(ok, np.maximum(longest, newer - older), longest)
        return self._unsorted(have.astype(np.int64)), self._unsorted(longest)


def _changes(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Where a sorted array's value differs from the one before (the first counts).

    >>> _changes(np.array([3, 3, 5])).tolist()
    [True, False, True]
    """
    out = np.ones(values.size, dtype=bool)
    out[1:] = values[1:] != values[:-1]
    return out


#: The most candidate rows (a report and an earlier report of its target) that
#: :func:`_co_reporters` makes at once, and about the most it sorts at once: what bounds
#: its working memory (about 40 bytes a row) whatever the number of reports.
_BLOCK_ROWS = 1 << 22


def _co_reporters(
    by_target: _Partitions,
    r: npt.NDArray[np.int64],
    g: npt.NDArray[np.int64],
    s: ScoreSettings,
    block_rows: int | None = None,
) -> npt.NDArray[np.int64]:
    """Each report's co-reporters, as :func:`_co_reporters_sql` counts them, sorting
    about ``block_rows`` rows at a time (default :data:`_BLOCK_ROWS`); the deduplicated
    rows themselves (16 bytes each) are held until their part is counted.

    The candidates of a report are its ``recent`` latest earlier reports of the target
    within ``window`` (a run just before it in the target's group), made for blocks of
    whole targets at a time, each block's (report, other reporter) rows deduplicated
    and dealt to parts by their reporter pair. A pair's rows all land in one part, so
    each part is counted on its own: sorted by pair (and within a pair by target, then
    scoring order), the first row of the pair on each target marked, pairs with fewer
    than ``min_shared`` targets in all dropped, the rest sorted by pair and scoring
    order, where a row's shared targets are the marks before it.

    >>> t = np.arange(6, dtype=np.int64)
    >>> r = np.array([0, 1, 0, 1, 0, 1])
    >>> g = np.array([0, 0, 1, 1, 2, 2])
    >>> s = ScoreSettings(min_shared=2)
    >>> _co_reporters(_Partitions(g, t), r, g, s).tolist()
    [0, 0, 0, 0, 0, 1]
    """
    n = r.size
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out
    # Sorted order: the candidates of row x are the rows x - 1 down to x - take.
    take = np.minimum(by_target.index - by_target._older(round(s.window * _US)), s.recent)
    total = int(take.sum())
    if total == 0:
        return out
    block_rows = block_rows or _BLOCK_ROWS
    reporters = np.int64(r.max() + 1)
    parts = -(-total // block_rows)
    rows: list[list[tuple[npt.NDArray[np.int64], ...]]] = [[] for _ in range(parts)]
    # Blocks end where a target's rows end (a target's rows are never split).
    ends = np.flatnonzero(np.r_[by_target.first[1:] != by_target.first[:-1], True]) + 1
    made = np.cumsum(take)[ends - 1]
    lo = 0
    while lo < n:
        # The block's first target, the candidates before it, and its last target: as
        # many whole targets as fit in block_rows candidates, and at least one.
        head = int(np.searchsorted(ends, lo, side="right"))
        done = int(made[head - 1]) if head else 0
        last = int(np.searchsorted(made, done + block_rows, side="right"))
        hi = int(ends[max(last - 1, head)])
        counts = take[lo:hi]
        size = int(counts.sum())
        if size:
            x = np.repeat(np.arange(lo, hi, dtype=np.int64), counts)
            step = np.arange(size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            q = r[by_target.order[x - step - 1]]
            kept = r[by_target.order[x]] != q
            # One row per report and other reporter, in (target, scoring) order; a sort,
            # not np.unique's hashing, which is many times slower here.
            key = np.sort(x[kept] * reporters + q[kept])
            del x, step, q, kept
            key = key[_changes(key)]
            xi = by_target.order[key // reporters]
            q = key % reporters
            del key
            rx = r[xi]
            pair = np.minimum(rx, q) * reporters + np.maximum(rx, q)
            del rx, q
            part = pair % parts
            deal = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[deal], np.arange(parts + 1))
            for k in range(parts):
                mine = deal[bounds[k] : bounds[k + 1]]
                rows[k].append((pair[mine], xi[mine]))
        lo = hi
    for k in range(parts):
        if not rows[k]:
            continue
        pair = np.concatenate([p for p, _ in rows[k]])
        xi = np.concatenate([x for _, x in rows[k]])
        rows[k] = []
        # By pair, then (stable) by target and scoring order: each (pair, target)'s
        # first row in scoring order begins its run.
        order = np.argsort(pair, kind="stable")
        pair, xi = pair[order], xi[order]
        del order
        target = g[xi]
        begins = _changes(pair)
        first = begins | _changes(target)
        del target
        code = np.cumsum(begins, dtype=np.int64) - 1
        del begins
        kept = (np.bincount(code, weights=first) >= s.min_shared)[code]
        code, xi, first = code[kept], xi[kept], first[kept]
        del kept
        # By pair, then scoring order; the mark rides in the lowest bit.
        key = np.sort((code * n + xi) * 2 + first)
        del code, xi, first
        mark = key & 1
        xi = (key >> 1) % n
        code = (key >> 1) // n
        del key
        before = np.cumsum(mark) - mark
        begins = _changes(code)
        start = np.maximum.accumulate(np.where(begins, np.arange(code.size), 0))
        out += np.bincount(xi[before - before[start] >= s.min_shared], minlength=n)
    return out


def _raw_fast(got: Mapping[str, npt.NDArray[np.int64]], s: ScoreSettings) -> dict[str, Any]:
    """The integer facts of every report in scoring order (:data:`_RAW`) from its
    arrays (:func:`_base_fast`): three sorts in numpy (by reporter, target and client),
    each count a cumulative sum and a binary search over one of them, and the
    co-reporters from sorts of the reporter pairs (:func:`_co_reporters`)."""
    t, r, g, c, o = (got[k] for k in ("t", "r", "g", "c", "o"))
    by_reporter = _Partitions(r, t)
    by_target = _Partitions(g, t)
    co_reporters = _co_reporters(by_target, r, g, s)
    gap_count, gap_max = by_reporter.lags(s.gaps)
    recent = by_target.prior_within(round(s.burst_window * _US))
    decided = round(s.decision_lag * _US)
    client_seen = np.where(c >= 0, _Partitions(c, t).position(), -1)
    return {
        "co_reporters": co_reporters,
        "gap_count": gap_count,
        "gap_max_us": gap_max,
        "pace": by_reporter.prior_within(round(s.pace_window * _US)),
        "recent": recent,
        "baseline": by_target.prior_within(round(s.baseline_window * _US)) - recent,
        "age_us": got["age_us"],
        "direct": got["d"],
        "client_seen": client_seen.astype(np.int64),
        "upheld": by_reporter.older(decided, (o == 1).astype(np.int64)),
        "rejected": by_reporter.older(decided, (o == 2).astype(np.int64)),
        "_targets": by_target,
    }


def _raw_plain(con: duckdb.DuckDBPyConnection, keys: str, s: ScoreSettings) -> dict[str, Any]:
    """:func:`_raw_fast` as one SQL window per feature: the reference it is held to."""
    lags = ", ".join(f"lag(t, {j}) OVER rw AS lag_{j}" for j in range(1, s.gaps + 1))
    # The gaps ending at the report: t - lag_1, lag_1 - lag_2, ... (NULL where missing).
    times = ["t", *(f"lag_{j}" for j in range(1, s.gaps + 1))]
    gap_values = ", ".join(f"{a} - {b}" for a, b in zip(times, times[1:], strict=False))
    gap_count = " + ".join(f"(lag_{j} IS NOT NULL)::INTEGER" for j in range(1, s.gaps + 1))
    burst = round(s.burst_window * _US)
    baseline = round(s.baseline_window * _US)
    query = f"""
    WITH co AS ({_co_reporters_sql(keys, s)}),
    f AS (
        SELECT i, t, d, age_us, c, {lags},
               {_prior_within("r", round(s.pace_window * _US))} AS pace,
               {_prior_within("g", burst)} AS recent,
               {_prior_within("g", baseline)} AS upto_baseline,
               CASE WHEN c IS NULL THEN -1 ELSE
                   count(*) OVER (PARTITION BY c ORDER BY i
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) END
                   AS client_seen,
               coalesce(count(*) FILTER (WHERE o = 1) OVER decided, 0) AS upheld,
               coalesce(count(*) FILTER (WHERE o = 2) OVER decided, 0) AS rejected
        FROM {keys}
        WINDOW rw AS (PARTITION BY r ORDER BY i),
               decided AS (PARTITION BY r ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING
                           AND {round(s.decision_lag * _US) + 1} PRECEDING))
    SELECT f.i, f.t,
           coalesce(co.co_reporters, 0)::BIGINT AS co_reporters,
           ({gap_count})::BIGINT AS gap_count,
           coalesce(greatest({gap_values}), 0)::BIGINT AS gap_max_us,
           pace::BIGINT AS pace, recent::BIGINT AS recent,
           (upto_baseline - recent)::BIGINT AS baseline,
           age_us, d::BIGINT AS direct, client_seen::BIGINT AS client_seen,
           upheld::BIGINT AS upheld, rejected::BIGINT AS rejected
    FROM f LEFT JOIN co USING (i)
    ORDER BY f.i"""
    table = con.sql(query).to_arrow_table()
    return {name: table.column(name).to_numpy() for name in _RAW}


def score_reports(
    con: duckdb.DuckDBPyConnection,
    settings: ScoreSettings | None = None,
    *,
    reports: str = "reports",
    accounts: str | None = "accounts",
    plain: bool = False,
) -> pa.Table:
    """Score every report of relation ``reports`` (the reports contract) in batch.

    ``accounts`` (the accounts contract, or ``None``) gives the reporters' ages.
    Returns one row per report in ``(ts, platform, report_id)`` order: ``report_id,
    platform, reporter_id, target_id, ts, score, recommendation, held, signals`` and one
    column per feature. The reports are read once, sorted in scoring order, and the
    windowed counts come from three sorts in numpy; ``plain`` numbers the reports in
    two tables and computes each count with one SQL window function instead, the
    slower reference that gives the same numbers.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE r AS SELECT 'r' || i AS report_id, 'x' AS platform,"
    ...     " 'u' || (i % 3) AS reporter_id, 't' || (i // 3) AS target_id,"
    ...     " TIMESTAMPTZ '2020-06-01 00:00:00+00' + INTERVAL (i * 5) SECOND AS ts,"
    ...     " 'direct_link' AS channel, NULL AS client, NULL AS outcome FROM range(30) t(i)")
    >>> table = score_reports(con, reports="r", accounts=None)
    >>> table.num_rows, table.column("recommendation")[-1].as_py()
    (30, 'discount')
    >>> plain = score_reports(con, reports="r", accounts=None, plain=True)
    >>> plain.equals(table)
    True
    """
    s = settings or ScoreSettings()
    base = "_scoring_base"
    keys = f"{base}_keys"
    if plain:
        _base_tables(con, reports, accounts, s.direct_channels, base)
        raw = _raw_plain(con, keys, s)
        ids = con.sql(
            f"SELECT report_id, platform, reporter_id, target_id, ts FROM {base} ORDER BY i"
        ).to_arrow_table()
    else:
        ids, arrays = _base_fast(con, reports, accounts, s.direct_channels)
        raw = _raw_fast(arrays, s)
        del arrays
    targets = raw.pop("_targets", None)
    values = features(raw, s)
    # The integer facts (eleven arrays a report) are not needed past their features.
    del raw
    score = combine(values, s)
    if targets is not None:
        discounted = (score >= s.discount).astype(np.int64)
        held = targets.prior_within(round(s.hold * _US), discounted) > 0
    else:
        held = _held(con, keys, score, s)
    out = {
        **{name: ids.column(name) for name in ids.column_names},
        "score": pa.array(score, type=pa.float64()),
        "recommendation": pa.array(RECOMMENDATIONS, pa.string()).take(
            _recommendation_codes(score, held, s)
        ),
        "held": pa.array(held, type=pa.bool_()),
        "signals": _signals(values),
        **{name: pa.array(v, type=pa.float64()) for name, v in values.items()},
    }
    for table_name in (base, keys):
        con.execute(f"DROP TABLE IF EXISTS {table_name}")
    return pa.table(out)


def _held(
    con: duckdb.DuckDBPyConnection,
    keys: str,
    score: npt.NDArray[np.float64],
    s: ScoreSettings,
) -> npt.NDArray[np.bool_]:
    """For each report, whether its target drew a discounted report in ``hold`` before."""
    if score.size == 0:
        return np.zeros(0, dtype=bool)
    marks = pa.table(
        {
            "i": pa.array(np.arange(1, score.size + 1, dtype=np.int64)),
            "x": pa.array((score >= s.discount).astype(np.int64)),
        }
    )
    con.register("_scoring_marks", marks)
    try:
        held = (
            con.sql(
                f"SELECT {_prior_within('g', round(s.hold * _US), 'x')} > 0 AS held "
                f"FROM {keys} JOIN _scoring_marks USING (i) ORDER BY i"
            )
            .to_arrow_table()
            .column("held")
            .to_numpy(zero_copy_only=False)
        )
    finally:
        con.unregister("_scoring_marks")
    return np.asarray(held, dtype=bool)
