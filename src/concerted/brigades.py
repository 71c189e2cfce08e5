"""The brigade stage: from the report detectors' evidence to brigades, their targets,
their organisers, and a score for every report.

:func:`find` runs whenever a case holds reports. Its stages, each timed in the notes:

1. **detect**: every detector of :attr:`BrigadeSettings.detectors` (S1-S8, M1, M3 by
   default) on the case.
2. **test**: ``co_report`` pairs (S2) against randomised copies of the reports
   (:class:`~concerted.significance.Significance`, as co-action is tested), in
   ``rounds``: after a round that finds significant reporters, their reports are set
   aside and the rest is tested again, as long as the accounts left still hold a
   candidate (``min_reporters`` accounts in exclusive pairs of ``attach_weight`` or
   more that were not significant). The null model keeps every reporter's volume
   and every target's bursts, so a big brigade's members meet by chance in it too and
   raise the bar for every heavy pair; a smaller brigade beside it only clears the bar
   once the big one is set aside.
3. **reporters**: the network of co-reporting pairs that are significant and
   exclusive: they share at least ``min_overlap`` of the distinct targets the less
   active of the two ever reported (two heavy reporters who share many popular targets
   only because both report a lot are significant by weight, but share a sliver of
   what they report). It is cut to its ``min_degree``-core and falls into connected
   components. Components with members in one dense block (S3), or with two members
   who walked one list in the same order (an S8 pair scoring ``fired`` or more), join;
   neither creates a component. An account outside the core joins the component to
   whose members it has ``attach_edges`` exclusive co-reporting pairs of weight
   ``attach_weight`` or more, significant or not: given that the component is a
   brigade, an account that meets many of its members again and again is one of them.
4. **brigades**: each component with its targets (those that at least
   ``min_target_reporters`` of its members co-reported, and whose reports over the
   time they did were at least ``min_target_share`` theirs: a popular post that
   members also reported among hundreds of others is not a target), its span (its members'
   matched reports on those targets), its reports (its members' reports on its
   targets within the span), its mobilising posts (M1 posts naming at least
   ``call_targets`` of its targets, from ``lead`` before the span to its end, with an
   M1 score of ``mobilisation`` or more: given the brigade, the call need not show the
   mass response by itself) and organisers (their authors, and the admins of the
   pages and groups they were posted in), its automated reporters (members on whom at
   least ``automated_layers`` of S7's ``tool_layers`` score ``automated`` or more:
   one fast pair of reports, or one regular session, happens to people; two
   signatures of a tool rarely do), the strength of every signal and one score.
   **Flagged** when the score reaches ``flag`` and the brigade has
   ``min_reporters`` reporters and ``min_targets`` targets: the one place where a
   threshold turns scores into a finding.
5. **scores**: the causal score of every report (:mod:`concerted.scoring`), then what
   hindsight adds. A report of a flagged brigade (one of its reporters, on one of its
   targets, within its span) is flagged, gets the brigade's ``campaign_id`` and a
   score of at least the brigade's; so is any report whose causal score reaches
   ``scoring.discount``. Flagged reports are to be discounted; targets with
   ``protect_min_reports`` reports or more, at least ``protect_share`` of them
   flagged, are to be protected (report-driven enforcement on them goes to a human),
   and every report on them, or whose causal recommendation says so, is for review.

Organic report spikes (many people reporting one viral post, once each) give no
co-reporting pair beyond chance, so they form no component; a call among friends to
report an account or two forms at most a small one, below ``min_targets``.

**Signal strengths**, in [0, 1] per brigade: for pair detectors (``co_report``,
``list_order``), the share of members with a tie of that detector inside the brigade
(significant ties for ``co_report``); for account signals, the mean over members of
each one's highest score; for target signals, the mean over its targets; for report
signals, the mean over its reports; for post signals (M1, M3), the highest score among
the posts naming its targets from ``lead`` before its span to ``lead`` after. The
brigade's score is the noisy-or ``1 - prod(1 - weight * strength)`` with the weights
of ``signal_weights``; its ``signals`` are the detectors whose strength reaches
``fired``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from concerted import detectors as registry
from concerted.detectors.base import Detector
from concerted.detectors.co_report import CoReport
from concerted.detectors.coaction import Pairs
from concerted.detectors.list_order import ListOrder
from concerted.errors import ConfigError
from concerted.schema import (
    EVIDENCE_CONTRACTS,
    RESULT_CONTRACTS,
    arrow_schema,
    quote_ident,
    sql_literal,
)
from concerted.scoring import ScoreSettings, score_reports
from concerted.significance import Significance

__all__ = ["DETECTORS", "SIGNAL_WEIGHTS", "BrigadeSettings", "Brigades", "find"]

log = logging.getLogger(__name__)

#: The report detectors a brigade analysis runs by default (S1-S8, M1, M3): the
#: built-in detectors of the ``report`` family. A third-party one is enabled by name
#: in ``[brigades] detectors``.
DETECTORS: tuple[str, ...] = registry.of_family("report")

#: Each default detector's weight in a brigade's score (its class's ``weight``).
SIGNAL_WEIGHTS: tuple[tuple[str, float], ...] = tuple(
    (name, registry.weight(name)) for name in DETECTORS
)

_CO_REPORT = "co_report"


def _default_detectors() -> tuple[Detector, ...]:
    return tuple(registry.get(name) for name in DETECTORS)


@dataclass(frozen=True, kw_only=True)
class BrigadeSettings:
    """How brigades are found, scored and flagged (see the module's notes).

    ``detectors`` are instances (``concerted.detectors.get(name, **settings)``); leave
    one out to switch its signal off. Times in seconds.

    >>> s = BrigadeSettings(detectors=())
    >>> s.flag, s.min_targets, s.as_dict()["signal_weights"]["co_report"]
    (0.6, 5, 0.5)
    """

    detectors: tuple[Detector, ...] = field(default_factory=_default_detectors)
    scoring: ScoreSettings = field(default_factory=ScoreSettings)
    rounds: int = 4
    min_overlap: float = 0.1
    min_degree: int = 2
    attach_edges: int = 5
    attach_weight: int = 3
    join_targets: int = 3
    min_target_reporters: int = 3
    min_target_share: float = 0.1
    min_reporters: int = 5
    min_targets: int = 5
    flag: float = 0.6
    fired: float = 0.5
    automated: float = 0.6
    automated_layers: int = 2
    tool_layers: tuple[str, ...] = (
        "subhuman_gap",
        "clockwork",
        "sustained_pace",
        "identical_sequence",
        "client_fingerprint",
    )
    mobilisation: float = 0.2
    call_targets: int = 2
    lead: float = 2 * 86400.0
    protect_share: float = 0.5
    protect_min_reports: int = 5
    signal_weights: tuple[tuple[str, float], ...] = SIGNAL_WEIGHTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", tuple(self.detectors))
        object.__setattr__(self, "tool_layers", tuple(self.tool_layers))
        object.__setattr__(
            self, "signal_weights", tuple((str(k), float(v)) for k, v in self.signal_weights)
        )
        names = [d.name for d in self.detectors]
        if len(set(names)) != len(names):
            raise ConfigError(f"brigades: a detector named twice in {names}")
        for detector in self.detectors:
            if registry.family_of(detector) != "report":
                raise ConfigError(
                    f"brigades: {detector.name!r} is a {registry.family_of(detector)} "
                    "detector, not a report one"
                )
        # A detector without a weight of its own in the settings gets its class's.
        weighed = dict(self.signal_weights)
        missing = tuple(
            (d.name, registry.weight_of(d)) for d in self.detectors if d.name not in weighed
        )
        if missing:
            object.__setattr__(self, "signal_weights", (*self.signal_weights, *missing))
        for name in (
            "rounds",
            "min_degree",
            "attach_edges",
            "attach_weight",
            "join_targets",
            "min_target_reporters",
            "call_targets",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"brigades: {name} must be at least 1")
        if self.min_reporters < 2 or self.min_targets < 1 or self.protect_min_reports < 1:
            raise ConfigError(
                "brigades: min_reporters must be at least 2, min_targets and "
                "protect_min_reports at least 1"
            )
        for name in (
            "min_overlap",
            "min_target_share",
            "flag",
            "fired",
            "automated",
            "mobilisation",
            "protect_share",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"brigades: {name} must lie in [0, 1]")
        if self.automated_layers < 1:
            raise ConfigError("brigades: automated_layers must be at least 1")
        if self.lead < 0:
            raise ConfigError("brigades: lead must not be negative")
        if any(not 0 <= w <= 1 for _, w in self.signal_weights):
            raise ConfigError("brigades: signal weights lie in [0, 1]")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BrigadeSettings:
        """Settings from a mapping (a TOML table): plain keys set fields; ``detectors``
        lists the names to run (default all ten); ``detector.NAME`` tables set a
        detector's settings; a ``scoring`` table sets :class:`ScoreSettings`.

        >>> s = BrigadeSettings.from_mapping({"flag": 0.7, "detectors": ["co_report"],
        ...     "detector": {"co_report": {"window": 3600}}, "scoring": {"discount": 0.6}})
        >>> s.flag, s.names, s.detectors[0].window, s.scoring.discount
        (0.7, ('co_report',), 3600.0, 0.6)
        """
        data = dict(data)
        names = list(data.pop("detectors", DETECTORS))
        options = dict(data.pop("detector", {}))
        unknown = set(options) - set(names)
        if unknown:
            raise ConfigError(f"brigades: settings for detectors not run: {sorted(unknown)}")
        scoring = dict(data.pop("scoring", {}))
        known = {f.name for f in fields(cls)} - {"detectors", "scoring"}
        stray = set(data) - known
        if stray:
            raise ConfigError(
                f"brigades: unknown setting {', '.join(sorted(stray))}; "
                f"known: {', '.join(sorted(known))}"
            )
        score_fields = {f.name for f in fields(ScoreSettings)}
        if set(scoring) - score_fields:
            raise ConfigError(
                f"scoring: unknown setting {', '.join(sorted(set(scoring) - score_fields))}"
            )
        if "signal_weights" in data:
            data["signal_weights"] = tuple(dict(data["signal_weights"]).items())
        return cls(
            detectors=tuple(registry.get(n, **dict(options.get(n, {}))) for n in names),
            scoring=ScoreSettings(**scoring),
            **data,
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the detectors that run."""
        return tuple(d.name for d in self.detectors)

    def as_dict(self) -> dict[str, Any]:
        """Every setting, as ``run.json`` records it."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "detectors":
                out[f.name] = {d.name: _settings(d) for d in value}
            elif f.name == "scoring":
                out[f.name] = _settings(value)
            elif f.name == "signal_weights":
                out[f.name] = dict(value)
            else:
                out[f.name] = value
        return out


def _settings(component: Any) -> dict[str, Any]:
    return {
        f.name: (list(v) if isinstance(v := getattr(component, f.name), tuple) else v)
        for f in fields(component)
    }


@dataclass(frozen=True)
class Brigades:
    """What :func:`find` returns: result tables in :data:`RESULT_CONTRACTS` shape
    (``campaigns``, ``members``, ``targets``, ``report_scores``), the evidence in
    :data:`EVIDENCE_CONTRACTS` shape (``edges``, ``events``, ``signals``), the targets
    to protect (``platform, target_id, target_kind, reports, flagged, share,
    campaign_id``) and notes for ``run.json``."""

    campaigns: pa.Table
    members: pa.Table
    targets: pa.Table
    report_scores: pa.Table
    edges: pa.Table
    events: pa.Table
    signals: pa.Table
    protected: pa.Table
    notes: dict[str, Any]

    @property
    def flagged(self) -> int:
        return sum(bool(f) for f in self.campaigns.column("flagged").to_pylist())


_PROTECTED_FIELDS: list[pa.Field[Any]] = [
    pa.field("platform", pa.string(), nullable=False),
    pa.field("target_id", pa.string(), nullable=False),
    pa.field("target_kind", pa.string()),
    pa.field("reports", pa.int64(), nullable=False),
    pa.field("flagged", pa.int64(), nullable=False),
    pa.field("share", pa.float64(), nullable=False),
    pa.field("campaign_id", pa.string()),
]
#: The columns of the targets to protect (``protected.parquet``).
PROTECTED_SCHEMA = pa.schema(_PROTECTED_FIELDS)
_PROTECTED_SCHEMA = PROTECTED_SCHEMA


class _Clock:
    def __init__(self, progress: Callable[[str], None]) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.progress(f"brigades: {name}")
        log.info("brigade stage %s", name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def _columns(part: str) -> str:
    return ", ".join(c.name for c in EVIDENCE_CONTRACTS[part].columns)


def _empty_evidence(con: duckdb.DuckDBPyConnection, part: str, table: str) -> None:
    cols = ", ".join(
        f"CAST(NULL AS {c.type}) AS {c.name}" for c in EVIDENCE_CONTRACTS[part].columns
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {cols} WHERE false")


def _detect(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings,
    significance: Significance,
    clock: _Clock,
) -> dict[str, Any]:
    """Run the detectors; leave their evidence in ``_bg_edges``, ``_bg_events`` and
    ``_bg_signals`` (co_report's edges tested). Returns the notes."""
    for part in ("edges", "events", "signals"):
        _empty_evidence(con, part, f"_bg_{part}")
    notes: dict[str, Any] = {}
    # S8 pairs the same reports as S2's first round: it runs next, on that pairing.
    sharing = _sharing(settings.detectors)
    shared: Pairs | None = None
    order = list(settings.detectors)
    if sharing is not None:
        order.remove(sharing)
        order.insert(order.index(next(d for d in order if d.name == _CO_REPORT)) + 1, sharing)
    for detector in order:
        if detector.name == _CO_REPORT:
            notes[detector.name], notes["significance"], shared = _co_report(
                con, detector, settings, significance, clock, keep=sharing is not None
            )
            continue
        with clock.stage(f"detect {detector.name}"):
            if detector is sharing and shared is not None:
                evidence = sharing.from_pairs(con, shared)
                evidence = replace(evidence, temporary=(*shared.tables, *evidence.temporary))
                shared = None
            else:
                evidence = detector.detect(con, "actions")
            con.execute(
                f"INSERT INTO _bg_signals SELECT {_columns('signals')} "
                f"FROM ({evidence.signals.sql_query()})"
            )
            con.execute(
                f"INSERT INTO _bg_edges SELECT {_columns('edges')} "
                f"FROM ({evidence.edges.sql_query()})"
            )
            con.execute(
                f"INSERT INTO _bg_events SELECT {_columns('events')} "
                f"FROM ({evidence.events.sql_query()})"
            )
            notes[detector.name] = evidence.notes
            evidence.release(con)
    for table in shared.tables if shared is not None else ():
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return notes


def _sharing(chosen: tuple[Detector, ...]) -> ListOrder | None:
    """The list-order detector that can read co-reporting's first pairing (same window
    and cap, and it needs as many shared targets or more), if both run."""
    co = next((d for d in chosen if isinstance(d, CoReport) and d.name == _CO_REPORT), None)
    lo = next((d for d in chosen if isinstance(d, ListOrder)), None)
    if co is None or lo is None:
        return None
    same = (co.window, co.max_object_pairs) == (lo.window, lo.max_object_pairs)
    return lo if same and lo.min_common >= co.min_weight else None


_PAIR_KEY = "(detector, layer, platform_1, account_1, platform_2, account_2)"


def _exclusive(edges: str, settings: BrigadeSettings) -> str:
    """SQL: the rows ``e`` of ``edges`` whose weight is at least ``min_overlap`` of the
    distinct targets of the less active of the two reporters (``_bg_reported``); more
    conditions follow with ``AND``."""
    return f"""SELECT e.* FROM {edges} e
        JOIN _bg_reported m1 ON m1.platform = e.platform_1 AND m1.actor_id = e.account_1
        JOIN _bg_reported m2 ON m2.platform = e.platform_2 AND m2.actor_id = e.account_2
        WHERE e.weight >= {settings.min_overlap} * least(m1.n, m2.n)"""


def _co_report(
    con: duckdb.DuckDBPyConnection,
    detector: Detector,
    settings: BrigadeSettings,
    significance: Significance,
    clock: _Clock,
    *,
    keep: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]], Pairs | None]:
    """S2 with its significance test, in rounds: after each round that finds
    significant reporters, their reports are set aside and the rest is tested again,
    so that a smaller brigade beside a big one is tested against a null that the big
    one does not fill. A pair tested again keeps its latest test. With ``keep``, the
    first round's pairing (of every report) is kept and returned, for the caller to
    drop."""
    kept: Pairs | None = None
    con.execute("CREATE OR REPLACE TEMP TABLE _bg_set_aside (platform VARCHAR, actor_id VARCHAR)")
    rounds: list[dict[str, Any]] = []
    first_notes: dict[str, Any] = {}
    # The reports' actions, once: the detector and every randomised copy read them.
    actions = "_bg_report_actions"
    for number in range(settings.rounds):
        stage = f"detect {_CO_REPORT}" if number == 0 else f"{_CO_REPORT} round {number + 1}"
        with clock.stage(stage):
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {actions} AS
                    SELECT a.* FROM actions a ANTI JOIN _bg_set_aside s
                    USING (platform, actor_id) WHERE a.kind = 'report'"""
            )
            keys: Pairs | None = None
            if isinstance(detector, CoReport):
                # The pairing is kept for the test, whose copies are made of its rows.
                keys = detector.pairing(con, actions)
                evidence = detector.from_pairs(con, keys)
                if keep and number == 0:
                    kept = keys
                else:
                    evidence = replace(evidence, temporary=(*keys.tables, *evidence.temporary))
            else:
                evidence = detector.detect(con, actions)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _bg_found AS {evidence.edges.sql_query()}")
        with clock.stage(f"test {_CO_REPORT}" if number == 0 else f"test round {number + 1}"):
            if keys is not None and isinstance(detector, CoReport):
                counts = significance.null_weights_of_pairing(
                    con, keys, min_weight=detector.min_weight
                )
            else:
                counts = significance.null_weights(con, actions, detector, ("report",))
            tested, tested_notes = significance.test(con, "_bg_found", counts)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _bg_tested AS {tested.sql_query()}")
            if number:
                for part in ("edges", "events"):
                    con.execute(
                        f"DELETE FROM _bg_{part} WHERE {_PAIR_KEY} IN "
                        f"(SELECT {_PAIR_KEY} FROM _bg_tested)"
                    )
            con.execute(f"INSERT INTO _bg_edges SELECT {_columns('edges')} FROM _bg_tested")
            con.execute(
                f"INSERT INTO _bg_events SELECT {_columns('events')} "
                f"FROM ({evidence.events.sql_query()})"
            )
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _bg_new AS
                    WITH t AS ({_exclusive("_bg_tested", settings)} AND e.significant)
                    SELECT platform_1 AS platform, account_1 AS actor_id FROM t
                    UNION SELECT platform_2, account_2 FROM t"""
            )
            found = int(_scalar(con, "SELECT count(*) FROM _bg_new"))
            # Another round only pays when the accounts left still hold a candidate
            # brigade: min_reporters accounts in exclusive pairs of attach_weight or
            # more that this round did not find significant.
            candidates = int(
                _scalar(
                    con,
                    f"""WITH t AS ({_exclusive("_bg_tested", settings)}
                                  AND NOT coalesce(e.significant, false)
                                  AND e.weight >= {settings.attach_weight}),
                        a AS (SELECT platform_1 AS platform, account_1 AS actor_id FROM t
                              UNION SELECT platform_2, account_2 FROM t)
                        SELECT count(*) FROM a ANTI JOIN _bg_new USING (platform, actor_id)""",
                )
            )
            if number == 0:
                first_notes = evidence.notes
            evidence.release(con)
            for table in ("_bg_found", "_bg_tested"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        rounds.append(
            {
                **tested_notes,
                "round": number + 1,
                "reporters_found": found,
                "candidates_left": candidates,
            }
        )
        if not found or candidates < settings.min_reporters:
            break
        con.execute("INSERT INTO _bg_set_aside SELECT * FROM _bg_new")
    for table in ("_bg_new", "_bg_set_aside", actions):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return first_notes, rounds, kept


def _components(
    con: duckdb.DuckDBPyConnection, settings: BrigadeSettings
) -> tuple[int, dict[str, Any]]:
    """Cluster the reporters: ``_bg_clusters`` (platform, account_id, cluster). Returns
    the number of clusters and notes."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bg_ties AS
            SELECT DISTINCT platform_1, account_1, platform_2, account_2
            FROM ({_exclusive("_bg_edges", settings)}
                  AND e.detector = '{_CO_REPORT}' AND e.significant)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_nodes AS
           SELECT platform, account_id, (row_number() OVER (ORDER BY platform, account_id) - 1)
                  ::BIGINT AS node
           FROM (SELECT platform_1 AS platform, account_1 AS account_id FROM _bg_ties
                 UNION SELECT platform_2, account_2 FROM _bg_ties)"""
    )
    pairs = con.sql(
        """SELECT n1.node, n2.node FROM _bg_ties t
           JOIN _bg_nodes n1 ON n1.platform = t.platform_1 AND n1.account_id = t.account_1
           JOIN _bg_nodes n2 ON n2.platform = t.platform_2 AND n2.account_id = t.account_2"""
    ).fetchnumpy()
    n = int(_scalar(con, "SELECT count(*) FROM _bg_nodes"))
    source = np.asarray(pairs["node"], dtype=np.int64)
    target = np.asarray(pairs["node_1"], dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    while n:
        live = keep[source] & keep[target]
        degree = np.bincount(source[live], minlength=n) + np.bincount(target[live], minlength=n)
        drop = keep & (degree < settings.min_degree)
        if not drop.any():
            break
        keep &= ~drop
    labels = np.full(n, -1, dtype=np.int64)
    if n:
        live = keep[source] & keep[target]
        matrix = scipy.sparse.coo_matrix(
            (np.ones(int(live.sum())), (source[live], target[live])), shape=(n, n)
        )
        _, comp = connected_components(matrix, directed=False)
        labels = np.where(keep, comp, -1)
    con.register(
        "_bg_labels",
        pa.table({"node": pa.array(np.arange(n), pa.int64()), "label": pa.array(labels)}),
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_core AS
           SELECT n.platform, n.account_id, l.label AS cluster
           FROM _bg_nodes n JOIN _bg_labels l USING (node) WHERE l.label >= 0"""
    )
    con.unregister("_bg_labels")
    # Components that share a dense block (S3) or walk one list (S8) join.
    merged = _merge(con, settings)
    # Accounts outside the core tied to many of a component's members join it.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bg_attached AS
            WITH x AS ({_exclusive("_bg_edges", settings)}
                       AND e.detector = '{_CO_REPORT}' AND e.weight >= {settings.attach_weight}),
            e AS (
                SELECT platform_1 AS p, account_1 AS a, platform_2 AS q, account_2 AS b FROM x
                UNION ALL SELECT platform_2, account_2, platform_1, account_1 FROM x),
            tied AS (
                SELECT e.p AS platform, e.a AS account_id, c.cluster, count(*) AS ties
                FROM e JOIN _bg_core c ON c.platform = e.q AND c.account_id = e.b
                WHERE NOT EXISTS (SELECT 1 FROM _bg_core x
                                  WHERE x.platform = e.p AND x.account_id = e.a)
                GROUP BY ALL HAVING count(*) >= {settings.attach_edges})
            SELECT platform, account_id, cluster FROM tied
            QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                       ORDER BY ties DESC, cluster) = 1"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_clusters AS
           SELECT platform, account_id, cluster, true AS core FROM _bg_core
           UNION ALL SELECT platform, account_id, cluster, false FROM _bg_attached"""
    )
    clusters = int(_scalar(con, "SELECT count(DISTINCT cluster) FROM _bg_clusters"))
    notes = {
        "network_reporters": n,
        "core_reporters": int(keep.sum()) if n else 0,
        "attached_reporters": int(_scalar(con, "SELECT count(*) FROM _bg_attached")),
        "components_joined": merged,
        "components": clusters,
    }
    return clusters, notes


def _merge(con: duckdb.DuckDBPyConnection, settings: BrigadeSettings) -> int:
    """Relabel ``_bg_core`` so that components whose members reported ``join_targets``
    targets of one dense block (S3), or whose members walked one list in the same order
    (S8), are one; returns how many components were joined into others. Neither creates
    a component: both only join what significant co-reporting found.

    A block alone does not join: peeling can keep a few heavy everyday reporters in a
    block (see :mod:`~concerted.detectors.dense_block`), and through them the blocks
    of brigades that share no target come out as one (on 3 million synthetic reports,
    four brigades were one campaign); and two brigades may both report one target by
    chance (two of those four did)."""
    fired = settings.fired
    links = con.sql(
        f"""WITH m AS (
                SELECT s.related_id AS block, c.cluster, c.platform, c.account_id
                FROM _bg_signals s
                JOIN _bg_core c ON c.platform = s.platform AND c.account_id = s.id
                WHERE s.detector = 'dense_block' AND s.entity = 'account'
                  AND s.related_id IS NOT NULL AND s.score >= {fired}),
            t AS (SELECT related_id AS block, platform, id AS target_id FROM _bg_signals
                  WHERE detector = 'dense_block' AND entity = 'target'
                    AND related_id IS NOT NULL),
            b AS (
                SELECT DISTINCT m.block, m.cluster, t.platform, t.target_id
                FROM m JOIN reports r ON r.platform = m.platform
                 AND r.reporter_id = m.account_id
                JOIN t ON t.block = m.block AND t.platform = r.platform
                 AND t.target_id = r.target_id)
            SELECT x.cluster, y.cluster FROM b x JOIN b y
            ON x.block = y.block AND x.platform = y.platform AND x.target_id = y.target_id
             AND x.cluster < y.cluster
            GROUP BY x.cluster, y.cluster
            HAVING count(DISTINCT (x.platform, x.target_id)) >= {settings.join_targets}
            UNION
            SELECT DISTINCT least(c1.cluster, c2.cluster), greatest(c1.cluster, c2.cluster)
            FROM _bg_edges e
            JOIN _bg_core c1 ON c1.platform = e.platform_1 AND c1.account_id = e.account_1
            JOIN _bg_core c2 ON c2.platform = e.platform_2 AND c2.account_id = e.account_2
            WHERE e.detector = 'list_order' AND coalesce(e.score, 1.0) >= {fired}
              AND c1.cluster <> c2.cluster"""
    ).fetchall()
    if not links:
        return 0
    top = int(_scalar(con, "SELECT coalesce(max(cluster), -1) + 1 FROM _bg_core"))
    rows = np.asarray([a for a, _ in links], dtype=np.int64)
    cols = np.asarray([b for _, b in links], dtype=np.int64)
    matrix = scipy.sparse.coo_matrix((np.ones(len(links)), (rows, cols)), shape=(top, top))
    _, joined = connected_components(matrix, directed=False)
    con.register(
        "_bg_join",
        pa.table({"cluster": pa.array(np.arange(top)), "merged": pa.array(joined)}),
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_core AS
           SELECT c.platform, c.account_id, j.merged AS cluster
           FROM _bg_core c JOIN _bg_join j USING (cluster)"""
    )
    con.unregister("_bg_join")
    return int(top - len(set(joined.tolist())))


def _brigade_tables(con: duckdb.DuckDBPyConnection, settings: BrigadeSettings) -> None:
    """Targets, spans and reports of each cluster: ``_bg_targets``, ``_bg_spans`` and
    ``_bg_reports``."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bg_pair_events AS
            SELECT c1.cluster, v.platform_1 AS platform, v.object_id AS target_id,
                   v.account_1, v.account_2, v.ts_1, v.ts_2
            FROM _bg_events v
            JOIN _bg_clusters c1 ON c1.platform = v.platform_1 AND c1.account_id = v.account_1
            JOIN _bg_clusters c2 ON c2.platform = v.platform_2 AND c2.account_id = v.account_2
             AND c2.cluster = c1.cluster
            WHERE v.detector = '{_CO_REPORT}'"""
    )
    # A target is the brigade's when enough members co-reported it, and when they filed
    # at least min_target_share of its reports over the time they did: a popular post
    # that members also reported, among hundreds of others, is not.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bg_targets AS
            WITH m AS (SELECT cluster, platform, target_id, account_1 AS a,
                              least(ts_1, ts_2) AS t0, greatest(ts_1, ts_2) AS t1
                       FROM _bg_pair_events
                       UNION ALL SELECT cluster, platform, target_id, account_2,
                              least(ts_1, ts_2), greatest(ts_1, ts_2) FROM _bg_pair_events),
            c AS (SELECT cluster, platform, target_id, count(DISTINCT a) AS reporters,
                         min(t0) AS first_ts, max(t1) AS last_ts FROM m
                  GROUP BY ALL HAVING count(DISTINCT a) >= {settings.min_target_reporters}),
            shares AS (
                SELECT c.cluster, c.platform, c.target_id,
                       count(*) FILTER (WHERE k.account_id IS NOT NULL) / count(*) AS share
                FROM c JOIN reports r ON r.platform = c.platform AND r.target_id = c.target_id
                 AND r.ts BETWEEN c.first_ts AND c.last_ts
                LEFT JOIN _bg_clusters k ON k.cluster = c.cluster AND k.platform = r.platform
                 AND k.account_id = r.reporter_id
                GROUP BY ALL)
            SELECT c.cluster, c.platform, c.target_id, c.reporters FROM c
            JOIN shares USING (cluster, platform, target_id)
            WHERE shares.share >= {settings.min_target_share}"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_spans AS
           SELECT e.cluster, min(least(e.ts_1, e.ts_2)) AS first_ts,
                  max(greatest(e.ts_1, e.ts_2)) AS last_ts
           FROM _bg_pair_events e SEMI JOIN _bg_targets t USING (cluster, platform, target_id)
           GROUP BY e.cluster"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_reports AS
           SELECT c.cluster, r.platform, r.report_id, r.reporter_id, r.target_id,
                  r.target_kind, r.ts
           FROM reports r
           JOIN _bg_clusters c ON c.platform = r.platform AND c.account_id = r.reporter_id
           JOIN _bg_targets t ON t.cluster = c.cluster AND t.platform = r.platform
            AND t.target_id = r.target_id
           JOIN _bg_spans s ON s.cluster = c.cluster
           WHERE r.ts BETWEEN s.first_ts AND s.last_ts"""
    )


def _entity_strengths(entity: str, table: str, key: str, fired: float) -> str:
    """SQL: ``detector, cluster, strength, count`` for the signals on ``entity``: each
    entity's strongest signal per detector, summed over the cluster's entities in
    ``table`` (id column ``key``) over their number, and the entities it fired on."""
    return f"""
        WITH s AS (SELECT detector, platform, id, max(score) AS score FROM _bg_signals
                   WHERE entity = {sql_literal(entity)} GROUP BY ALL),
        sizes AS (SELECT cluster, count(*) AS n FROM {table} GROUP BY cluster)
        SELECT s.detector, x.cluster, sum(s.score) / any_value(sizes.n),
               count(*) FILTER (WHERE s.score >= {fired})
        FROM s JOIN {table} x ON x.platform = s.platform AND x.{key} = s.id
        JOIN sizes USING (cluster) GROUP BY ALL"""


def _strengths(
    con: duckdb.DuckDBPyConnection, settings: BrigadeSettings
) -> dict[int, dict[str, dict[str, float]]]:
    """For each cluster, each detector's strength and how many entities it fired on."""
    fired = settings.fired
    lead = f"INTERVAL ({settings.lead}) SECOND"
    queries = {
        # Pair detectors: share of members with a tie inside the cluster.
        "pairs": f"""
            WITH t AS (
                SELECT e.detector, c1.cluster, e.platform_1 AS p, e.account_1 AS a,
                       e.platform_2 AS q, e.account_2 AS b
                FROM _bg_edges e
                JOIN _bg_clusters c1 ON c1.platform = e.platform_1
                 AND c1.account_id = e.account_1
                JOIN _bg_clusters c2 ON c2.platform = e.platform_2
                 AND c2.account_id = e.account_2 AND c2.cluster = c1.cluster
                WHERE (e.detector = '{_CO_REPORT}' AND e.significant)
                   OR (e.detector <> '{_CO_REPORT}' AND coalesce(e.score, 1.0) >= {fired})),
            ends AS (SELECT detector, cluster, p, a FROM t UNION SELECT detector, cluster, q, b
                     FROM t),
            sizes AS (SELECT cluster, count(*) AS n FROM _bg_clusters GROUP BY cluster)
            SELECT detector, cluster, count(*) / any_value(sizes.n), count(*)
            FROM ends JOIN sizes USING (cluster) GROUP BY ALL""",
        # Signals on one entity of the cluster's: mean score over its entities, and
        # how many it fired on.
        "account": _entity_strengths("account", "_bg_clusters", "account_id", fired),
        "target": _entity_strengths("target", "_bg_targets", "target_id", fired),
        "report": _entity_strengths("report", "_bg_reports", "report_id", fired),
        "post": f"""
            SELECT s.detector, t.cluster, max(s.score),
                   count(DISTINCT s.id) FILTER (WHERE s.score >= {fired})
            FROM _bg_signals s
            JOIN _bg_targets t ON t.platform = s.platform AND t.target_id = s.related_id
            JOIN _bg_spans sp ON sp.cluster = t.cluster
            LEFT JOIN posts p ON p.platform = s.platform AND p.post_id = s.id
            WHERE s.entity = 'post'
              AND coalesce(p.ts, s.first_ts, sp.first_ts)
                  BETWEEN sp.first_ts - {lead} AND sp.last_ts + {lead}
            GROUP BY ALL""",
    }
    out: dict[int, dict[str, dict[str, float]]] = {}
    for query in queries.values():
        for detector, cluster, strength, count in con.sql(query).fetchall():
            held = out.setdefault(int(cluster), {}).setdefault(
                str(detector), {"strength": 0.0, "fired_on": 0}
            )
            # A detector with rows on several entities keeps its strongest.
            if float(strength) > held["strength"]:
                held["strength"] = min(1.0, float(strength))
            held["fired_on"] = max(int(held["fired_on"]), int(count))
    return out


def _organisers(con: duckdb.DuckDBPyConnection, settings: BrigadeSettings) -> None:
    """Mobilising posts (``_bg_calls``) and organisers (``_bg_organisers``)."""
    lead = f"INTERVAL ({settings.lead}) SECOND"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bg_calls AS
            SELECT t.cluster, p.platform, p.post_id, any_value(p.account_id) AS account_id,
                   any_value(p.venue_id) AS venue_id, max(s.score) AS score
            FROM _bg_signals s
            JOIN posts p ON p.platform = s.platform AND p.post_id = s.id
            JOIN _bg_targets t ON t.platform = s.platform AND t.target_id = s.related_id
            JOIN _bg_spans sp ON sp.cluster = t.cluster
            WHERE s.detector = 'mobilisation' AND s.entity = 'post'
              AND p.ts BETWEEN sp.first_ts - {lead} AND sp.last_ts
            GROUP BY t.cluster, p.platform, p.post_id
            HAVING max(s.score) >= {settings.mobilisation}
               AND count(DISTINCT s.related_id) >= {settings.call_targets}"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_organisers AS
           SELECT cluster, platform, account_id, list(DISTINCT why ORDER BY why) AS why
           FROM (SELECT cluster, platform, account_id, 'mobilisation' AS why FROM _bg_calls
                 UNION ALL
                 SELECT c.cluster, r.platform, r.account_id, 'admin'
                 FROM (SELECT DISTINCT cluster, platform, venue_id FROM _bg_calls
                       WHERE venue_id IS NOT NULL) c
                 JOIN roles r ON r.platform = c.platform AND r.venue_id = c.venue_id
                 WHERE r.role = 'admin')
           GROUP BY ALL"""
    )


def _noisy_or(strengths: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> float:
    keep = 1.0
    for name, part in strengths.items():
        keep *= 1.0 - weights.get(name, 0.0) * float(part["strength"])
    return round(1.0 - keep, 6)


def find(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings | None = None,
    significance: Significance | None = None,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> Brigades:
    """Find the brigades in the case on ``con`` and score every report.

    ``con`` holds the case tables (``accounts``, ``posts``, ``reports``, ``roles``,
    ``actions``) under their contract names. Creates and drops temporary tables named
    ``_bg_*``; changes nothing else.
    """
    settings = settings or BrigadeSettings()
    # Co-reporting is tested against randomised copies (``significance.copies``).
    significance = (significance or Significance()).monte_carlo()
    with _reports_on_authors(con) as rolled_up:
        found = _find(con, settings, significance, progress)
    found.notes["reports_on_posts_rolled_up"] = rolled_up
    return found


@contextmanager
def _reports_on_authors(con: duckdb.DuckDBPyConnection) -> Iterator[int]:
    """While the stage runs, a report on a post counts as a report on the post's
    author, where the case knows the post: a brigade that reports a listed account's
    posts instead of its profile is after the account. Temporary tables ``reports``
    and ``actions`` stand in for the case's (the reported post kept in the report's
    ``extra`` as ``reported_post``) and are dropped after; nothing is made where no
    report names a known post. Yields how many reports were rolled up."""
    database = quote_ident(str(_scalar(con, "SELECT current_database()")))
    case = f"{database}.main"
    rolled = int(
        _scalar(
            con,
            f"""SELECT count(*) FROM {case}.reports r JOIN {case}.posts p
                ON p.platform = r.platform AND p.post_id = r.target_id
                WHERE r.target_kind = 'post' AND p.account_id IS NOT NULL""",
        )
    )
    if not rolled:
        yield 0
        return
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _bg_authors AS
        SELECT r.platform, r.report_id, r.target_id AS post_id, p.account_id AS author
        FROM {case}.reports r JOIN {case}.posts p
          ON p.platform = r.platform AND p.post_id = r.target_id
        WHERE r.target_kind = 'post' AND p.account_id IS NOT NULL;
        CREATE OR REPLACE TEMP TABLE reports AS
        SELECT r.* REPLACE (
                   coalesce(a.author, r.target_id) AS target_id,
                   CASE WHEN a.author IS NULL THEN r.target_kind ELSE 'account' END
                       AS target_kind,
                   CASE WHEN a.author IS NULL THEN r.extra
                        ELSE json_merge_patch(coalesce(r.extra, '{{}}'::JSON),
                                              json_object('reported_post', a.post_id))
                   END AS extra)
        FROM {case}.reports r LEFT JOIN _bg_authors a USING (platform, report_id);
        CREATE OR REPLACE TEMP TABLE actions AS
        SELECT x.* REPLACE (coalesce(a.author, x.object_id) AS object_id)
        FROM {case}.actions x LEFT JOIN _bg_authors a
          ON x.kind = 'report' AND a.platform = x.platform AND a.report_id = x.source_id;
        """
    )
    try:
        yield rolled
    finally:
        for table in ("reports", "actions", "_bg_authors"):
            con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")


def _find(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings,
    significance: Significance,
    progress: Callable[[str], None],
) -> Brigades:
    clock = _Clock(progress)
    notes: dict[str, Any] = {}
    n_reports = int(_scalar(con, "SELECT count(*) FROM reports"))

    # Each reporter's distinct targets, against which a pair's sharing is measured.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _bg_reported AS
           SELECT platform, actor_id, count(DISTINCT object_id) AS n FROM actions
           WHERE kind = 'report' GROUP BY ALL"""
    )
    notes["detectors"] = _detect(con, settings, significance, clock)
    notes["significance"] = notes["detectors"].pop("significance", None)
    with clock.stage("reporters"):
        _, notes["reporters"] = _components(con, settings)
    with clock.stage("brigades"):
        _brigade_tables(con, settings)
        _organisers(con, settings)
        strengths = _strengths(con, settings)
        campaigns, members, targets, ids = _assemble(con, settings, strengths)
    with clock.stage("scores"):
        report_scores, protected = _report_scores(con, settings, campaigns, ids)
    with clock.stage("evidence"):
        edges = _evidence(con, "edges", "_bg_edges")
        events = _evidence(
            con,
            "events",
            f"""(SELECT v.* FROM _bg_events v SEMI JOIN (
                    SELECT * FROM _bg_edges
                    WHERE detector <> '{_CO_REPORT}' OR significant) e
                 ON e.detector = v.detector AND e.layer = v.layer
                AND e.platform_1 = v.platform_1 AND e.account_1 = v.account_1
                AND e.platform_2 = v.platform_2 AND e.account_2 = v.account_2)""",
        )
        signals = _evidence(con, "signals", "_bg_signals")
    for table in _TEMPORARY:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    flagged = sum(bool(f) for f in campaigns.column("flagged").to_pylist())
    notes["counts"] = {
        "reports": n_reports,
        "brigades": campaigns.num_rows,
        "flagged_brigades": flagged,
        "brigade_members": members.num_rows,
        "brigade_targets": targets.num_rows,
        "flagged_reports": sum(bool(f) for f in report_scores.column("flagged").to_pylist()),
        "protected_targets": protected.num_rows,
        "evidence_rows": {
            "edges": edges.num_rows,
            "events": events.num_rows,
            "signals": signals.num_rows,
        },
    }
    notes["settings"] = settings.as_dict()
    notes["seconds"] = clock.seconds
    return Brigades(
        campaigns=campaigns,
        members=members,
        targets=targets,
        report_scores=report_scores,
        edges=edges,
        events=events,
        signals=signals,
        protected=protected,
        notes=notes,
    )


_TEMPORARY = (
    "_bg_reported",
    "_bg_edges",
    "_bg_events",
    "_bg_signals",
    "_bg_ties",
    "_bg_nodes",
    "_bg_core",
    "_bg_attached",
    "_bg_clusters",
    "_bg_pair_events",
    "_bg_targets",
    "_bg_spans",
    "_bg_reports",
    "_bg_calls",
    "_bg_organisers",
)


def _evidence(con: duckdb.DuckDBPyConnection, part: str, relation: str) -> pa.Table:
    order = {
        "edges": "detector, layer, platform_1, account_1, platform_2, account_2",
        "events": "detector, layer, platform_1, account_1, platform_2, account_2, ts_1, ts_2, "
        "object_id",
        "signals": "detector, layer, entity, platform, id, related_id",
    }[part]
    # Large evidence goes out in no particular order: sorting millions of rows costs
    # more than finding them.
    rows = int(_scalar(con, f"SELECT count(*) FROM {relation}"))
    ordered = f" ORDER BY {order}" if rows <= _ORDERED_ROWS else ""
    table = con.sql(f"SELECT {_columns(part)} FROM {relation}{ordered}").to_arrow_table()
    return table.cast(arrow_schema(EVIDENCE_CONTRACTS[part]))


_ORDERED_ROWS = 1_000_000


def _assemble(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings,
    strengths: Mapping[int, Mapping[str, Mapping[str, float]]],
) -> tuple[pa.Table, pa.Table, pa.Table, dict[int, str]]:
    """The campaigns, members and targets tables; the campaign id of each cluster."""
    weights = dict(settings.signal_weights)
    tools = ", ".join(sql_literal(layer) for layer in settings.tool_layers) or "NULL"
    rows = con.sql(
        """WITH m AS (SELECT cluster, count(*) AS reporters FROM _bg_clusters GROUP BY ALL),
                t AS (SELECT cluster, count(*) AS targets FROM _bg_targets GROUP BY ALL),
                r AS (SELECT cluster, count(*) AS reports FROM _bg_reports GROUP BY ALL)
           SELECT m.cluster, m.reporters, coalesce(t.targets, 0), coalesce(r.reports, 0),
                  s.first_ts, s.last_ts
           FROM m LEFT JOIN t USING (cluster) LEFT JOIN r USING (cluster)
           LEFT JOIN _bg_spans s USING (cluster)
           ORDER BY m.reporters DESC, 3 DESC, m.cluster"""
    ).fetchall()
    automated = {
        (int(c), str(p), str(a))
        for c, p, a in con.sql(
            f"""SELECT c.cluster, c.platform, c.account_id FROM _bg_clusters c
                JOIN _bg_signals s ON s.platform = c.platform AND s.id = c.account_id
                WHERE s.detector = 'report_automation' AND s.entity = 'account'
                  AND s.layer IN ({tools}) AND s.score >= {settings.automated}
                GROUP BY ALL
                HAVING count(DISTINCT s.layer) >= {settings.automated_layers}"""
        ).fetchall()
    }
    calls: dict[int, list[str]] = {}
    venues: dict[int, list[str]] = {}
    for cluster, post, venue in con.sql(
        "SELECT cluster, post_id, venue_id FROM _bg_calls ORDER BY cluster, post_id"
    ).fetchall():
        calls.setdefault(int(cluster), []).append(str(post))
        if venue is not None and str(venue) not in venues.setdefault(int(cluster), []):
            venues[int(cluster)].append(str(venue))
    ids: dict[int, str] = {}
    campaigns: list[dict[str, Any]] = []
    for number, (cluster, reporters, n_targets, n_reports, first_ts, last_ts) in enumerate(
        rows, start=1
    ):
        cid = f"brigade-{number}"
        ids[int(cluster)] = cid
        parts = dict(strengths.get(int(cluster), {}))
        score = _noisy_or(parts, weights)
        fired = sorted(name for name, p in parts.items() if p["strength"] >= settings.fired)
        # co_report ties are what made the cluster; say so even when few members have them.
        if _CO_REPORT in parts and _CO_REPORT not in fired:
            fired.insert(0, _CO_REPORT)
        n_auto = sum(1 for a in automated if a[0] == int(cluster))
        flagged = (
            score >= settings.flag
            and reporters >= settings.min_reporters
            and n_targets >= settings.min_targets
        )
        summary = {
            "reporters": int(reporters),
            "automated_reporters": n_auto,
            "targets": int(n_targets),
            "reports": int(n_reports),
            "mobilising_posts": calls.get(int(cluster), [])[:50],
            "venues": venues.get(int(cluster), []),
            "signals": {
                name: {"strength": round(float(p["strength"]), 4), "fired_on": int(p["fired_on"])}
                for name, p in sorted(parts.items())
            },
        }
        campaigns.append(
            {
                "campaign_id": cid,
                "kind": "brigade",
                "score": score,
                "flagged": bool(flagged),
                "signals": fired,
                "first_ts": first_ts,
                "last_ts": last_ts,
                "targets": int(n_targets),
                "reports": int(n_reports),
                "summary": json.dumps(summary, sort_keys=True),
            }
        )
    members = _members(con, settings, ids, automated)
    per_campaign: dict[str, int] = {}
    for row in members:
        per_campaign[row["campaign_id"]] = per_campaign.get(row["campaign_id"], 0) + 1
    for c in campaigns:
        c["accounts"] = per_campaign.get(c["campaign_id"], 0)
    targets = _targets(con, ids)
    return (
        pa.Table.from_pylist(campaigns, schema=arrow_schema(RESULT_CONTRACTS["campaigns"])),
        pa.Table.from_pylist(members, schema=arrow_schema(RESULT_CONTRACTS["members"])),
        targets,
        ids,
    )


def _members(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings,
    ids: Mapping[int, str],
    automated: set[tuple[int, str, str]],
) -> list[dict[str, Any]]:
    """Reporters (their tie strength: the highest NPMI of their significant ties inside
    the brigade) and organisers."""
    fired = settings.fired
    reporters = con.sql(
        f"""WITH ties AS (
                SELECT c1.cluster, e.platform_1 AS p, e.account_1 AS a, e.score
                FROM _bg_edges e
                JOIN _bg_clusters c1 ON c1.platform = e.platform_1
                 AND c1.account_id = e.account_1
                JOIN _bg_clusters c2 ON c2.platform = e.platform_2
                 AND c2.account_id = e.account_2 AND c2.cluster = c1.cluster
                WHERE e.detector = '{_CO_REPORT}'
                UNION ALL
                SELECT c1.cluster, e.platform_2, e.account_2, e.score
                FROM _bg_edges e
                JOIN _bg_clusters c1 ON c1.platform = e.platform_2
                 AND c1.account_id = e.account_2
                JOIN _bg_clusters c2 ON c2.platform = e.platform_1
                 AND c2.account_id = e.account_1 AND c2.cluster = c1.cluster
                WHERE e.detector = '{_CO_REPORT}'),
            strength AS (SELECT cluster, p, a, max(score) AS score FROM ties GROUP BY ALL),
            fired AS (SELECT platform, id, list(DISTINCT detector ORDER BY detector) AS names
                      FROM _bg_signals WHERE entity = 'account' AND score >= {fired}
                      GROUP BY ALL)
            SELECT c.cluster, c.platform, c.account_id, s.score, f.names, c.core
            FROM _bg_clusters c
            LEFT JOIN strength s ON s.cluster = c.cluster AND s.p = c.platform
             AND s.a = c.account_id
            LEFT JOIN fired f ON f.platform = c.platform AND f.id = c.account_id
            ORDER BY c.cluster, c.platform, c.account_id"""
    ).fetchall()
    organisers = {
        (int(c), str(p), str(a)): list(why)
        for c, p, a, why in con.sql(
            "SELECT cluster, platform, account_id, why FROM _bg_organisers"
        ).fetchall()
    }
    out: list[dict[str, Any]] = []
    for cluster, platform, account, score, names, core in reporters:
        key = (int(cluster), str(platform), str(account))
        signals = [_CO_REPORT if core else "co_report_attached", *(names or [])]
        if key in organisers:
            role = "organiser"
            signals += organisers.pop(key)
        elif key in automated:
            role = "automated_reporter"
        else:
            role = "reporter"
        out.append(
            {
                "campaign_id": ids[int(cluster)],
                "account_id": account,
                "platform": platform,
                "role": role,
                "score": float(score) if score is not None else None,
                "signals": sorted(set(signals)),
            }
        )
    for (cluster, platform, account), why in sorted(organisers.items()):
        out.append(
            {
                "campaign_id": ids[cluster],
                "account_id": account,
                "platform": platform,
                "role": "organiser",
                "score": None,
                "signals": sorted(why),
            }
        )
    return out


def _targets(con: duckdb.DuckDBPyConnection, ids: Mapping[int, str]) -> pa.Table:
    """Each brigade's targets: its coordinated reports against them and their share of
    all reports on the target in the brigade's span (the score)."""
    table = con.sql(
        """WITH b AS (SELECT cluster, platform, target_id, any_value(target_kind) AS kind,
                             count(*) AS reports, min(ts) AS first_ts, max(ts) AS last_ts
                      FROM _bg_reports GROUP BY ALL),
                every AS (SELECT t.cluster, t.platform, t.target_id, count(r.report_id) AS n
                          FROM _bg_targets t JOIN _bg_spans s USING (cluster)
                          JOIN reports r ON r.platform = t.platform
                           AND r.target_id = t.target_id
                           AND r.ts BETWEEN s.first_ts AND s.last_ts
                          GROUP BY ALL)
           SELECT t.cluster, t.target_id, t.platform, coalesce(b.kind, 'account') AS target_kind,
                  coalesce(b.reports, 0) / greatest(every.n, 1)::DOUBLE AS score,
                  coalesce(b.reports, 0)::BIGINT AS reports, b.first_ts, b.last_ts
           FROM _bg_targets t
           LEFT JOIN b USING (cluster, platform, target_id)
           LEFT JOIN every USING (cluster, platform, target_id)
           ORDER BY t.cluster, t.platform, t.target_id"""
    ).to_arrow_table()
    cluster = table.column("cluster").to_pylist()
    out = table.drop_columns(["cluster"])
    names = [ids[int(c)] for c in cluster if c is not None]
    out = out.add_column(0, "campaign_id", pa.array(names, pa.string()))
    return out.cast(arrow_schema(RESULT_CONTRACTS["targets"]))


def _report_scores(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings,
    campaigns: pa.Table,
    ids: Mapping[int, str],
) -> tuple[pa.Table, pa.Table]:
    """Every report's score, with what the brigades add; and the targets to protect."""
    causal = score_reports(con, settings.scoring)
    # Rows come in scoring order; i keeps it through the joins (an integer sort).
    causal = causal.append_column("i", pa.array(np.arange(causal.num_rows, dtype=np.int64)))
    con.register("_bg_causal", causal)
    brigade = pa.table(
        {
            "campaign_id": campaigns.column("campaign_id"),
            "brigade_score": campaigns.column("score"),
            "brigade_flagged": campaigns.column("flagged"),
        }
    )
    con.register("_bg_campaigns", brigade)
    con.register(
        "_bg_ids",
        pa.table(
            {
                "cluster": pa.array(list(ids), pa.int64()),
                "campaign_id": pa.array(list(ids.values()), pa.string()),
            }
        ),
    )
    discount = settings.scoring.discount
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _bg_scored AS
                SELECT s.i, s.report_id, s.platform,
                       CASE WHEN coalesce(b.brigade_flagged, false)
                            THEN greatest(s.score, b.brigade_score) ELSE s.score END AS score,
                       coalesce(b.brigade_flagged, false) OR s.score >= {discount} AS flagged,
                       s.recommendation, s.held, i.campaign_id,
                       CASE WHEN i.campaign_id IS NULL THEN s.signals
                            ELSE list_append(s.signals, 'brigade') END AS signals,
                       s.reporter_id, s.target_id, s.ts
                FROM _bg_causal s
                LEFT JOIN _bg_reports r ON r.platform = s.platform AND r.report_id = s.report_id
                LEFT JOIN _bg_ids i ON i.cluster = r.cluster
                LEFT JOIN _bg_campaigns b ON b.campaign_id = i.campaign_id"""
        )
    finally:
        for name in ("_bg_causal", "_bg_campaigns", "_bg_ids"):
            con.unregister(name)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bg_protected AS
            WITH p AS (
                SELECT platform, target_id, count(*)::BIGINT AS reports,
                       count(*) FILTER (WHERE flagged)::BIGINT AS flagged,
                       (count(*) FILTER (WHERE flagged) / count(*))::DOUBLE AS share,
                       min(campaign_id) AS campaign_id
                FROM _bg_scored GROUP BY platform, target_id
                HAVING count(*) >= {settings.protect_min_reports}
                   AND count(*) FILTER (WHERE flagged) / count(*) >= {settings.protect_share}),
            kinds AS (
                SELECT r.platform, r.target_id, any_value(r.target_kind) AS target_kind
                FROM reports r SEMI JOIN p USING (platform, target_id) GROUP BY ALL)
            SELECT p.platform, p.target_id, kinds.target_kind, p.reports, p.flagged,
                   p.share, p.campaign_id
            FROM p JOIN kinds USING (platform, target_id)"""
    )
    report_scores = con.sql(
        """SELECT s.report_id, s.platform, s.score, s.flagged,
                  CASE WHEN s.flagged THEN 'discount'
                       WHEN p.target_id IS NOT NULL OR s.held THEN 'review'
                       ELSE s.recommendation END AS recommendation,
                  s.campaign_id, s.signals, s.reporter_id, s.target_id, s.ts
           FROM _bg_scored s
           LEFT JOIN _bg_protected p ON p.platform = s.platform AND p.target_id = s.target_id
           ORDER BY s.i"""
    ).to_arrow_table()
    protected = con.sql(
        "SELECT * FROM _bg_protected ORDER BY share DESC, reports DESC, platform, target_id"
    ).to_arrow_table()
    for name in ("_bg_scored", "_bg_protected"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return (
        report_scores.cast(arrow_schema(RESULT_CONTRACTS["report_scores"])),
        protected.cast(_PROTECTED_SCHEMA),
    )


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    row = con.execute(query).fetchone()
    return row[0] if row else 0
