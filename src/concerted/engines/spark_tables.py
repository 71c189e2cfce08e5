"""Contract tables as Parquet datasets, read by Spark: a case from a data lake.

A **dataset** is a directory, local or at any URI Spark reads (``s3a://``, ``hdfs://``,
``abfss://``, ...), holding one directory of Parquet files per input table, named as
the contracts name them (``accounts/``, ``posts/``, ``reports/``, ``roles/``; a table
left out is empty), as ``concerted simulate --format parquet-dataset`` writes one.

:func:`open_dataset` checks every file of every table once, as it enters, against the
table's contract (:data:`concerted.schema.CONTRACTS`): each required column present and
every contract column a file has of the contract's type (``VARCHAR`` a string,
``TIMESTAMPTZ`` a timestamp with a time zone, ``BIGINT`` a 64-bit integer, ``DOUBLE`` a
double, ``VARCHAR[]`` a list of strings, ``JSON`` a string); a mismatch is a
:class:`~concerted.errors.ConfigError` naming the file, the column and both types.
Columns outside the contract are ignored (and named in the notes); an optional column
a file lacks is NULL there. Rows with NULL in a required column are set aside and
counted per column (the notes name the first file holding one); two rows with one key
are an error naming the key, as a case keeps one row per key.

Spark then derives the actions straight from the dataset
(:func:`concerted.engines.spark.derive`), and the validated tables and their actions
come into the case through the engine's working directory (Parquet, written by Spark,
read by DuckDB), with one ``sources`` row per table (format ``parquet-dataset``; a
table whose files are already in the case adds nothing). The actions' Parquet is
handed over to the next Spark engine on the case (:meth:`SparkEngine.close
<concerted.engines.spark.SparkEngine.close>`), so an analysis that pairs the case's
``actions`` reads Spark's files rather than a copy written out of the case.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from concerted import __version__, paths
from concerted.engines.base import DERIVED_FROM
from concerted.engines.spark import SparkEngine, derive
from concerted.errors import ConfigError
from concerted.schema import (
    BOOLEAN,
    CONTRACTS,
    INPUT_TABLES,
    INTEGER,
    JSON,
    NUMBER,
    TEXT,
    TEXT_LIST,
    TIMESTAMP,
    Contract,
    quote_ident,
    sql_literal,
)
from concerted.store import Store

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType

__all__ = ["FORMAT", "Loaded", "is_dataset", "open_dataset", "read_tables", "spark_type"]

#: The ``format`` of a dataset's rows in the case's ``sources``.
FORMAT = "parquet-dataset"

_SPARK_TYPES = {
    TEXT: "string",
    JSON: "string",
    TIMESTAMP: "timestamp",
    INTEGER: "bigint",
    NUMBER: "double",
    BOOLEAN: "boolean",
    TEXT_LIST: "array<string>",
}


def spark_type(contract_type: str) -> str:
    """The Spark SQL type a Parquet column must read as to hold ``contract_type``.

    >>> spark_type("TIMESTAMPTZ"), spark_type("VARCHAR[]")
    ('timestamp', 'array<string>')
    """
    return _SPARK_TYPES[contract_type]


def is_dataset(location: str | Path) -> bool:
    """Whether ``location`` is to be read as a dataset: a URI with a scheme other than
    ``file`` (Spark decides what it can read), or a local directory holding a directory
    named after an input table.

    >>> is_dataset("s3a://lake/platform"), is_dataset("posts.csv")
    (True, False)
    """
    text = str(location)
    scheme, sep, _ = text.partition("://")
    if sep and scheme.isidentifier() and scheme != "file":
        return True
    path = Path(text.removeprefix("file://"))
    return path.is_dir() and any((path / table).is_dir() for table in INPUT_TABLES)


@dataclass
class Table:
    """One input table of a dataset, checked: its rows (the contract's columns, times
    as integer microseconds), its files with their sizes, and what was set aside."""

    name: str
    location: str
    files: tuple[tuple[str, int], ...]
    rows: DataFrame
    set_aside: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """The files and their sizes, hashed: the same files add nothing twice."""
        listing = json.dumps([self.location, sorted(self.files)])
        return hashlib.sha256(listing.encode()).hexdigest()


def _files(spark: SparkSession, location: str) -> tuple[tuple[str, int], ...] | None:
    """The Parquet files directly in ``location`` and their sizes (Hadoop's file
    system, so any URI Spark reads), or None where there is no such directory."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(location)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return None
    if not fs.getFileStatus(path).isDirectory():
        raise ConfigError(f"{location} is a file; a dataset holds a directory per table")
    found = []
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        if status.isFile() and name.endswith(".parquet") and not name.startswith(("_", ".")):
            found.append((status.getPath().toString(), int(status.getLen())))
    return tuple(sorted(found))


def _check_file(spark: SparkSession, contract: Contract, file: str) -> list[str]:
    """Check one file's columns against ``contract``; the columns it has outside it."""
    try:
        schema = spark.read.parquet(file).schema
    except Exception as exc:  # Spark's errors name the file and what is wrong with it
        raise ConfigError(f"{file}: not a readable Parquet file ({exc})") from None
    have = {f.name: f.dataType for f in schema.fields}
    for column in contract.columns:
        found: DataType | None = have.get(column.name)
        if found is None:
            if column.required:
                raise ConfigError(
                    f"{file}: the required column {column.name!r} of {contract.name} is missing"
                )
            continue
        want = spark_type(column.type)
        if found.simpleString() != want:
            raise ConfigError(
                f"{file}: column {column.name!r} of {contract.name} is {found.simpleString()}, "
                f"not {want} ({column.type})"
            )
    return sorted(set(have) - set(contract.names))


def read_tables(spark: SparkSession, location: str) -> dict[str, Table]:
    """Every input table of the dataset at ``location``, each file checked (see the
    module's notes); a dataset with none of them is an error."""
    from pyspark.sql import functions as F

    root = location.rstrip("/")
    tables: dict[str, Table] = {}
    for name in INPUT_TABLES:
        contract = CONTRACTS[name]
        where = f"{root}/{name}"
        files = _files(spark, where)
        if files is None:
            continue
        if not files:
            raise ConfigError(f"{where} holds no Parquet files")
        ignored: set[str] = set()
        for file, _ in files:
            ignored.update(_check_file(spark, contract, file))
        schema = ", ".join(
            f"{quote_ident(c.name)} {spark_type(c.type)}" for c in contract.columns
        ).replace('"', "`")
        raw = spark.read.schema(schema).parquet(*(f for f, _ in files))
        table = Table(name, where, files, raw)
        if ignored:
            table.notes.append(f"{name}: columns outside the contract ignored: {sorted(ignored)}")
        table.rows = _set_aside(table, raw, contract)
        table.rows = table.rows.select(
            *(
                F.unix_micros(c.name).alias(c.name) if c.type == TIMESTAMP else F.col(c.name)
                for c in contract.columns
            )
        )
        tables[name] = table
    if not tables:
        raise ConfigError(
            f"{location} holds none of the tables {', '.join(INPUT_TABLES)} "
            "(a dataset is a directory of Parquet files per table)"
        )
    return tables


def _set_aside(table: Table, raw: DataFrame, contract: Contract) -> DataFrame:
    """Count the rows with NULL in a required column (and the first file of each) and
    leave them out; refuse two rows with one key."""
    from pyspark.sql import functions as F

    required = contract.required
    found = (
        raw.select(*required, F.input_file_name().alias("_file"))
        .select(
            *(F.count(F.when(F.col(c).isNull(), 1)).alias(f"n_{c}") for c in required),
            *(F.min(F.when(F.col(c).isNull(), F.col("_file"))).alias(f"f_{c}") for c in required),
        )
        .first()
    )
    assert found is not None
    bad = F.lit(False)
    for c in required:
        n = int(found[f"n_{c}"])
        if n:
            table.set_aside[c] = n
            table.notes.append(
                f"{table.name}: {n:,} rows without {c} set aside (the first in {found[f'f_{c}']})"
            )
        bad = bad | F.col(c).isNull()
    rows = raw.filter(~bad) if table.set_aside else raw
    if contract.key:
        twice = (
            rows.groupBy(*contract.key)
            .agg(F.count(F.lit(1)).alias("n"))
            .filter(F.col("n") > 1)
            .agg(F.sum(F.col("n") - 1).alias("extra"), F.first(F.struct(*contract.key)).alias("k"))
            .first()
        )
        if twice is not None and twice["extra"]:
            key = dict(zip(contract.key, twice["k"], strict=True))
            raise ConfigError(
                f"{table.location}: {int(twice['extra']):,} rows repeat a key "
                f"({', '.join(contract.key)}) of another, e.g. {key}; a case keeps one row "
                "per key"
            )
    return rows


@dataclass(frozen=True)
class Loaded:
    """What :func:`open_dataset` brought into the case, per table."""

    rows: dict[str, int]
    set_aside: dict[str, int]
    actions: int
    skipped: tuple[str, ...]
    notes: tuple[str, ...]


def load(
    engine: SparkEngine,
    store: Store,
    location: str,
    progress: Callable[[str], None] | None = None,
) -> Loaded:
    """Check the dataset at ``location``, derive its actions on Spark and bring both
    into ``store`` (see the module's notes)."""
    say = progress or (lambda _: None)
    con = store.con
    say(f"reading {location}")
    tables = read_tables(engine.spark, location)
    known = {r[0] for r in con.execute("SELECT fingerprint FROM sources").fetchall()}
    rows: dict[str, int] = {}
    set_aside: dict[str, int] = {}
    skipped: list[str] = []
    notes: list[str] = []
    actions = 0
    for name, table in tables.items():
        if table.fingerprint in known:
            skipped.append(name)
            continue
        began = time.perf_counter()
        say(f"{name}: into the case")
        notes.extend(table.notes)
        contract = CONTRACTS[name]
        columns = ", ".join(
            f"make_timestamptz({quote_ident(c.name)}) AS {quote_ident(c.name)}"
            if c.type == TIMESTAMP
            else quote_ident(c.name)
            for c in contract.columns
        )
        with store.transaction():
            added = _insert(engine, table.rows, name, f"SELECT {columns} FROM {{src}}")
            derived = 0
            if name in DERIVED_FROM:
                say(f"{name}: deriving actions")
                derived = engine.insert_actions(derive(name, table.rows), "actions")
            (source_id,) = con.execute(
                "SELECT coalesce(max(source_id), 0) + 1 FROM sources"
            ).fetchone() or (1,)
            dropped = sum(table.set_aside.values())
            con.execute(
                "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
                [
                    source_id,
                    table.location,
                    table.fingerprint,
                    FORMAT,
                    json.dumps({"files": len(table.files), "set_aside": table.set_aside}),
                    table.fingerprint,
                    added + dropped,
                    dropped,
                    0,
                    json.dumps({name: added}),
                    derived,
                    time.perf_counter() - began,
                    __version__,
                ],
            )
        rows[name] = added
        set_aside[name] = dropped
        actions += derived
    return Loaded(rows, set_aside, actions, tuple(skipped), tuple(notes))


def _insert(engine: SparkEngine, frame: DataFrame, into: str, select: str) -> int:
    """Write ``frame`` to the engine's working directory and append it to ``into`` on
    the case's connection through ``select`` (over ``{src}``); how many rows."""
    import shutil

    path = engine._write(frame, into)
    try:
        src = f"read_parquet({sql_literal(str(path / '*.parquet'))})"
        done = engine.con.execute(
            f"INSERT INTO {quote_ident(into)} BY NAME {select.format(src=src)}"
        ).fetchone()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return int(done[0]) if done else 0


def open_dataset(
    location: str,
    case: str | Path,
    *,
    master: str | None = None,
    spark: SparkSession | None = None,
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Store, Loaded]:
    """The case at ``case`` (made where new) holding the dataset at ``location``, read
    and derived on Spark (``spark``, else the active session, else one started on
    ``master``); the store and what was loaded."""
    SparkEngine.require()
    if str(case) != ":memory:":
        paths.directory(Path(case).parent)
    store = Store(case, memory_limit=memory_limit, temp_directory=temp_directory)
    try:
        engine = SparkEngine(store.con, spark, master=master)
        try:
            loaded = load(engine, store, location, progress)
        except BaseException:
            engine.close()
            raise
        # The derived actions' Parquet stays for the analysis's engine on this case.
        engine.close(hand_over=True)
    except BaseException:
        store.close()
        raise
    return store, loaded


def describe(loaded: Loaded) -> Sequence[str]:
    """Lines that say what a load added, for a command's output.

    >>> describe(Loaded({"posts": 3}, {"posts": 1}, 5, ("roles",), ()))
    ['posts: 3 rows (1 set aside)', '5 actions derived on Spark', 'roles: already in the case']
    """
    lines = [
        f"{t}: {n:,} rows"
        + (f" ({loaded.set_aside[t]:,} set aside)" if loaded.set_aside.get(t) else "")
        for t, n in loaded.rows.items()
    ]
    lines.append(f"{loaded.actions:,} actions derived on Spark")
    lines.extend(f"{t}: already in the case" for t in loaded.skipped)
    return [*lines, *loaded.notes]
