"""The Spark engine: deriving the actions, the co-action pairing and the stratified
null's sums on Apache Spark, with the same results as the DuckDB engine
(:mod:`concerted.engines.duck`); :mod:`concerted.engines.spark_tables` reads a case's
tables from Parquet datasets with it.

**How data crosses.** Each operation writes its input relations from the case's DuckDB
connection to Parquet in the engine's working directory (``COPY ... TO ... (FORMAT
parquet)``), runs the stage in PySpark, writes the output there as Parquet and gives
back the name of a temporary DuckDB view over it, laid out as the DuckDB engine's
output; :meth:`SparkEngine.release` drops the view and deletes its files. Times cross
as integer microseconds since the epoch (``epoch_us``), turned back into
``TIMESTAMPTZ`` by the view, so no time zone setting of either side touches them. Two
inputs do not cross twice: the actions this engine derived into a relation that held
nothing else are read by :meth:`SparkEngine.pair` and :meth:`SparkEngine.expectations`
from the Parquet Spark wrote them to (while the relation's row count is still theirs;
an engine closed with ``hand_over`` leaves them to the next one on the connection, as
a dataset's loader does for the analysis), and the events this engine paired are read
from its own output.

**The same results.** :meth:`SparkEngine.pair` is a PySpark twin of
:mod:`concerted.detectors.pairing`: the same equi-join on (kind, object, time bucket)
against the same bucket and the next one (buckets one window wide, numbered by
truncating division as DuckDB's ``//`` does), the same exact-gap filter, the same
viral-object cap and figures per pair; the median gap is Spark's exact ``percentile``
(linear interpolation, as DuckDB's ``median``, ``quantile_cont(0.5)``), divided by
10^6 on DuckDB. :meth:`SparkEngine.expectations` sums each term of the expectation as
DuckDB does, as a decimal with 22 places: DuckDB casts a double ``x`` to
``DECIMAL(38, 22)`` by rounding ``x * 1e22`` to an integer, so Spark sums those integers
exactly and DuckDB scales the sum back to ``DECIMAL(38, 22)`` and casts it to
``DOUBLE``, bit for bit as the DuckDB engine does.

**Deriving the actions.** :meth:`SparkEngine.derive_actions` (and :func:`derive`, which
:mod:`concerted.engines.spark_tables` runs on a Parquet dataset) gives the rows
:mod:`concerted.actions` gives on DuckDB: reports and roles are PySpark projections;
posts run :func:`concerted.actions.from_posts` itself, on DuckDB inside each executor,
one Arrow batch at a time (``mapInArrow``, which needs pandas installed: the ``spark``
extra brings it), since Spark's functions do not give DuckDB's normal forms character
for character (Java's case mapping and regular-expression classes differ from
DuckDB's on some characters); the one ``DISTINCT`` across posts (of link actions) is
Spark's. The executors' Python therefore needs ``concerted`` (and DuckDB) installed,
as the driver's does.

**Which input Spark derives.** A Parquet dataset's actions are derived on Spark
(:mod:`concerted.engines.spark_tables`), where its rows already are. Data files given
to ``analyze --engine spark`` are read, typed and checked by DuckDB as they are
ingested into the case, and their actions derived there too: the rows are in the
case's DuckDB already, so deriving them there is one more scan, where Spark would add
a copy of every row out of the case and of every action back in (the benchmark's
``derive`` stage measures both: ``BENCHMARKS.md``, "Spark"). The pairing then reads
those actions as one copy.

**Work done once.** The matched pairs of a co-action layer are persisted (memory, then
local disk) while its edges and its events are written from them, and so are the
per-account strata and the per-pair meetings of the expectations; each is unpersisted
once written. The expectations' shared term crosses each account's strata as one
array and one map rather than one row per pair and stratum (see
:func:`_expectations`).

**Co-reporting.** Under the brigade stage's analytic null each round's reports are
paired here as one co-action layer of kind ``report`` (``run.json``: each round of
``notes.brigades.significance`` says ``paired_on``); the per-target and per-reporter
counts of its test stay on DuckDB, linear in the reports.

**Not on Spark yet.** The nulls made of randomised copies run the co-action detector on
DuckDB whatever the engine, and so does list_order's own pairing of reports.

**Where Spark runs.** The engine uses the active ``SparkSession`` (or one it is given),
else starts one on ``master`` (``CONCERTED_SPARK_MASTER``, else ``local[*]``). The
working directory (``CONCERTED_SPARK_WORKDIR``, else the system's temporary directory)
must be one that the driver, every executor and DuckDB can all read: a local path in
local mode, a shared file system on a cluster.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb

from concerted.actions import SQL_MACROS, from_posts
from concerted.detectors.coaction import CoAction
from concerted.engines.base import DERIVED_FROM, Paired, stratum_filter
from concerted.engines.duck import DuckDBEngine
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS, TIMESTAMP, quote_ident, sql_literal

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["SparkEngine", "derive"]

_ids = itertools.count()

#: Decimal places of the exact sums of the expectations (the DuckDB engine's
#: ``DECIMAL(38, 22)``).
_PLACES = 22

#: Actions Spark derived into relations of a connection, handed over by an engine that
#: closed (:meth:`SparkEngine.close`) to the next one opened on that connection.
_LEFT: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, dict[str, tuple[list[Path], int]]] = (
    weakref.WeakKeyDictionary()
)

#: The columns of the actions Spark reads, but for their time ``t``.
_ACTION_FIELDS = ("kind", "object_id", "platform", "actor_id", "source_id")

_MISSING = "the spark engine needs pyspark and Java 17: pip install 'concerted[spark]'"


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _session(master: str | None) -> SparkSession:
    from pyspark.sql import SparkSession

    # Python workers run the same interpreter as the driver unless told otherwise
    # (the derivation's row-local step runs in them).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName("concerted").master(
        master or os.environ.get("CONCERTED_SPARK_MASTER", "local[*]")
    )
    return builder.getOrCreate()


class SparkEngine:
    """The heavy stages on Spark, over relations named on connection ``con``.

    ``spark`` is the session to use (by default the active one, else one started on
    ``master``); ``work_dir`` holds the Parquet files that cross between DuckDB and
    Spark (see the module's notes).
    """

    name: ClassVar[str] = "spark"

    @staticmethod
    def require() -> None:
        """Raise :class:`ConfigError` unless pyspark can be imported."""
        if importlib.util.find_spec("pyspark") is None:
            raise ConfigError(_MISSING)

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        spark: SparkSession | None = None,
        *,
        master: str | None = None,
        work_dir: str | Path | None = None,
    ) -> None:
        self.require()
        self.con = con
        self.spark = spark if spark is not None else _session(master)
        where = work_dir or os.environ.get("CONCERTED_SPARK_WORKDIR") or None
        self.work_dir = Path(tempfile.mkdtemp(prefix="concerted-spark-", dir=where))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.work_dir, True)
        # The views this engine made, and the directory of Parquet files each reads.
        self._made: dict[str, Path] = {}
        # Relations holding exactly the actions Spark derived: their Parquet, their rows
        # (with those an engine closed before on this connection handed over).
        self._derived: dict[str, tuple[list[Path], int]] = dict(_LEFT.pop(con, {}))
        self._duck = DuckDBEngine(con)

    # -- crossing ----------------------------------------------------------------------

    def _path(self, what: str) -> Path:
        return self.work_dir / f"{what}_{next(_ids)}"

    def _export(self, query: str, what: str) -> str:
        """Write the rows of ``query`` (on DuckDB) to a Parquet file; its path."""
        path = self._path(what).with_suffix(".parquet")
        self.con.execute(f"COPY ({query}) TO {sql_literal(str(path))} (FORMAT parquet)")
        return str(path)

    def _write(self, frame: DataFrame, what: str) -> Path:
        path = self._path(what)
        frame.write.mode("overwrite").parquet(str(path))
        return path

    def _view(self, path: Path, select: str, what: str) -> str:
        """A temporary DuckDB view of ``select`` over the Parquet files in ``path``."""
        name = f"_spark_{what}_{next(_ids)}"
        files = sql_literal(str(path / "*.parquet"))
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS {select.format(src=f'read_parquet({files})')}"
        )
        self._made[name] = path
        return name

    # -- the operations ----------------------------------------------------------------

    def derive_actions(self, table: str, rows: str, into: str = "actions") -> int:
        if table not in DERIVED_FROM:
            raise ConfigError(
                f"actions are derived from {', '.join(DERIVED_FROM)}, not from {table!r}"
            )
        columns = ", ".join(
            f"epoch_us({quote_ident(c.name)}) AS {quote_ident(c.name)}"
            if c.type == TIMESTAMP
            else quote_ident(c.name)
            for c in CONTRACTS[table].columns
        )
        source = self.spark.read.parquet(self._export(f"SELECT {columns} FROM {rows}", table))
        return self.insert_actions(derive(table, source), into)

    def insert_actions(self, frame: DataFrame, into: str = "actions") -> int:
        """Append the actions of ``frame`` (laid out as :data:`ACTION_COLUMNS`, as
        :func:`derive` gives them) to relation ``into`` on the case's connection, and
        count them; their Parquet is kept for :meth:`pair` and :meth:`expectations`
        (:meth:`_keep`)."""
        before = self._count(into)
        path = self._write(frame, "derived")
        files = sql_literal(str(path / "*.parquet"))
        found = self.con.execute(
            f"""INSERT INTO {into}
                SELECT actor_id, platform, kind, object_id, make_timestamptz(t) AS ts,
                       source_id
                FROM read_parquet({files})"""
        ).fetchone()
        inserted = int(found[0]) if found else 0
        self._keep(into, path, before, inserted)
        return inserted

    # -- the actions Spark derived, kept for the stages after ----------------------------

    def _count(self, relation: str) -> int:
        found = self.con.execute(f"SELECT count(*) FROM {relation}").fetchone()
        return int(found[0]) if found else 0

    def _keep(self, into: str, path: Path, before: int, inserted: int) -> None:
        """Remember that relation ``into`` now holds the actions in ``path`` (Parquet
        Spark wrote) after ``before`` rows, so that :meth:`pair` and
        :meth:`expectations` read them where they are instead of writing the case's
        copy out again. Only a relation that held nothing else is remembered."""
        paths, count = self._derived.get(into, ([], 0))
        if count != before:
            for old in paths:
                shutil.rmtree(old, ignore_errors=True)
            paths, count = [], 0
            if before:
                self._derived.pop(into, None)
                shutil.rmtree(path, ignore_errors=True)
                return
        self._derived[into] = ([*paths, path], count + inserted)

    def _actions(
        self,
        actions: str,
        what: str,
        *,
        present: tuple[str, ...],
        kinds: tuple[str, ...] | None = None,
    ) -> DataFrame:
        """The rows of relation ``actions`` whose columns ``present`` are not NULL (and
        whose kind is one of ``kinds``, unless that is None), as Spark reads them:
        ``kind, object_id, platform, actor_id, source_id`` and ``t`` (integer
        microseconds). They come from the Parquet Spark derived them into when the
        relation holds exactly those rows (:meth:`_keep`), else from a copy written
        out of the case."""
        from pyspark.sql import functions as F

        kept = self._derived.get(actions)
        if kept is not None and self._count(actions) == kept[1]:
            frame = self.spark.read.parquet(*(str(p) for p in kept[0]))
            for column in present:
                frame = frame.filter(F.col(column).isNotNull())
            if kinds is not None:
                frame = frame.filter(F.col("kind").isin(list(kinds)))
            return frame.select(*_ACTION_FIELDS, "t")
        where = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in present) or "true"
        if kinds is not None:
            where += f" AND kind IN ({', '.join(sql_literal(k) for k in kinds)})"
        return self.spark.read.parquet(
            self._export(
                f"""SELECT {", ".join(_ACTION_FIELDS)}, epoch_us(ts) AS t
                    FROM {actions} WHERE {where}""",
                what,
            )
        )

    def pair(self, actions: str, layers: Sequence[CoAction]) -> Paired:
        if not layers:
            raise ConfigError("a pairing needs at least one co-action layer")
        rows = self._actions(
            actions, "actions", present=("kind", "object_id", "platform", "actor_id")
        )
        edges: DataFrame | None = None
        events: DataFrame | None = None
        notes: list[dict[str, Any]] = []
        held: list[DataFrame] = []
        for layer in layers:
            e, v, viral, matched = _pair_layer(rows, layer)
            held.append(matched)
            edges = e if edges is None else edges.unionByName(e)
            events = v if events is None else events.unionByName(v)
            notes.append(
                {
                    "window_seconds": layer.window,
                    "kinds": list(layer.kinds) if layer.kinds is not None else "all",
                    "min_weight": layer.min_weight,
                    "max_object_pairs": layer.max_object_pairs,
                    "viral_objects": viral,
                }
            )
        assert edges is not None and events is not None
        name = sql_literal(CoAction.name)
        edges_view = self._view(
            self._write(edges, "edges"),
            f"""SELECT {name} AS detector, kind AS layer, platform_1, account_1,
                       platform_2, account_2, weight::DOUBLE AS weight, NULL::DOUBLE AS score,
                       events::BIGINT AS events, lead_1::BIGINT AS lead_1,
                       lead_2::BIGINT AS lead_2, median_us::DOUBLE / 1e6 AS median_dt,
                       make_timestamptz(first_t) AS first_ts,
                       make_timestamptz(last_t) AS last_ts,
                       NULL::DOUBLE AS expected, NULL::DOUBLE AS p_value,
                       NULL::DOUBLE AS q_value, NULL::BOOLEAN AS significant
                FROM {{src}}""",
            "edges",
        )
        events_view = self._view(
            self._write(events, "events"),
            f"""SELECT {name} AS detector, kind AS layer, platform_1, account_1,
                       platform_2, account_2, object_id,
                       make_timestamptz(t_1) AS ts_1, make_timestamptz(t_2) AS ts_2,
                       source_1, source_2
                FROM {{src}}""",
            "events",
        )
        for frame in held:
            frame.unpersist()
        merged = dict(notes[0])
        if len(notes) > 1:
            merged["layers"] = notes
            merged["viral_objects"] = [v for n in notes for v in n["viral_objects"]]
        return Paired(
            edges=edges_view,
            events=events_view,
            notes=merged,
            temporary=(edges_view, events_view),
        )

    def expectations(
        self,
        events: str | Paired,
        actions: str,
        *,
        stratum: float,
        kinds: tuple[str, ...] | None = None,
    ) -> str:
        stratum_filter(stratum, kinds)  # checks the stratum
        if isinstance(events, Paired):
            events = events.events
        acted = self._actions(
            actions, "acted", present=("object_id", "actor_id"), kinds=kinds
        ).select("platform", "actor_id", "source_id", "t")
        if events in self._made:  # events this engine paired: Spark reads them as they are
            met = self.spark.read.parquet(str(self._made[events]))
        else:
            met = self.spark.read.parquet(
                self._export(
                    f"""SELECT platform_1, account_1, platform_2, account_2,
                               epoch_us(ts_1) AS t_1, epoch_us(ts_2) AS t_2,
                               source_1, source_2
                        FROM {events}""",
                    "met",
                )
            )
        sums, held = _expectations(acted, met, _micros(stratum))
        written = self._write(sums, "expectations")
        for frame in held:
            frame.unpersist()
        scale = f"0.{'0' * (_PLACES - 1)}1::DECIMAL(38, {_PLACES})"
        return self._view(
            written,
            f"""SELECT platform_1, account_1, platform_2, account_2, w::DOUBLE AS w,
                       ((coalesce(shared, 0) + straddling)::DECIMAL(38, 0) * {scale})::DOUBLE
                           AS lam
                FROM {{src}}""",
            "expectations",
        )

    def release(self, *relations: str) -> None:
        for name in relations:
            path = self._made.pop(name, None)
            if path is None:
                self._duck.release(name)
                continue
            self.con.execute(f"DROP VIEW IF EXISTS {name}")
            shutil.rmtree(path, ignore_errors=True)

    def close(self, *, hand_over: bool = False) -> None:
        """Drop every view this engine made and delete its working directory. With
        ``hand_over``, the actions it derived (and their Parquet) are left to the next
        Spark engine opened on the same connection, as a dataset's loader leaves them
        to the analysis; their files go when the connection does."""
        self.release(*list(self._made))
        if hand_over and self._derived:
            kept = Path(
                tempfile.mkdtemp(prefix="concerted-spark-actions-", dir=self.work_dir.parent)
            )
            left: dict[str, tuple[list[Path], int]] = {}
            for relation, (paths, rows) in self._derived.items():
                moved = [kept / f"{i}_{p.name}" for i, p in enumerate(paths)]
                for source, target in zip(paths, moved, strict=True):
                    shutil.move(source, target)
                left[relation] = (moved, rows)
            _LEFT[self.con] = left
            weakref.finalize(self.con, shutil.rmtree, kept, True)
        self._derived.clear()
        self._cleanup()


# -- the stages in PySpark ---------------------------------------------------------------


def _div(column: str, by: int) -> Column:
    """``column // by`` as DuckDB computes it on integers: truncating division."""
    from pyspark.sql import functions as F

    return F.expr(f"{column} div {int(by)}")


def _before(p1: str, a1: str, p2: str, a2: str) -> Column:
    """Account (p1, a1) comes before (p2, a2): strings compared byte by byte, as DuckDB
    orders them."""
    from pyspark.sql import functions as F

    return (F.col(p1) < F.col(p2)) | ((F.col(p1) == F.col(p2)) & (F.col(a1) < F.col(a2)))


def _pair_layer(
    actions: DataFrame, layer: CoAction
) -> tuple[DataFrame, DataFrame, list[dict[str, Any]], DataFrame]:
    """One layer's edges (integers: ``weight``, ``events``, ``lead_1``, ``lead_2``,
    ``median_us``, ``first_t``, ``last_t``), its events, its viral objects and the
    matched pairs both are read from (persisted: the caller unpersists them), as
    :func:`concerted.detectors.pairing.pair_keys`, :func:`~.pairing.pair_edges` and
    :func:`~.pairing.pair_events` define them."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    window = _micros(layer.window)
    rows = actions
    if layer.kinds is not None:
        rows = rows.filter(F.col("kind").isin(list(layer.kinds)))
    rows = rows.withColumn("b", _div("t", max(1, window)))
    obj = ["kind", "object_id"]

    viral: list[dict[str, Any]] = []
    cap = layer.max_object_pairs
    if cap is not None:
        big = (
            rows.groupBy(*obj)
            .agg(F.count(F.lit(1)).alias("n"))
            .filter(F.expr(f"n * (n - 1) div 2 > {int(cap)}"))
            .select(*obj)
        )
        cells = (
            rows.join(big, obj, "left_semi").groupBy(*obj, "b").agg(F.count(F.lit(1)).alias("c"))
        )
        after = cells.select(*obj, (F.col("b") - 1).alias("b"), F.col("c").alias("c_next"))
        over = (
            cells.join(after, [*obj, "b"], "left")
            .groupBy(*obj)
            .agg(
                F.sum(
                    F.expr("c * (c - 1) div 2") + F.col("c") * F.coalesce(F.col("c_next"), F.lit(0))
                ).alias("candidate_pairs")
            )
            .filter(F.col("candidate_pairs") > int(cap))
        )
        listed = (
            rows.join(over, obj)
            .groupBy(*obj)
            .agg(
                F.count_distinct("platform", "actor_id").alias("accounts"),
                F.count(F.lit(1)).alias("actions"),
                F.first("candidate_pairs").alias("candidate_pairs"),
            )
            .collect()
        )
        viral = [
            {
                "kind": r["kind"],
                "object_id": r["object_id"],
                "accounts": int(r["accounts"]),
                "actions": int(r["actions"]),
                "candidate_pairs": int(r["candidate_pairs"]),
            }
            for r in sorted(
                listed, key=lambda r: (-r["candidate_pairs"], r["kind"], r["object_id"])
            )
        ]
        if viral:
            # The objects left out, from the driver (a few rows, broadcast), rather than
            # computing ``over`` a second time.
            left_out = rows.sparkSession.createDataFrame(
                [(v["kind"], v["object_id"]) for v in viral], "kind STRING, object_id STRING"
            )
            rows = rows.join(F.broadcast(left_out), obj, "left_anti")

    if layer.min_weight > 1:
        # Accounts on fewer distinct objects of a kind than min_weight share fewer with
        # anyone: leaving them out loses no edge (pair_keys' min_objects).
        enough = (
            rows.groupBy("kind", "platform", "actor_id")
            .agg(F.count_distinct("object_id").alias("m"))
            .filter(F.col("m") >= int(layer.min_weight))
            .select("kind", "platform", "actor_id")
        )
        rows = rows.join(enough, ["kind", "platform", "actor_id"], "left_semi")

    fields = ("t", "platform", "actor_id", "source_id")

    def side(suffix: str, shift: int) -> DataFrame:
        return rows.select(
            *obj,
            (F.col("b") - shift).alias("b"),
            *(F.col(f).alias(f"{f}{suffix}") for f in fields),
        )

    x = side("_x", 0)
    gap = F.col("t_y") - F.col("t_x")
    same = x.join(side("_y", 0), [*obj, "b"]).filter(
        _before("platform_x", "actor_id_x", "platform_y", "actor_id_y") & (F.abs(gap) <= window)
    )
    after_bucket = x.join(side("_y", 1), [*obj, "b"]).filter(
        ~(
            (F.col("platform_x") == F.col("platform_y"))
            & (F.col("actor_id_x") == F.col("actor_id_y"))
        )
        & (gap <= window)
    )
    raw = same.unionByName(after_bucket)
    first = _before("platform_x", "actor_id_x", "platform_y", "actor_id_y")
    pairs = raw.select(
        *obj,
        *(
            F.when(first, F.col(f"{f}_x")).otherwise(F.col(f"{f}_y")).alias(f"{f}_1")
            for f in fields
        ),
        *(
            F.when(first, F.col(f"{f}_y")).otherwise(F.col(f"{f}_x")).alias(f"{f}_2")
            for f in fields
        ),
    ).withColumnsRenamed({"actor_id_1": "account_1", "actor_id_2": "account_2"})
    # Edges and events are both read from the matched pairs: they are made once.
    pairs = pairs.persist(StorageLevel.MEMORY_AND_DISK)
    pair = ["kind", "platform_1", "account_1", "platform_2", "account_2"]
    edges = (
        pairs.groupBy(*pair)
        .agg(
            F.count_distinct("object_id").alias("weight"),
            F.count(F.lit(1)).alias("events"),
            F.count(F.when(F.col("t_1") < F.col("t_2"), 1)).alias("lead_1"),
            F.count(F.when(F.col("t_2") < F.col("t_1"), 1)).alias("lead_2"),
            F.percentile(F.abs(F.col("t_1") - F.col("t_2")), F.lit(0.5)).alias("median_us"),
            F.min(F.least("t_1", "t_2")).alias("first_t"),
            F.max(F.greatest("t_1", "t_2")).alias("last_t"),
        )
        .filter(F.col("weight") >= int(layer.min_weight))
    )
    events = pairs
    if layer.min_weight > 1:
        events = events.join(edges.select(*pair), pair, "left_semi")
    events = events.select(
        *pair,
        "object_id",
        "t_1",
        "t_2",
        F.col("source_id_1").alias("source_1"),
        F.col("source_id_2").alias("source_2"),
    )
    return edges, events, viral, pairs


def _units(value: Column) -> Column:
    """``value`` (a positive double) as DuckDB casts it to ``DECIMAL(38, 22)``, in units
    of 10^-22: ``value * 1e22`` rounded half away from zero, to an integer.

    Spark's own cast of a double to a decimal goes through its shortest decimal string,
    not its exact value, so the double is split into two exact integers first: the
    multiple of 2^53 and the rest."""
    from pyspark.sql import functions as F

    scaled = value * F.lit(10.0**_PLACES)
    high = F.floor(scaled / F.lit(2.0**53))
    low = scaled - high.cast("double") * F.lit(2.0**53)
    whole = F.floor(low)
    rounded = whole + F.when(low - whole.cast("double") >= 0.5, 1).otherwise(0)
    return high.cast("decimal(38,0)") * F.lit(2**53).cast("decimal(38,0)") + rounded.cast(
        "decimal(38,0)"
    )


def _expectations(
    acted: DataFrame, met: DataFrame, micros: int
) -> tuple[DataFrame, list[DataFrame]]:
    """The DuckDB engine's ``_EXPECTATIONS``, step by step: per pair its meetings ``w``
    and the terms of its expectation summed in units of 10^-22 (``straddling``, and
    ``shared``), with the frames it persisted (the caller unpersists them once the
    result is written).

    ``shared`` sums ``n_1 * n_2 * r`` over the strata in which both accounts acted and
    some pair met. Rather than joining each account's strata to every pair as rows
    (one row per pair and stratum, shuffled twice and summed once more), each account's
    strata cross as one array (with the stratum's rate ``r``) and the other account's as
    one map: a pair meets its two accounts in two joins, and the sum is taken in the
    row, term by term, each rounded as DuckDB rounds it."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    pair = ["platform_1", "account_1", "platform_2", "account_2"]
    # Distinct counts stay count_distinct: sizes of collect_set (one aggregation, but
    # on Spark's object aggregate, which sorts) cost more CPU here (BENCHMARKS.md).
    act = (
        acted.groupBy("platform", "actor_id", _div("t", micros).alias("s"))
        .agg(F.count_distinct("source_id").cast("double").alias("n"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    meetings = (
        met.groupBy(*pair, _div("least(t_1, t_2)", micros).alias("s"))
        .agg(
            F.least(F.count_distinct("source_1"), F.count_distinct("source_2")).alias("w"),
            F.bool_and(_div("t_1", micros) != _div("t_2", micros)).alias("straddles"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    strata = act.groupBy("s").agg(
        ((F.sum("n") * F.sum("n") - F.sum(F.col("n") * F.col("n"))) / 2).alias("possible")
    )
    # One row per stratum with a meeting: small, so broadcast to both joins.
    rate = F.broadcast(
        meetings.join(strata, "s")
        .groupBy("s")
        .agg((F.sum("w") / F.greatest(F.first("possible"), F.lit(1.0))).alias("r"))
    )
    pairs = (
        meetings.join(rate, "s")
        .groupBy(*pair)
        .agg(
            F.sum("w").alias("w"),
            F.sum(
                F.when(F.col("straddles"), _units(F.col("r") * F.col("w"))).otherwise(
                    F.lit(0).cast("decimal(38,0)")
                )
            ).alias("straddling"),
        )
    )
    rated = act.join(rate, "s")
    days_1 = rated.groupBy(
        F.col("platform").alias("platform_1"), F.col("actor_id").alias("account_1")
    ).agg(F.collect_list(F.struct("s", "n", "r")).alias("days_1"))
    days_2 = act.groupBy(
        F.col("platform").alias("platform_2"), F.col("actor_id").alias("account_2")
    ).agg(F.map_from_entries(F.collect_list(F.struct("s", "n"))).alias("days_2"))
    zero = F.lit(0).cast("decimal(38,0)")

    def term(total: Column, day: Column) -> Column:
        n_2 = F.try_element_at(F.col("days_2"), day["s"])
        return (
            total + F.when(n_2.isNull(), zero).otherwise(_units(day["n"] * n_2 * day["r"]))
        ).cast("decimal(38,0)")

    shared = F.when(F.col("days_1").isNull() | F.col("days_2").isNull(), zero).otherwise(
        F.aggregate("days_1", zero, term)
    )
    result = (
        pairs.join(days_1, ["platform_1", "account_1"], "left")
        .join(days_2, ["platform_2", "account_2"], "left")
        .select(*pair, "w", "straddling", shared.alias("shared"))
    )
    return result, [act, meetings]


# -- deriving the actions ----------------------------------------------------------------

#: The actions' columns as they cross: times as integer microseconds since the epoch.
ACTION_COLUMNS = (
    "actor_id STRING, platform STRING, kind STRING, object_id STRING, t BIGINT, source_id STRING"
)

#: The kinds whose derivation ends in a DISTINCT over the actions themselves.
_DISTINCT_KINDS = ("share_url", "share_domain")


def derive(table: str, rows: DataFrame) -> DataFrame:
    """The actions of ``rows`` (contract table ``table``, one of
    :data:`~concerted.engines.base.DERIVED_FROM`, its times as integer microseconds),
    laid out as :data:`ACTION_COLUMNS`: the same rows as :mod:`concerted.actions`
    derives on DuckDB.

    Reports and roles are projections, written here in PySpark. Posts need the normal
    forms of links, hashtags and texts (Unicode NFC, DuckDB's lower case, its regular
    expressions' character classes), which Spark's functions do not reproduce exactly, so each
    Arrow batch of posts runs :func:`concerted.actions.from_posts` itself on DuckDB, in
    the executors (``mapInArrow``); the derivation is row-local but for its one
    ``DISTINCT`` over link actions, which Spark then applies to those actions across
    partitions."""
    from pyspark.sql import functions as F

    if table == "reports":
        return rows.select(
            F.col("reporter_id").alias("actor_id"),
            "platform",
            F.lit("report").alias("kind"),
            F.col("target_id").alias("object_id"),
            F.col("ts").alias("t"),
            F.col("report_id").alias("source_id"),
        )
    if table == "roles":
        return rows.filter(F.col("since").isNotNull()).select(
            F.col("account_id").alias("actor_id"),
            "platform",
            F.lit("join").alias("kind"),
            F.col("venue_id").alias("object_id"),
            F.col("since").alias("t"),
            F.col("venue_id").alias("source_id"),
        )
    if table != "posts":
        raise ConfigError(f"actions are derived from {', '.join(DERIVED_FROM)}, not from {table!r}")
    fields = ("post_id", "account_id", "platform", "ts", "text", "repost_of", "reply_to")
    lists = ("urls", "hashtags", "image_hashes")
    # Arrow batches in and out (mapInArrow): no row crosses as a Python object.
    derived = rows.select(*fields, *lists).mapInArrow(_derive_posts, ACTION_COLUMNS)
    once = F.col("kind").isin(list(_DISTINCT_KINDS))
    return derived.filter(~once).unionByName(derived.filter(once).distinct())


def _derive_posts(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Run on an executor: the actions of each Arrow batch of posts (their times as
    integer microseconds), by DuckDB's own SQL (:func:`concerted.actions.from_posts`)."""
    import pyarrow as pa

    out = pa.schema(
        [
            pa.field(name, pa.int64() if name == "t" else pa.string())
            for name in ("actor_id", "platform", "kind", "object_id", "t", "source_id")
        ]
    )
    con = duckdb.connect(config={"threads": 1})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(SQL_MACROS)
        query = f"""SELECT actor_id, platform, kind, object_id, epoch_us(ts) AS t, source_id
                    FROM ({from_posts("_posts")})"""
        for batch in batches:
            if batch.num_rows == 0:
                continue
            con.register("_chunk", pa.Table.from_batches([batch]))
            con.execute(
                "CREATE OR REPLACE TEMP VIEW _posts AS "
                "SELECT * REPLACE (make_timestamptz(ts) AS ts) FROM _chunk"
            )
            yield from con.execute(query).fetch_arrow_table().cast(out).to_batches()
            con.unregister("_chunk")
    finally:
        con.close()
