"""Test: co-reporting pairs (S2) against chance, in rounds.

**The null** (``BrigadeSettings.null = "analytic"``, the default) is the analytic form
of relabelling reporters over reports (the ``relabel`` copies this stage used to make):
every report keeps its target and its time, so every target keeps its bursts, and
chance hands each report to a reporter in proportion to how many each filed: reporter
:math:`a` gets a share :math:`u_a` of its platform's reports. Within each platform,
a target of :math:`m_g` reports, a share :math:`\\phi_g` of whose pairs of reports
fall within the window (left-out viral targets aside), is taken as :math:`1/\\phi_g`
bursts of :math:`s_g = \\phi_g m_g` reports; the pair ``(a, b)`` co-reports it when
both get a report in one burst, so it expects

.. math:: \\lambda_{ab} = \\sum_g 1 - \\left(1 - (1 - e^{-s_g u_a})(1 - e^{-s_g u_b})
   \\right)^{1/\\phi_g}

distinct co-reported targets: exact for a target in one burst (a brigade's, a viral
post's), and :math:`1 - e^{-\\phi_g m_g^2 u_a u_b}` for a target spread thin, as
co-action's stratified null (:meth:`~concerted.significance.Significance.test_stratified`)
spreads a stratum's meetings in proportion to :math:`n_a n_b`, here with one stratum,
the whole span, as the copies had. On reports relabelled at random, the pairs' summed
expectation is within 10% of the targets they share (a test checks it). The pair's
weight ``w`` (distinct targets co-reported, at least ``min_weight``, the detector's,
to be an edge at all) gets :math:`p = P(X \\ge w \\mid X \\ge k)` for :math:`X \\sim
\\mathrm{Poisson}(\\lambda_{ab})` and :math:`k` = ``min_weight``: as the copies'
p-value, it is a test of the pairs that became edges; a sum of per-target chances
varies less than a Poisson count of that mean, so the tail errs on the safe side.
``q_value`` is Benjamini-Hochberg over the pairs tested and ``significant`` means
``q_value`` ≤ ``fdr`` (:class:`~concerted.config.SignificanceSettings`). No copy of the
reports is made: the whole test is one sorted scan of the pairing's rows (each
target's pairs of reports within the window counted by
:func:`~concerted.brigades.counting.pairs_within`, compiled), one join of the edges to
their reporters' volumes, and numpy over the distinct pairs of volumes and groups of
targets. A big brigade's reports are chance meetings too, so
they raise every heavy pair's expectation, as they did in the copies.

``null = "copies"`` tests against randomised copies of the pairing instead
(:meth:`~concerted.significance.Significance.null_weights_of_pairing`, ``copies`` and
``replicates`` of the significance settings): one full pairing per copy.

**The engine.** Under the analytic null, with an engine other than DuckDB
(:mod:`concerted.engines`, ``analyze --engine spark``), each round's reports are paired
by the engine (:meth:`~concerted.engines.base.Engine.pair`, co-action on kind
``report`` with co-reporting's settings; the round's reports cross to it as any
relation does), and the score and the test read the engine's edges and the reports'
per-target and per-reporter counts on DuckDB
(:meth:`~concerted.detectors.co_report.CoReport.from_paired`): the same evidence and
the same test as the detector's own pairing gives. Each round's notes then name the
engine (``paired_on``). Randomised copies pair the reports again on DuckDB, so under
``null = "copies"`` the observed pairing stays there too.

**Rounds.** After a round that finds significant reporters, their reports are set
aside and the rest is tested again, as long as the accounts left still hold a candidate
(``min_reporters`` accounts in exclusive pairs of ``attach_weight`` or more that were
not significant): a smaller brigade beside a big one is then tested against a null
that the big one does not fill. Under the analytic null a later round's pairing is
derived from the first (:meth:`~concerted.detectors.co_report.CoReport.pairing_without`:
the first round's pairs of the accounts left, and the pairs that only setting accounts
aside makes, on targets no longer viral or of accounts that only now share enough
targets), not made again; with the first round's figures of its account pairs
(:meth:`~concerted.detectors.co_report.CoReport.derive`), only the account pairs that
gain pairs are figured again and their events replaced: every other pair of accounts
kept has the first round's figures and events (at 10^7 reports, round 2 took 10.5 CPU
seconds instead of 51.8, its test 10.8 instead of 17.1).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import special

from concerted.brigades import counting
from concerted.brigades.workspace import CO_REPORT, Workspace, columns
from concerted.clock import Clock
from concerted.config import BrigadeSettings
from concerted.detectors.base import Detector
from concerted.detectors.coaction import CoAction
from concerted.detectors.pairing import Pairs
from concerted.schema import sql_literal
from concerted.significance import Significance, Verdict, benjamini_hochberg, edges_with_tails

if TYPE_CHECKING:
    from concerted.engines.base import Engine

__all__ = ["PAIR_KEY", "analytic", "exclusive", "on_engine", "poisson_tail", "rounds"]

_ids = itertools.count()

#: The columns that name one tie of one detector's layer.
PAIR_KEY = "(detector, layer, platform_1, account_1, platform_2, account_2)"


def exclusive(edges: str, settings: BrigadeSettings) -> str:
    """SQL: the rows ``e`` of ``edges`` whose weight is at least ``min_overlap`` of the
    distinct targets of the less active of the two reporters (``_bg_reported``); more
    conditions follow with ``AND``."""
    return f"""SELECT e.* FROM {edges} e
        JOIN _bg_reported m1 ON m1.platform = e.platform_1 AND m1.actor_id = e.account_1
        JOIN _bg_reported m2 ON m2.platform = e.platform_2 AND m2.actor_id = e.account_2
        WHERE e.weight >= {settings.min_overlap} * least(m1.n, m2.n)"""


def poisson_tail(w: npt.ArrayLike, lam: npt.ArrayLike, k: int = 1) -> npt.NDArray[np.float64]:
    """:math:`P(X \\ge w \\mid X \\ge k)` for :math:`X \\sim \\mathrm{Poisson}(\\lambda)`:
    how rare a weight of ``w`` is for a pair that reached ``k`` and expected ``lam``.
    Where both tails underflow (a tiny ``lam``), their ratio is taken from the leading
    terms, :math:`\\lambda^{w-k} k! / w!`; a weight of ``k`` or less has 1.

    >>> [float(f"{p:.4g}") for p in poisson_tail([2, 3, 3, 5], [0.5, 1e-6, 1e-300, 0.0], k=2)]
    [1.0, 3.333e-07, 3.333e-301, 0.0]
    >>> poisson_tail([2], [1e-3]).round(7).tolist()
    [0.0004999]
    """
    weights = np.ceil(np.asarray(w, dtype=np.float64))
    means = np.asarray(lam, dtype=np.float64)
    weights, means = np.broadcast_arrays(weights, means)
    upper = special.pdtrc(np.maximum(weights - 1, 0), means)
    reached = special.pdtrc(max(k - 1, 0), means)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exact = upper / reached
        leading = np.exp(
            (weights - k) * np.log(means) + special.gammaln(k + 1) - special.gammaln(weights + 1)
        )
    p = np.where(reached > 1e-280, exact, np.where(means > 0, leading, 0.0))
    p = np.where(weights <= k, 1.0, p)
    out: npt.NDArray[np.float64] = np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)
    return out


def _bins(
    m: npt.NDArray[np.float64], phi: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Targets as bursts: ``1 / phi`` bursts of ``phi m`` reports each (a target whose
    report pairs all fall within the window is one burst), grouped in steps of 2% of
    the burst's size and 5% of their number. Returns each group's mean burst size,
    mean number of bursts and number of targets."""
    size = phi * m
    bursts = 1.0 / phi
    key = np.round(np.log(size) / np.log(1.02)) * 100_000 + np.round(np.log(bursts) / np.log(1.05))
    _, where = np.unique(key, return_inverse=True)
    count = np.bincount(where).astype(np.float64)
    return (
        np.bincount(where, weights=size) / count,
        np.bincount(where, weights=bursts) / count,
        count,
    )


def _meeting_rates(
    u_a: npt.NDArray[np.float64],
    u_b: npt.NDArray[np.float64],
    m: npt.NDArray[np.float64],
    phi: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Expected distinct targets of each pair whose reporters filed shares ``u_a`` and
    ``u_b`` of the reports: over targets of ``m`` reports, a share ``phi`` of whose
    pairs of reports fall within the window, seen as ``1 / phi`` bursts of ``s = phi
    m`` reports, the chance that both reporters get a report in one burst,
    :math:`1 - (1 - (1 - e^{-s u_a})(1 - e^{-s u_b}))^{1/\\phi}`, summed. It is exact
    for a target in one burst and tends to :math:`1 - e^{-\\phi m^2 u_a u_b}` for
    targets spread thin; computed once per pair of distinct volumes."""
    size, bursts, count = _bins(m, phi)
    pairs = np.stack([u_a, u_b], axis=1)
    distinct, inverse = np.unique(pairs, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    rates = np.empty(distinct.shape[0])
    step = max(1, 4_000_000 // max(size.size, 1))
    with np.errstate(divide="ignore"):
        for lo in range(0, distinct.shape[0], step):
            a = distinct[lo : lo + step, 0:1]
            b = distinct[lo : lo + step, 1:2]
            both = -np.expm1(-size * a) * -np.expm1(-size * b)
            missed = np.exp(bursts * np.log1p(-np.minimum(both, 1.0)))
            rates[lo : lo + step] = (count * (1.0 - missed)).sum(axis=1)
    out: npt.NDArray[np.float64] = rates[inverse]
    return out


def _targets(
    con: duckdb.DuckDBPyConnection, keys: Pairs, window: int, *, plain: bool = False
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each target of the pairing (viral ones left out) with two reports or more and a
    pair of them within ``window`` microseconds: its platform, its reports ``m`` and
    the share ``phi`` of its pairs of reports that fall within the window; in
    (platform, target) order. The reports come sorted by platform, target and time
    and the pairs are counted by :func:`~concerted.brigades.counting.pairs_within`;
    ``plain`` counts them with SQL window functions instead, the reference."""
    viral = f"ANTI JOIN {keys.viral} v USING (oid)" if keys.viral else ""
    if plain:
        # For each report, the earlier ones of its target within the window (a range
        # frame counts every report at the same instant too, so those ties, counted
        # from both ends, are taken off once).
        got = con.sql(
            f"""WITH r AS (SELECT platform, oid, t FROM {keys.rows} {viral}),
                near AS (
                    SELECT platform, oid, count(*) AS m, sum(k) AS c FROM (
                        SELECT platform, oid, count(*) OVER (
                            PARTITION BY platform, oid ORDER BY t
                            RANGE BETWEEN {window} PRECEDING AND CURRENT ROW) - 1 AS k
                        FROM r) GROUP BY platform, oid HAVING count(*) > 1),
                ties AS (
                    SELECT platform, oid, sum(n * (n - 1) // 2) AS c FROM (
                        SELECT platform, oid, count(*) AS n FROM r GROUP BY platform, oid, t
                        HAVING count(*) > 1) GROUP BY platform, oid)
                SELECT platform, m::DOUBLE AS m,
                       ((near.c - coalesce(ties.c, 0)) / (m * (m - 1) / 2))::DOUBLE AS phi
                FROM near LEFT JOIN ties USING (platform, oid)
                WHERE near.c - coalesce(ties.c, 0) > 0
                ORDER BY platform, oid"""
        ).fetchnumpy()
        return (
            np.asarray(got["platform"], dtype=object),
            np.asarray(got["m"], dtype=np.float64),
            np.asarray(got["phi"], dtype=np.float64),
        )
    names = [
        str(row[0])
        for row in con.sql(
            f"SELECT DISTINCT platform FROM {keys.rows} ORDER BY platform"
        ).fetchall()
    ]
    codes = ", ".join(f"({sql_literal(name)}, {k})" for k, name in enumerate(names))
    got = con.sql(
        f"""SELECT c.code, r.oid, r.t FROM {keys.rows} r {viral}
            JOIN (VALUES {codes or "(NULL, 0)"}) c(platform, code) USING (platform)
            ORDER BY c.code, r.oid, r.t"""
    ).fetchnumpy()
    code = np.asarray(got["code"], dtype=np.int64)
    oid = np.asarray(got["oid"], dtype=np.int64)
    t = np.asarray(got["t"], dtype=np.int64)
    begins = np.ones(t.size, dtype=bool)
    begins[1:] = (code[1:] != code[:-1]) | (oid[1:] != oid[:-1])
    starts = np.flatnonzero(begins)
    m = np.diff(np.append(starts, t.size))
    pairs = counting.pairs_within(starts, t, window)
    kept = (m > 1) & (pairs > 0)
    m, pairs, starts = m[kept], pairs[kept], starts[kept]
    platform = np.asarray(names, dtype=object)[code[starts]] if starts.size else np.zeros(0, object)
    return (
        np.asarray(platform, dtype=object),
        m.astype(np.float64),
        pairs / (m * (m - 1) / 2),
    )


def _expected(con: duckdb.DuckDBPyConnection, keys: Pairs, edges: str) -> str:
    """A temporary table: each pair of ``edges`` (strings, one or more rows a pair) with
    its weight ``w`` (summed over its rows) and its expected distinct co-reported
    targets ``lam`` under the analytic null (see the module's notes); returns its
    name."""
    table = f"_bg_expected_{next(_ids)}"
    window = round(float(keys.window or 0.0) * 1_000_000)
    targets = _targets(con, keys, window)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
            WITH volume AS (SELECT platform, actor_id, count(*)::DOUBLE AS n FROM {keys.rows}
                            GROUP BY platform, actor_id),
            total AS (SELECT platform, sum(n) AS n FROM volume GROUP BY platform),
            pairs AS (SELECT platform_1, account_1, platform_2, account_2,
                             sum(weight) AS w FROM {edges} GROUP BY ALL)
            SELECT p.platform_1, p.account_1, p.platform_2, p.account_2, p.w,
                   a.n / ta.n AS u_1, b.n / tb.n AS u_2, NULL::DOUBLE AS lam,
                   (row_number() OVER ())::BIGINT AS i
            FROM pairs p
            JOIN volume a ON a.platform = p.platform_1 AND a.actor_id = p.account_1
            JOIN volume b ON b.platform = p.platform_2 AND b.actor_id = p.account_2
            JOIN total ta ON ta.platform = p.platform_1
            JOIN total tb ON tb.platform = p.platform_2"""
    )
    pairs = con.sql(f"SELECT i, platform_1, u_1, u_2 FROM {table}").fetchnumpy()
    platform = np.asarray(pairs["platform_1"], dtype=object)
    u_1 = np.asarray(pairs["u_1"], dtype=np.float64)
    u_2 = np.asarray(pairs["u_2"], dtype=np.float64)
    lam = np.zeros(u_1.size)
    where, m, phi = targets
    # Two platforms' reporters meet only on ids both platforms use: the first one's
    # targets stand for them.
    for name in np.unique(platform) if platform.size else []:
        rows = platform == name
        here = where == name
        if here.any():
            lam[rows] = _meeting_rates(u_1[rows], u_2[rows], m[here], phi[here])
    values = pa.table({"i": pa.array(np.asarray(pairs["i"], dtype=np.int64)), "lam": lam})
    name = f"{table}_lam"
    con.register(name, values)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT t.* EXCLUDE (lam, u_1, u_2), v.lam FROM {table} t JOIN {name} v USING (i)"""
        )
    finally:
        con.unregister(name)
    return table


def analytic(
    con: duckdb.DuckDBPyConnection,
    keys: Pairs,
    edges: str,
    significance: Significance,
    *,
    min_weight: int,
) -> Verdict:
    """``edges`` (co-reporting's, from pairing ``keys``) tested under the analytic null
    of the module's notes: ``expected`` (:math:`\\lambda_{ab}`), ``p_value``,
    ``q_value`` and ``significant`` filled. The tested edges read a temporary table,
    released once they are stored."""
    table = _expected(con, keys, edges)
    got = con.sql(f"SELECT i, w, lam FROM {table} ORDER BY i").fetchnumpy()
    w = np.asarray(got["w"], dtype=np.float64)
    lam = np.asarray(got["lam"], dtype=np.float64)
    p = poisson_tail(w, lam, k=min_weight)
    q = benjamini_hochberg(p)
    tested = edges_with_tails(con, edges, table, got["i"], p, q, fdr=significance.fdr)
    significant = q <= significance.fdr
    by_weight = []
    for weight in np.unique(w)[:60]:
        at_least = w >= weight
        by_weight.append(
            {
                "weight": int(weight),
                "observed_at_least": int(at_least.sum()),
                "expected_at_least": float(
                    poisson_tail(np.full(w.size, weight), lam, k=min_weight).sum()
                ),
                "q_value": float(q[at_least].min()),
            }
        )
    notes: dict[str, Any] = {
        "null": "analytic",
        "statistic": "distinct co-reported targets",
        "fdr": significance.fdr,
        "pairs_tested": int(w.size),
        "min_significant_weight": float(w[significant].min()) if significant.any() else None,
        "pairs_significant": int(significant.sum()),
        "expected_weight": float(lam.sum()),
        "observed_weight": float(w.sum()),
        "by_weight": by_weight,
    }
    return Verdict(edges=tested, notes=notes, temporary=(table,))


def on_engine(engine: Engine | None, detector: Detector, settings: BrigadeSettings) -> bool:
    """Whether :func:`rounds` pairs ``detector``'s reports on ``engine``: an engine
    other than DuckDB (whose pairing is the detector's own, on the same connection), a
    detector that reads a pairing made elsewhere (co-reporting's
    :meth:`~concerted.detectors.co_report.CoReport.from_paired`), and the analytic
    null (randomised copies pair on DuckDB).

    >>> from concerted.detectors.co_report import CoReport
    >>> on_engine(None, CoReport(), BrigadeSettings())
    False
    """
    return (
        engine is not None
        and engine.name != "duckdb"
        and settings.null == "analytic"
        and callable(getattr(detector, "unpaired", None))
        and callable(getattr(detector, "from_paired", None))
    )


def _layer(detector: Any) -> CoAction:
    """Co-action on the reports with co-reporting's settings: the pairing an engine
    makes for it."""
    return CoAction(
        window=detector.window,
        kinds=("report",),
        min_weight=detector.min_weight,
        max_object_pairs=detector.max_object_pairs,
    )


def rounds(
    ws: Workspace,
    detector: Detector,
    settings: BrigadeSettings,
    significance: Significance,
    clock: Clock,
    *,
    keep: bool = False,
    engine: Engine | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], Pairs | None]:
    """Co-reporting with its significance test, in rounds; its tested edges and its
    events go to ``_bg_edges`` and ``_bg_events``. A pair tested again keeps its
    latest test. With ``keep``, the first round's pairing (of every report) is kept
    and returned for another detector to read; where ``engine`` pairs the reports
    (:func:`on_engine`) there is none to keep. Returns the first round's notes, the
    notes of every round's test, and the pairing kept."""
    con = ws.con
    kept: Pairs | None = None
    ws.table("_bg_set_aside", "SELECT NULL::VARCHAR AS platform, NULL::VARCHAR AS actor_id LIMIT 0")
    done: list[dict[str, Any]] = []
    first_notes: dict[str, Any] = {}
    pairing = getattr(detector, "pairing", None)
    from_pairs = getattr(detector, "from_pairs", None)
    unpaired = getattr(detector, "unpaired", None)
    without = getattr(detector, "pairing_without", None) if settings.null == "analytic" else None
    derive = getattr(detector, "derive", None) if settings.null == "analytic" else None
    edges_of = getattr(detector, "edges_of", None)
    first: Pairs | None = None
    # The first round's figures of its account pairs, which a later round derives its
    # own from (:meth:`~concerted.detectors.co_report.CoReport.derive`).
    first_found: str | None = None
    from_paired = getattr(detector, "from_paired", None)
    min_weight = int(getattr(detector, "min_weight", 1))
    # The reports' actions, once: the detector and every randomised copy read them.
    actions = "_bg_report_actions"
    remote = engine if on_engine(engine, detector, settings) else None
    derived = (
        remote is None
        and callable(pairing)
        and callable(from_pairs)
        and callable(derive)
        and callable(edges_of)
    )
    # The engine's relations of the round under way, released when it ends, however.
    held: tuple[str, ...] = ()
    try:
        for number in range(settings.rounds):
            stage = f"detect {CO_REPORT}" if number == 0 else f"{CO_REPORT} round {number + 1}"
            with clock.stage(stage):
                # The round's reports, copied where they are read more than once; a
                # derived round reads none, the first one pairs them once.
                source = "(SELECT * FROM actions WHERE kind = 'report')"
                if not derived:
                    source = ws.table(
                        actions,
                        """SELECT a.* FROM actions a ANTI JOIN _bg_set_aside s
                           USING (platform, actor_id) WHERE a.kind = 'report'""",
                    )
                keys: Pairs | None = None
                # Under derive, the account pairs whose figures and events a later
                # round changed (by name), whose events it replaces.
                changed: str | None = None
                if remote is not None and callable(unpaired) and callable(from_paired):
                    # The engine pairs; the counts the score and the test read are
                    # linear in the reports and made here.
                    keys = unpaired(con, source)
                    paired = remote.pair(source, [_layer(detector)])
                    held = paired.temporary
                    evidence = from_paired(
                        con, keys, paired.edges, paired.events, paired.notes.get("viral_objects")
                    )
                    evidence = replace(evidence, temporary=(*keys.tables, *evidence.temporary))
                elif (
                    derived
                    and callable(pairing)
                    and callable(from_pairs)
                    and callable(derive)
                    and callable(edges_of)
                ):
                    # Under the analytic null a later round's pairing and figures are
                    # derived from the first's, paid for the account pairs that change.
                    if number and first is not None and first_found is not None:
                        made = derive(con, first, first_found, "_bg_set_aside")
                        keys, changed = made.keys, made.changed
                        evidence = from_pairs(con, keys, made.found)
                        evidence = replace(evidence, temporary=(*made.tables, *evidence.temporary))
                    else:
                        keys = pairing(con, source)
                        first, first_found = keys, edges_of(con, keys)
                        ws.own(*keys.tables, first_found)
                        kept = keys if keep else None
                        evidence = from_pairs(con, keys, first_found)
                elif callable(pairing) and callable(from_pairs):
                    # The pairing is kept for the test, whose copies are made of its rows.
                    # Under the analytic null a later round's pairing is derived from
                    # the first (kept until the rounds end) rather than made again.
                    if number and first is not None and callable(without):
                        keys = without(con, first, "_bg_set_aside")
                    else:
                        keys = pairing(con, source)
                    evidence = from_pairs(con, keys)
                    if number == 0:
                        kept = keys if keep else None
                        first = keys if callable(without) else None
                        if first is not None:
                            ws.own(*first.tables)
                    if keys is not kept and keys is not first:
                        evidence = replace(evidence, temporary=(*keys.tables, *evidence.temporary))
                else:
                    evidence = detector.detect(con, source)
                ws.own(*evidence.temporary)
                ws.table("_bg_found", evidence.edges.sql_query())
            with clock.stage(f"test {CO_REPORT}" if number == 0 else f"test round {number + 1}"):
                if keys is not None and settings.null == "analytic":
                    tested = analytic(con, keys, "_bg_found", significance, min_weight=min_weight)
                else:
                    # Copies, or a detector that gives no pairing to count chance pairs on.
                    copies = significance.monte_carlo()
                    if keys is not None:
                        counts = copies.null_weights_of_pairing(con, keys, min_weight=min_weight)
                    else:
                        counts = copies.null_weights(con, source, detector, ("report",))
                    tested = copies.test(con, "_bg_found", counts)
                ws.table("_bg_tested", tested.edges.sql_query())
                ws.drop(*tested.temporary)
                if number:
                    # A pair tested again keeps its latest test and events; under
                    # derive, the events of a pair not changed are the first round's.
                    gone = {"edges": "_bg_tested", "events": "_bg_tested"}
                    if changed is not None:
                        name = sql_literal(detector.name)
                        gone["events"] = f"(SELECT {name} AS detector, * FROM {changed})"
                    for part, tested_keys in gone.items():
                        con.execute(
                            f"DELETE FROM _bg_{part} WHERE {PAIR_KEY} IN "
                            f"(SELECT {PAIR_KEY} FROM {tested_keys})"
                        )
                con.execute(f"INSERT INTO _bg_edges SELECT {columns('edges')} FROM _bg_tested")
                con.execute(
                    f"INSERT INTO _bg_events SELECT {columns('events')} "
                    f"FROM ({evidence.events.sql_query()})"
                )
                ws.table(
                    "_bg_new",
                    f"""WITH t AS ({exclusive("_bg_tested", settings)} AND e.significant)
                        SELECT platform_1 AS platform, account_1 AS actor_id FROM t
                        UNION SELECT platform_2, account_2 FROM t""",
                )
                found = int(ws.scalar("SELECT count(*) FROM _bg_new"))
                # Another round only pays when the accounts left still hold a candidate
                # brigade: min_reporters accounts in exclusive pairs of attach_weight or
                # more that this round did not find significant.
                candidates = int(
                    ws.scalar(
                        f"""WITH t AS ({exclusive("_bg_tested", settings)}
                                      AND NOT coalesce(e.significant, false)
                                      AND e.weight >= {settings.attach_weight}),
                            a AS (SELECT platform_1 AS platform, account_1 AS actor_id FROM t
                                  UNION SELECT platform_2, account_2 FROM t)
                            SELECT count(*) FROM a ANTI JOIN _bg_new USING (platform, actor_id)"""
                    )
                )
                if number == 0:
                    first_notes = evidence.notes
                evidence.release(con)
                if remote is not None:
                    remote.release(*held)
                    held = ()
                ws.drop("_bg_found", "_bg_tested")
            engine_note = {"paired_on": remote.name} if remote is not None else {}
            done.append(
                {
                    **tested.notes,
                    **engine_note,
                    "round": number + 1,
                    "reporters_found": found,
                    "candidates_left": candidates,
                }
            )
            if not found or candidates < settings.min_reporters:
                break
            con.execute("INSERT INTO _bg_set_aside SELECT * FROM _bg_new")
    finally:
        if remote is not None and held:
            remote.release(*held)
    ws.drop("_bg_new", "_bg_set_aside", actions)
    if first is not None and first is not kept:
        ws.drop(*first.tables)
    if first_found is not None:
        ws.drop(first_found)
    if kept is not None:
        ws.own(*kept.tables)
    return first_notes, done, kept
