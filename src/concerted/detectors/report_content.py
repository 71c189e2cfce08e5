"""S4, what reports say: one reason across a burst, reasons that do not fit the
target, and the same words from many reporters.

A brigade's organiser tells members which reason to pick ("Select reason: Terrorism");
an extension files every report with one reason; a template circulates for the free
text. People who come upon a bad post on their own pick from the whole menu, in their
own words. This detector reads the ``reports`` table (reason, target, time, text); it
does not read the ``actions`` relation, which carries none of these.

**Episodes.** A target's reports are cut into episodes wherever two consecutive
reports on it are more than ``episode_gap`` seconds apart (24 hours by default): a
wave of reports and the quiet around it. Episodes with at least ``min_reports``
reports that give a reason are scored; a target reported in several waves has one
episode each.

**The platform's reason mix.** The share of each reason among reports on targets of
one kind (account, post, page, group) on one platform, with every target weighing the
same: each target's own reason shares, averaged over the targets of that kind. A
brigade or a viral post files thousands of reports on a few dozen targets; weighing
targets and not reports keeps them from setting the norm they are measured against.

Layers (``detector`` is ``report_content``):

``reason_homogeneity``
    One reason dominating an episode beyond the platform's mix. For the episode's most
    frequent reason *r* (``k`` of ``n`` reports; ties to the first name) the share is
    smoothed towards the mix, :math:`s = (k + a\\,p_r) / (n + a)` with ``a`` =
    ``prior_strength``, and the score is the excess over the mix,
    :math:`(s - p_r) / (1 - p_r)`, at least 0: 0 when the episode is as mixed as
    usual, near 1 when all of many reports name a reason that is rarely chosen.
    ``value`` is ``k / n``. Rows: one per episode on the ``target`` (``related_id``
    the episode's first report, ``first_ts``/``last_ts`` its span) and one per report
    of the episode that gave *r* (``related_id`` the target).
``reason_mismatch``
    The episode's dominant reason does not fit the target. Reports carry no verdict
    on the content, so fit is read from two things the data does hold: how often
    that reason is chosen for targets of that kind (rarity: 0 for a reason chosen at
    least as often as the average reason, :math:`1 - p_r R` for a rarer one, where
    ``R`` is the number of reasons seen for the kind), and whether the target drew
    that reason before the episode (novelty: one minus the smoothed share of the
    reason among the target's earlier reports, with the same prior). Score =
    rarity × novelty; ``value`` is the rarity. A reason that the kind of target
    rarely draws and this target never drew before ("terrorism" against a
    journalist's profile, "nudity" on a text post) scores high; a target reported
    for the same thing again and again does not. Rows as for ``reason_homogeneity``,
    where the score is above 0. Chosen over a fixed table of which reason suits which
    kind, which would not carry from one platform's reason codes to another's.
``templated_text``
    The same free text from several reporters. Texts are put in the normal form of
    :mod:`concerted.textnorm` (NFKC, case folding, links, mentions, invisible characters
    and punctuation removed, Arabic-script diacritics and letter variants, Devanagari
    nukta and the digits of every script folded) and hashed; a normal form of at least
    ``min_text_chars`` characters that ``k`` ≥ 2 distinct reporters wrote marks each
    of those reports with score :math:`1 - 1/k` (``value`` ``k``,
    ``related_id`` the target). Short stock phrases ("fake account", "spam") are what
    people type on their own and are left out by the length floor. Each target with
    such reports gets a row whose score is the share of its reports that are
    templated times the highest report score, ``value`` the number templated.

Settings: ``episode_gap`` (seconds, 86400), ``min_reports`` (5), ``prior_strength``
(5 reports), ``min_text_chars`` (20). Without a ``reports`` table the detector
returns nothing; edges and events are always empty.

On the simulator (``brigade``, seeds 0 to 2, standard difficulty) target-level
homogeneity tells the brigade's targets from all other reported targets with
best-threshold F1 0.95 to 1.0 (the organic report spikes come closest), while
report-level rows do not tell extension-driven from human reports apart (F1 0.34 to
0.41): the extension picks the called reason, and so do three quarters of the people.

Limitations. Homogeneity alone does not tell a brigade from many people reporting a
genuinely violating post for what it is (most of them pick the one fitting reason):
it is one signal for the brigade stage to weigh with the others. Mismatch knows
nothing of the content; on a platform whose reason mix is the same for every kind of
target (as in concerted's simulator) it reduces to "a rarely used reason, new for this
target". Templated text uses exact hashes of the normal form; edited copies escape it.

Computation. The reports are read once; targets, kinds and reasons become integer
codes, and episodes, reason counts, the counts before each episode and the mix come
from sorts of packed int64 keys in numpy (one by target and time, ties in report id
order), where windows over text keys cost several times more; DuckDB sums the mix's
shares exactly, joins and words the rows. Templated text is SQL.

The module also holds the helpers the report detectors share: :func:`has_table`,
:func:`as_signals`, :func:`exact_sum`, :func:`normalised_table`, :func:`temp_names`,
and for the numpy passes :func:`arrow_table`, :func:`take`, :func:`integers`,
:func:`dictionary_codes`, :func:`group_codes`, :func:`sorted_codes`,
:func:`packed_times`, :func:`time_order` and :func:`distinct_rows`.

>>> ReportContent().name
'report_content'
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from concerted.detectors.base import Evidence, empty
from concerted.errors import ConfigError
from concerted.schema import EVIDENCE_CONTRACTS, sql_literal
from concerted.textnorm import normalize_array

__all__ = [
    "Column",
    "ReportContent",
    "arrow_table",
    "as_signals",
    "dictionary_codes",
    "distinct_rows",
    "exact_sum",
    "group_codes",
    "has_table",
    "integers",
    "normalised_table",
    "packed_times",
    "sorted_codes",
    "take",
    "time_order",
    "temp_names",
]

_ids = itertools.count()

#: An Arrow column, whole or in chunks.
Column: TypeAlias = "pa.Array[Any] | pa.ChunkedArray[Any]"


def temp_names(prefix: str, *parts: str) -> dict[str, str]:
    """Unique names for the temporary tables of one run of a detector.

    >>> sorted(temp_names("x", "a", "b"))
    ['a', 'b']
    """
    n = next(_ids)
    return {p: f"_{prefix}_{p}_{n}" for p in parts}


def exact_sum(expr: str) -> str:
    """SQL for the sum of a fraction-valued ``expr`` that is the same whatever the order
    of the rows: each value is fixed at 18 decimals and summed as an integer (a sum of
    doubles changes in its last digits with the order DuckDB's threads add them in).

    >>> con = duckdb.connect()
    >>> con.sql(f"SELECT {exact_sum('x')} FROM (VALUES (0.1), (0.2)) t(x)").fetchone()
    (0.3,)
    """
    return f"sum(CAST({expr} AS DECIMAL(38, 18)))::DOUBLE"


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view called ``name`` can be read on ``con``.

    >>> con = duckdb.connect()
    >>> has_table(con, "reports")
    False
    >>> _ = con.execute("CREATE TABLE reports (x INTEGER)")
    >>> has_table(con, "reports")
    True
    """
    try:
        con.execute(f"SELECT 1 FROM {name} LIMIT 0")
    except duckdb.CatalogException:
        return False
    return True


def as_signals(con: duckdb.DuckDBPyConnection, queries: Sequence[str]) -> duckdb.DuckDBPyRelation:
    """The union of ``queries`` (each naming the signal columns in any order) in the
    signals contract's order and types, with every score held to [0, 1].

    >>> con = duckdb.connect()
    >>> rel = as_signals(con, ["SELECT 'd' AS detector, 'l' AS layer, 'account' AS entity, "
    ...     "'x' AS platform, 'a' AS id, 1.5 AS score, NULL AS value, NULL AS related_id, "
    ...     "NULL AS first_ts, NULL AS last_ts, NULL AS detail"])
    >>> rel.fetchall()[0][:6]
    ('d', 'l', 'account', 'x', 'a', 1.0)
    """
    if not queries:
        return empty(con, "signals")
    columns = []
    for c in EVIDENCE_CONTRACTS["signals"].columns:
        value = c.name
        if c.name == "score":
            value = "CASE WHEN isnan(score::DOUBLE) THEN 0.0 ELSE score::DOUBLE END"
            value = f"greatest(0.0, least(1.0, coalesce({value}, 0.0)))"
        columns.append(f"CAST({value} AS {c.type}) AS {c.name}")
    select = ", ".join(columns)
    return con.sql(" UNION ALL ".join(f"SELECT {select} FROM ({q})" for q in queries))


def arrow_table(
    con: duckdb.DuckDBPyConnection, table: pa.Table | Mapping[str, Any], out: str
) -> None:
    """Temporary table ``out`` holding the rows of the Arrow ``table`` (or of the
    columns, Arrow or numpy, named in a mapping).

    >>> con = duckdb.connect()
    >>> arrow_table(con, {"k": np.array([1, 2])}, "t")
    >>> con.sql("SELECT sum(k) FROM t").fetchone()
    (3,)
    """
    name = f"{out}_arrow"
    con.register(name, table if isinstance(table, pa.Table) else pa.table(dict(table)))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM {name}")
    finally:
        con.unregister(name)


def take(column: Column, rows: npt.NDArray[np.int64]) -> Column:
    """The values of ``column`` at positions ``rows``.

    >>> take(pa.array(["a", "b", "c"]), np.array([2, 0])).to_pylist()
    ['c', 'a']
    """
    taken: Column = pc.take(column, pa.array(rows, type=pa.int64()))
    return taken


def integers(column: Column, dtype: Any = np.int64) -> npt.NDArray[Any]:
    """A NULL-free integer column as a numpy array (``to_numpy``, several times faster
    than ``np.asarray`` on a chunked column).

    >>> integers(pa.chunked_array([[1, 2], [3]])).tolist()
    [1, 2, 3]
    """
    if isinstance(column, pa.ChunkedArray):
        values = column.to_numpy() if column.num_chunks else np.zeros(0, dtype=dtype)
    else:
        values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values).astype(dtype, copy=False)


#: Codes of combined columns above this are renumbered densely by :func:`group_codes`.
CODE_LIMIT = 2**31


def dictionary_codes(
    column: Column,
) -> tuple[npt.NDArray[np.int64], pa.Array[Any]]:
    """Codes from 0 for the values of ``column`` (NULL a value of its own) and the values
    they stand for, in order of first appearance.

    >>> codes, values = dictionary_codes(pa.array(["b", "a", "b"]))
    >>> codes.tolist(), values.to_pylist()
    ([0, 1, 0], ['b', 'a'])
    """
    if column.null_count == 0 and _one_value(column):
        return np.zeros(len(column), dtype=np.int64), pa.array([column[0].as_py()])
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    chunks: list[Any] = list(encoded.chunks) if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], type=column.type)
    codes = integers(pa.chunked_array([c.indices for c in chunks]))
    return codes, chunks[0].dictionary


def group_codes(*columns: Column) -> npt.NDArray[np.int64]:
    """Integer codes from 0 that are equal exactly where the rows hold equal values in
    every one of ``columns`` (NULL equal to NULL). Codes follow no order of the values:
    they are keys to group and partition on, cheaper to sort and compare than strings,
    and never a tie-break.

    >>> group_codes(pa.array(["a", "b", "a"]), pa.array(["x", "x", "x"])).tolist()
    [0, 1, 0]
    """
    rows = len(columns[0]) if columns else 0
    codes = np.zeros(rows, dtype=np.int64)
    size = 1
    for column in columns:
        these, values = dictionary_codes(column)
        if len(values) <= 1:
            continue
        codes = these if size == 1 else codes * len(values) + these
        size *= len(values)
        if size >= CODE_LIMIT:  # keep codes small enough to pack beside a time
            unique, inverse = np.unique(codes, return_inverse=True)
            codes, size = inverse.astype(np.int64), max(len(unique), 1)
    return codes


#: Bits of an int64 key that :func:`packed_times` may fill (a module constant so that
#: tests can force its rank fallback on small data).
KEY_BITS = 63


def packed_times(
    groups: npt.NDArray[np.int64], *times: npt.NDArray[np.int64]
) -> tuple[int, list[npt.NDArray[np.int64]]]:
    """Times re-expressed so that ``(groups << shift) + time`` is one int64 key whose
    order is the order of (group, time): returns ``shift`` and the times of each of the
    arrays ``times``, in one coordinate that keeps every ``<`` and ``=`` between them.
    The coordinate is the offset from the earliest time, or, where group code and offset
    would not fit :data:`KEY_BITS` bits together, the time's rank among all of them.
    Sorting and searching one int64 key is several times faster than a sort on two.

    >>> shift, (t,) = packed_times(np.array([1, 0]), np.array([10**15, 10**15 + 7]))
    >>> shift, t.tolist()
    (3, [0, 7])
    """
    group_bits = int(groups.max(initial=1)).bit_length()
    values = [np.asarray(x, dtype=np.int64) for x in times]
    if not any(len(v) for v in values):
        return 1, values
    base = min(int(v.min()) for v in values if len(v))
    top = max(int(v.max()) for v in values if len(v)) - base
    if group_bits + max(top, 1).bit_length() <= KEY_BITS:
        return max(top, 1).bit_length(), [v - base for v in values]
    joined = np.concatenate(values)
    order = np.argsort(joined, kind="stable")
    ranked = joined[order]
    dense = np.empty(len(joined), dtype=np.int64)
    dense[order] = np.cumsum(np.concatenate([[0], ranked[1:] != ranked[:-1]]))
    ends = np.cumsum([len(v) for v in values])
    out = np.split(dense, ends[:-1])
    return max(int(dense.max(initial=1)), 1).bit_length(), out


def sorted_codes(column: Column) -> tuple[npt.NDArray[np.int64], pa.Array[Any]]:
    """Codes of a column with few distinct values, numbered in the order of the values
    (as DuckDB orders text: by bytes), with the distinct values; NULL is -1.

    >>> codes, values = sorted_codes(pa.array(["spam", None, "hate", "spam"]))
    >>> codes.tolist(), values.to_pylist()
    ([1, -1, 0, 1], ['hate', 'spam'])
    """
    encoded = pc.dictionary_encode(column)
    chunks: list[Any] = list(encoded.chunks) if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], type=pa.string())
    dictionary = chunks[0].dictionary
    rank = np.full(len(dictionary) + 1, -1, dtype=np.int64)  # the last: NULL
    by_value = integers(pc.array_sort_indices(dictionary))
    rank[by_value] = np.arange(len(dictionary))
    codes = integers(pa.chunked_array([c.indices.fill_null(len(dictionary)) for c in chunks]))
    return rank[codes], dictionary.take(by_value)


def time_order(
    groups: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    tiebreak: Column,
    rows: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """The row order of ``ORDER BY group, t, tiebreak`` (``tiebreak`` text, compared as
    DuckDB compares it; row ``i``'s is ``tiebreak[rows[i]]`` where ``rows`` is given),
    and the sorted int64 keys ``(group << shift) + time`` with ``shift`` (see
    :func:`packed_times`). Rows are sorted on the packed key; only the rare runs of rows
    with equal group and time are put in ``tiebreak`` order.

    >>> order, _, _ = time_order(np.array([1, 0, 1]), np.array([5, 9, 5]),
    ...                          pa.array(["b", "z", "a"]))
    >>> order.tolist()
    [1, 2, 0]
    """
    shift, (times,) = packed_times(groups, t)
    key = (groups << shift) + times
    order = np.argsort(key, kind="stable")
    key = key[order]
    tie = key[1:] == key[:-1]
    if tie.any():
        tied = np.zeros(len(key), dtype=bool)
        tied[:-1] |= tie
        tied[1:] |= tie
        members = np.flatnonzero(tied)
        starts = np.ones(len(members), dtype=bool)
        starts[1:] = ~tie[members[1:] - 1]
        run = np.cumsum(starts)
        which = order[members] if rows is None else rows[order[members]]
        ids = take(tiebreak, which)
        within = pc.sort_indices(
            pa.table({"run": run, "id": ids}),
            sort_keys=[("run", "ascending"), ("id", "ascending")],
        )
        order[members] = order[members][np.asarray(within, dtype=np.int64)]
    return order, key, shift


def _one_value(column: Column) -> bool:
    """Whether every value of the non-empty, NULL-free ``column`` is the same (the
    usual case of ``platform``, which then needs no encoding)."""
    if len(column) == 0:
        return False
    ends = pc.min_max(column)
    return bool(ends["min"] == ends["max"])


def normalised_table(con: duckdb.DuckDBPyConnection, query: str, out: str) -> None:
    """Temporary table ``out``: the rows of ``query`` (whose last column is ``text``)
    with ``body``, the text in :func:`concerted.textnorm.normalize_array`'s normal form.

    >>> con = duckdb.connect()
    >>> normalised_table(con, "SELECT 1 AS k, 'Report THEM!! @bob ۱۲' AS text", "t")
    >>> con.sql("SELECT k, body FROM t").fetchall()
    [(1, 'report them 12')]
    """
    table = con.sql(query).to_arrow_table()
    arrow_table(con, table.append_column("body", normalize_array(table.column("text"))), out)


def _before(values: npt.NDArray[np.int64], starts: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """The sum of ``values`` over the earlier rows of each run (a run begins where
    ``starts`` is true; the first row must begin one).

    >>> _before(np.array([1, 2, 3, 4]), np.array([True, False, True, False])).tolist()
    [0, 1, 0, 3]
    """
    running = np.cumsum(values) - values
    before: npt.NDArray[np.int64] = running - running[np.flatnonzero(starts)][np.cumsum(starts) - 1]
    return before


def distinct_rows(
    *columns: npt.NDArray[np.int64],
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """The distinct combinations of the non-negative integer ``columns`` (one array per
    column, in sorted order) and the number of rows holding each.

    >>> values, counts = distinct_rows(np.array([1, 0, 1]), np.array([2, 2, 2]))
    >>> [v.tolist() for v in values], counts.tolist()
    ([[0, 1], [2, 2]], [1, 2])
    """
    rows = len(columns[0])
    bits = [max(int(c.max(initial=0)), 1).bit_length() for c in columns]
    if sum(bits) <= KEY_BITS:
        key = np.zeros(rows, dtype=np.int64)
        for column, width in zip(columns, bits, strict=True):
            key = (key << width) | column
        key = np.sort(key)
        firsts = np.flatnonzero(np.diff(key, prepend=-1) != 0)
        key = key[firsts]
        values = []
        for width in reversed(bits):
            values.append(key & ((1 << width) - 1))
            key = key >> width
        values.reverse()
    else:
        order = np.lexsort(columns[::-1])
        change = np.zeros(rows, dtype=bool)
        change[:1] = True
        for column in columns:
            change[1:] |= column[order][1:] != column[order][:-1]
        firsts = np.flatnonzero(change)
        values = [column[order[firsts]] for column in columns]
    return values, np.diff(np.append(firsts, rows))


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


@dataclass(frozen=True, kw_only=True)
class ReportContent:
    """Reason homogeneity, reason mismatch and templated text (see the module).

    >>> ReportContent(min_reports=10).min_reports
    10
    """

    name: ClassVar[str] = "report_content"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.2
    reads: ClassVar[tuple[str, ...]] = ("reports",)
    #: Seconds of quiet on a target that end an episode of reports.
    episode_gap: float = 86_400.0
    #: Reports with a reason an episode needs to be scored.
    min_reports: int = 5
    #: Weight of the platform's mix, in reports, when shares are smoothed.
    prior_strength: float = 5.0
    #: Characters a normalised report text needs to count as a template.
    min_text_chars: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "episode_gap", float(self.episode_gap))
        object.__setattr__(self, "prior_strength", float(self.prior_strength))
        if not self.episode_gap > 0:
            raise ConfigError(
                f"report_content: episode_gap must be positive, not {self.episode_gap}"
            )
        if self.min_reports < 2:
            raise ConfigError(
                f"report_content: min_reports must be at least 2, not {self.min_reports}"
            )
        if not self.prior_strength > 0:
            raise ConfigError("report_content: prior_strength must be positive")
        if self.min_text_chars < 1:
            raise ConfigError("report_content: min_text_chars must be at least 1")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not has_table(con, "reports"):
            return none
        t = temp_names("s4", "shares", "mix", "episodes", "marked", "scored", "texts")
        name = sql_literal(self.name)
        a = self.prior_strength
        self._episodes(con, t)
        con.execute(
            f"""
            -- exact_sum of the shares, each distinct share counted once per cell.
            CREATE OR REPLACE TEMP TABLE {t["mix"]} AS
            SELECT pk, kind, reason,
                   sum(cells * CAST(c::DOUBLE / total::DOUBLE AS DECIMAL(38, 18)))::DOUBLE
                       / any_value(targets) AS p,
                   any_value(reasons) AS reasons
            FROM {t["shares"]} GROUP BY ALL;

            CREATE OR REPLACE TEMP TABLE {t["scored"]} AS
            SELECT h.platform, h.target_id, h.episode, h.kind, h.n, h.first_ts, h.last_ts,
                   h.first_report, h.reason, h.k, h.k_before, h.n_before,
                   coalesce(m.p, 0.0) AS p, coalesce(m.reasons, 1.0) AS reasons,
                   (h.k + {a} * coalesce(m.p, 0.0)) / (h.n + {a}) AS smoothed
            FROM {t["episodes"]} h
            LEFT JOIN {t["mix"]} m ON m.pk = h.pk AND m.kind = h.kind_code
                                  AND m.reason = h.reason_code
            """
        )
        homogeneity = "greatest(0.0, (smoothed - p) / greatest(1.0 - p, 1e-9))"
        rarity = "greatest(0.0, 1.0 - p * reasons)"
        novelty = f"1.0 - (k_before + {a} * p) / (n_before + {a})"
        mismatch = f"({rarity}) * ({novelty})"
        spans = "round(epoch(last_ts) - epoch(first_ts)) / 3600.0"
        homogeneity_detail = (
            f"format('{{}} of {{}} reports in {{:.1f}} h gave reason {{}} (usual share "
            f"{{:.1f}}%)', k, n, {spans}, reason, 100 * p)"
        )
        mismatch_detail = (
            "format('reason {} is {:.1f}% of reports on targets of kind {} and {} of {} "
            "earlier reports on this target', reason, 100 * p, kind, k_before, n_before)"
        )
        queries: list[str] = []
        for layer, score, value, detail in (
            ("reason_homogeneity", homogeneity, "k / n", homogeneity_detail),
            ("reason_mismatch", mismatch, rarity, mismatch_detail),
        ):
            where = "" if layer == "reason_homogeneity" else f"WHERE {score} > 0"
            queries.append(
                f"""SELECT {name} AS detector, '{layer}' AS layer, 'target' AS entity, platform,
                           target_id AS id, {score} AS score, {value} AS value,
                           first_report AS related_id, first_ts, last_ts, {detail} AS detail
                    FROM {t["scored"]} {where}"""
            )
            queries.append(
                f"""SELECT {name} AS detector, '{layer}' AS layer, 'report' AS entity,
                           e.platform, e.report_id AS id, {score} AS score, {value} AS value,
                           e.target_id AS related_id, e.ts AS first_ts, e.ts AS last_ts,
                           {detail} AS detail
                    FROM {t["scored"]} s JOIN {t["marked"]} e USING (episode)
                    {where}"""
            )
        self._templates(con, t["texts"])
        queries.extend(self._template_queries(t["texts"], name))
        notes: dict[str, Any] = {
            "episode_gap_seconds": self.episode_gap,
            "min_reports": self.min_reports,
            "prior_strength": self.prior_strength,
            "min_text_chars": self.min_text_chars,
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, queries),
            notes=notes,
            temporary=tuple(t.values()),
        )

    def _episodes(self, con: duckdb.DuckDBPyConnection, t: dict[str, str]) -> None:
        """Temporary tables ``shares`` (each target's count of each reason, ``c`` of
        ``total``, by codes ``pk`` platform, ``kind``, ``reason`` and ``tk`` target),
        ``episodes`` (each episode with enough reasons, its dominant reason and the
        counts before it) and ``marked`` (the reports that gave their episode's dominant
        reason), from one pass over the reports in numpy: integer codes for targets and
        sorted codes for kinds and reasons, one sort of the busy targets' reports by
        target and time, and sorts of packed integer keys for every count.
        """
        rows = con.sql(
            """SELECT platform, target_id, target_kind, reason, report_id, ts,
                      epoch_us(ts) AS t
               FROM reports"""
        ).to_arrow_table()
        platform = group_codes(rows["platform"])
        target = group_codes(rows["platform"], rows["target_id"])
        kind, kinds = sorted_codes(rows["target_kind"])
        reason, reasons = sorted_codes(rows["reason"])
        n_kinds, n_reasons = max(len(kinds), 1), max(len(reasons), 1)
        given = reason >= 0
        # The platform's mix: each (target, kind)'s count of each reason.
        cell = np.sort(((target[given] * n_kinds + kind[given]) * n_reasons) + reason[given])
        firsts = np.flatnonzero(np.diff(cell, prepend=-1) != 0)
        counts = np.diff(np.append(firsts, len(cell)))
        cells = cell[firsts]
        owner = cells // n_reasons
        owner_firsts = np.flatnonzero(np.diff(owner, prepend=-1) != 0)
        totals = np.add.reduceat(counts, owner_firsts) if len(owner_firsts) else counts
        target_platform = np.zeros(int(target.max(initial=-1)) + 1, dtype=np.int64)
        target_platform[target] = platform
        # The cells' shares depend on (c, total) alone: DuckDB sums each distinct share
        # once, times the cells that hold it.
        cell_pk = target_platform[cells // (n_kinds * n_reasons)]
        cell_kind = (cells // n_reasons) % n_kinds
        cell_reason = cells % n_reasons
        cell_total = np.repeat(totals, np.diff(np.append(owner_firsts, len(owner))))
        (pk, kind_of, reason_of, c, total), cells_with = distinct_rows(
            cell_pk, cell_kind, cell_reason, counts, cell_total
        )
        of_kind = (cell_pk * n_kinds + cell_kind)[owner_firsts]
        size = (int(platform.max(initial=0)) + 1) * n_kinds
        targets = np.bincount(of_kind, minlength=size)
        (seen_pk, seen_kind, _), _ = distinct_rows(cell_pk, cell_kind, cell_reason)
        reasons_seen = np.bincount(seen_pk * n_kinds + seen_kind, minlength=size)
        combo_kind = pk * n_kinds + kind_of
        arrow_table(
            con,
            {
                "pk": pk,
                "kind": kind_of,
                "reason": reason_of,
                "c": c,
                "total": total,
                "cells": cells_with,
                "targets": targets[combo_kind].astype(np.float64),
                "reasons": reasons_seen[combo_kind].astype(np.float64),
            },
            t["shares"],
        )
        # Episodes of the busy targets: their reports by target, time and id.
        busy = np.bincount(target[given], minlength=len(target_platform)) >= self.min_reports
        chosen = np.flatnonzero(busy[target])
        tk = target[chosen]
        t_us = integers(rows["t"])[chosen]
        order, key, shift = time_order(tk, t_us, rows["report_id"], chosen)
        chosen, tk, t_us = chosen[order], tk[order], t_us[order]
        starts = np.diff(tk, prepend=-1) != 0
        gap = np.diff(t_us, prepend=0) > round(self.episode_gap * 1_000_000)
        episode = np.cumsum(starts | gap) - 1
        heads = np.flatnonzero(starts | gap)
        ends = np.append(heads[1:], len(episode))[: len(heads)] - 1
        row_reason = reason[chosen]
        with_reason = row_reason >= 0
        n = np.bincount(episode[with_reason], minlength=len(heads))
        n_before = _before(n, starts[heads])
        # Each episode's count of each reason, and the same reason's count on the same
        # target in earlier episodes.
        e_of = episode[with_reason]
        pair = np.sort(e_of * n_reasons + row_reason[with_reason])
        pair_firsts = np.flatnonzero(np.diff(pair, prepend=-1) != 0)
        k = np.diff(np.append(pair_firsts, len(pair)))
        pair = pair[pair_firsts]
        pair_episode, pair_reason = pair // n_reasons, pair % n_reasons
        pair_target = tk[heads][pair_episode]
        by_reason = np.lexsort((pair_episode, pair_reason, pair_target))
        same = pair_target[by_reason] * n_reasons + pair_reason[by_reason]
        k_before = np.empty(len(k), dtype=np.int64)
        k_before[by_reason] = _before(k[by_reason], np.diff(same, prepend=-1) != 0)
        # The dominant reason: most reports, ties to the first name (pairs are in
        # episode and reason order, so the first pair reaching the most is the one).
        heads_of_pairs = np.flatnonzero(np.diff(pair_episode, prepend=-1) != 0)
        most = np.maximum.reduceat(k, heads_of_pairs) if len(k) else k
        reach = np.flatnonzero(k == most[np.cumsum(np.diff(pair_episode, prepend=-1) != 0) - 1])
        top = reach[np.diff(pair_episode[reach], prepend=-1) != 0]
        scored = top[n[pair_episode[top]] >= self.min_reports]
        e = pair_episode[scored]
        first_kind = np.minimum.reduceat(kind[chosen], heads) if len(heads) else heads
        at = chosen[heads[e]]
        last = chosen[ends[e]]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], at),
                "target_id": take(rows["target_id"], at),
                "pk": platform[chosen[heads[e]]],
                "episode": e,
                "kind": take(kinds, first_kind[e]),
                "kind_code": first_kind[e],
                "n": n[e],
                "first_ts": take(rows["ts"], at),
                "last_ts": take(rows["ts"], last),
                "first_report": take(rows["report_id"], at),
                "reason": take(reasons, pair_reason[scored]),
                "reason_code": pair_reason[scored],
                "k": k[scored],
                "k_before": k_before[scored],
                "n_before": n_before[e],
            },
            t["episodes"],
        )
        dominant = np.full(len(heads), -2, dtype=np.int64)
        dominant[e] = pair_reason[scored]
        marked = np.flatnonzero(dominant[episode] == row_reason)
        picked = chosen[marked]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], picked),
                "report_id": take(rows["report_id"], picked),
                "target_id": take(rows["target_id"], picked),
                "ts": take(rows["ts"], picked),
                "episode": episode[marked],
            },
            t["marked"],
        )

    def _templates(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """Reports whose normal-form text at least two reporters wrote, with ``k``."""
        normalised_table(
            con, "SELECT DISTINCT text FROM reports WHERE text IS NOT NULL", f"{table}_bodies"
        )
        try:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {table} AS
                WITH h AS (
                    SELECT r.platform, r.report_id, r.reporter_id, r.target_id, r.ts,
                           md5(b.body) AS h
                    FROM reports r JOIN {table}_bodies b USING (text)
                    WHERE length(b.body) >= {self.min_text_chars}),
                g AS (
                    SELECT h, count(DISTINCT (platform, reporter_id)) AS k,
                           count(DISTINCT (platform, target_id)) AS targets
                    FROM h GROUP BY h HAVING count(DISTINCT (platform, reporter_id)) >= 2)
                SELECT h.platform, h.report_id, h.target_id, h.ts, g.k, g.targets
                FROM h JOIN g USING (h)
                """
            )
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}_bodies")

    @staticmethod
    def _template_queries(table: str, name: str) -> list[str]:
        report = f"""
            SELECT {name} AS detector, 'templated_text' AS layer, 'report' AS entity, platform,
                   report_id AS id, 1.0 - 1.0 / k AS score, k AS value, target_id AS related_id,
                   ts AS first_ts, ts AS last_ts,
                   format('same wording as reports by {{}} other reporters on {{}} targets',
                          k - 1, targets) AS detail
            FROM {table}"""
        target = f"""
            WITH t AS (
                SELECT platform, target_id, count(*) AS m, max(1.0 - 1.0 / k) AS top,
                       min(ts) AS first_ts, max(ts) AS last_ts
                FROM {table} GROUP BY ALL),
            n AS (
                SELECT platform, target_id, count(*) AS n FROM reports
                SEMI JOIN t USING (platform, target_id) GROUP BY ALL)
            SELECT {name} AS detector, 'templated_text' AS layer, 'target' AS entity, platform,
                   target_id AS id, top * m / n AS score, m AS value, NULL AS related_id,
                   first_ts, last_ts,
                   format('{{}} of {{}} reports on this target share their wording with other '
                          'reporters', m, n) AS detail
            FROM t JOIN n USING (platform, target_id)"""
        return [report, target]
