"""Ingest: files in, contract rows and actions into the case store.

For each file, in one transaction:

1. hash the file; a file whose content was already ingested with the same options
   adds nothing (``status="already ingested"``);
2. the adapter's scan loads every record with its record number; the adapter maps the
   columns onto contract tables; :func:`concerted.schema.validate` types them;
3. records that cannot be read or typed either stop the ingest with a
   :class:`~concerted.errors.SchemaError` naming file, row and column
   (``on_error="raise"``, the default), or go to the ``quarantine`` table with the
   reason and are counted (``on_error="quarantine"``);
4. good rows are pseudonymised (when the case has a key), rows already in the case
   (same key) are counted as duplicates, not added twice, and the rest are stored;
5. the new rows' actions are derived (:mod:`concerted.actions`, through the engine:
   :mod:`concerted.engines`) and the source is recorded with its counts.

Nothing is dropped without being counted: ``rows_read`` = rows added + duplicates +
rows set aside, per table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from concerted import __version__, adapters, engines, paths
from concerted.adapters.base import Adapter, AdapterOptions, RawTable, Reject
from concerted.adapters.generic import stem
from concerted.adapters.scans import (
    CsvScan,
    StrayReturns,
    drop_scan,
    read_failure,
    scanned_columns,
)
from concerted.engines.base import Engine
from concerted.errors import ConfigError, SchemaError, StoreError
from concerted.privacy import JSON_TOKENS, Pseudonymiser
from concerted.schema import (
    CONTRACTS,
    IDENTIFIER_OBJECT_KINDS,
    INPUT_TABLES,
    JSON,
    TEXT,
    TEXT_LIST,
    Contract,
    Validated,
    quote_ident,
    sql_literal,
    validate,
)
from concerted.store import Store

__all__ = [
    "IngestOptions",
    "SourceReport",
    "expand_inputs",
    "ingest",
    "ingest_file",
    "is_case",
    "open_case",
]

log = logging.getLogger(__name__)

OnError = Literal["raise", "quarantine"]
Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """How to read the files of one ``concerted ingest`` call."""

    format: str
    adapter: AdapterOptions = field(default_factory=AdapterOptions)
    timezone: str | None = None
    on_error: OnError = "raise"

    def canonical(self) -> dict[str, object]:
        """The options that change what a file becomes (part of a source's identity)."""
        return {
            "format": self.format,
            "table": self.adapter.table,
            "mapping": dict(sorted(self.adapter.mapping.items())),
            "platform": self.adapter.platform,
            "delimiter": self.adapter.delimiter,
            "settings": dict(sorted(self.adapter.settings.items())),
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class SourceReport:
    """What one file added to the case."""

    path: str
    sha256: str
    status: Literal["ingested", "already ingested"]
    rows_read: int = 0
    rows_added: dict[str, int] = field(default_factory=dict)
    rows_duplicate: int = 0
    rows_set_aside: int = 0
    actions_added: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def ingest(
    store: Store,
    paths: Iterable[str | Path],
    options: IngestOptions,
    *,
    pseudonymiser: Pseudonymiser | None = None,
    progress: Progress | None = None,
    engine: str = engines.DEFAULT,
) -> list[SourceReport]:
    """Ingest each file; see the module's docstring. ``engine`` derives the actions."""
    engines.get(engine)  # an unknown engine fails before anything is written
    _check_key(store, pseudonymiser)
    _check_settings(options)
    return [
        ingest_file(
            store, Path(p), options, pseudonymiser=pseudonymiser, progress=progress, engine=engine
        )
        for p in paths
    ]


def _check_settings(options: IngestOptions) -> None:
    """``--set`` keys the format does not read are refused, naming those it does: a
    typo never leaves a default silently in place."""
    given = set(options.adapter.settings)
    if not given:
        return
    known = tuple(getattr(adapters.get(options.format), "settings", ()))
    unknown = sorted(given - set(known))
    if unknown:
        raise ConfigError(
            f"--set {', '.join(unknown)}: the {options.format} format has "
            + (f"these settings: {', '.join(known)}" if known else "no settings")
        )


def _check_key(store: Store, pseudonymiser: Pseudonymiser | None) -> None:
    recorded = store.meta("pseudonymisation_key")
    has_data = store.sql("SELECT count(*) FROM sources").fetchone() != (0,)
    if pseudonymiser is None:
        if recorded is not None:
            raise ConfigError(
                f"{store.path} pseudonymises identifiers: pass the case's key with "
                "--pseudonymise-key-file"
            )
        return
    if recorded is None and has_data:
        raise ConfigError(
            f"{store.path} already holds identifiers that are not pseudonymised; "
            "start a new case to pseudonymise"
        )
    if recorded is not None and recorded != pseudonymiser.fingerprint:
        raise ConfigError(f"this key is not the one {store.path} was pseudonymised with")


def ingest_file(
    store: Store,
    path: Path,
    options: IngestOptions,
    *,
    pseudonymiser: Pseudonymiser | None = None,
    progress: Progress | None = None,
    engine: str = engines.DEFAULT,
) -> SourceReport:
    """Ingest one file; see the module's docstring. ``engine`` derives the actions."""
    say = progress or (lambda _: None)
    deriving = engines.get(engine)(store.con)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    started = time.perf_counter()
    adapter = adapters.get(options.format)
    say(f"hashing {path.name}")
    sha = file_sha256(path)
    canonical = json.dumps(options.canonical(), sort_keys=True)
    fingerprint = hashlib.sha256(f"{sha}\n{canonical}".encode()).hexdigest()
    if store.sql("SELECT 1 FROM sources WHERE fingerprint = ?", [fingerprint]).fetchone():
        log.info("source already ingested: sha256=%s", sha[:12])
        return SourceReport(str(path), sha, "already ingested")
    given = (
        store,
        path,
        adapter,
        sha,
        fingerprint,
        canonical,
        options,
        pseudonymiser,
        say,
        started,
        deriving,
    )

    try:
        try:
            return _ingest_new(*given)
        except StrayReturns:
            # The read failed inside the file's transaction, rolled back now: the file
            # is read again with those returns marked, each record holding one set aside.
            return _ingest_new(*given, mark_returns=True)
    except duckdb.OutOfMemoryException as exc:
        raise StoreError(
            f"{path}: ran out of memory ({str(exc).splitlines()[0]}); raise --memory-limit "
            "(or $CONCERTED_MEMORY_LIMIT), or give DuckDB more room to spill with --temp-dir"
        ) from exc


def _ingest_new(
    store: Store,
    path: Path,
    adapter: Adapter,
    sha: str,
    fingerprint: str,
    canonical: str,
    options: IngestOptions,
    pseudonymiser: Pseudonymiser | None,
    say: Progress,
    started: float,
    engine: Engine,
    *,
    mark_returns: bool = False,
) -> SourceReport:
    con = store.con
    with store.transaction():
        say(f"reading {path.name}")
        scan = adapter.scan(path, options.adapter)
        if mark_returns and isinstance(scan, CsvScan):
            scan = dataclasses.replace(scan, mark_returns=True)
        scan.materialize(con, "scan")
        columns = scanned_columns(con, path)
        rejects = scan.rejects(con)
        # JSON records name their own fields: where none could be read (every line
        # broken, or no record at all), the file's fields are unknown and no column can
        # be missing. Its broken records are its errors, and there is nothing to type;
        # a file of no record at all still meets the adapter's checks (an API's answer
        # that holds no posts, say).
        unread = set(columns) <= {"_row"}
        if unread and not rejects:
            adapter.tables(columns, path, options.adapter)  # its refusals only
        raws = [] if unread else adapter.tables(columns, path, options.adapter)
        if len({r.table for r in raws}) != len(raws):
            raise StoreError(f"adapter {adapter.name} produced one table twice")
        borrowing = [raw for raw in raws if raw.platform_from is not None]
        known = con.execute("SELECT count(*) FROM accounts").fetchone() if borrowing else None
        for raw in borrowing:
            if not (known and known[0]):
                raise SchemaError(
                    path,
                    f"missing column 'platform', required for {raw.table} (or pass "
                    f"--platform); the case holds no accounts whose platform each "
                    f"{raw.platform_from} could take",
                    column="platform",
                )
        scan.release(con)
        scanned = con.sql("SELECT count(*) FROM scan").fetchone()
        rows_read = (int(scanned[0]) if scanned else 0) + len(rejects)

        say(f"checking {path.name}")
        try:
            checked = [_validate(store, raw, path, options) for raw in raws]
        except duckdb.Error as exc:
            if not getattr(scan, "lazy", False):
                raise
            # The scan is a view: the file is read here, and a broken page fails here.
            raise read_failure(path, exc) from exc
        if options.on_error == "raise":
            _raise_first(path, rejects, checked, store)

        drop_scan(con, "scan")  # typed copies hold all that is needed now
        source_id = _next_source_id(store)
        set_aside = _quarantine(store, source_id, rejects, checked, pseudonymiser)
        say(f"storing {path.name}")
        added: dict[str, int] = {}
        duplicates = 0
        actions = 0
        notes = [note for raw in raws for note in raw.notes]
        if unread and not rejects:
            notes.append("the file holds no record")
        for v in checked:
            n_added, n_dup = _store_rows(store, v, pseudonymiser, own=v is checked[0])
            added[v.contract.name] = n_added
            if v is checked[0]:
                # The file's rows are its own table's; the others it makes (an account
                # per post) are not rows read.
                duplicates = n_dup
            if v.contract.name in engines.DERIVED_FROM:
                name = v.contract.name
                actions += engine.derive_actions(name, f"accepted_{name}", "actions")
                if name == "posts":
                    silent = _posts_without_actions(store, f"accepted_{name}")
                    if silent:
                        notes.append(
                            f"{silent:,} posts carry no link, hashtag, repost, reply, text or "
                            "image, so they make no action and take part in no co-action"
                        )
            elif v.contract.name == "actions":
                actions += n_added
            con.execute(f"DROP TABLE IF EXISTS accepted_{v.contract.name}")
        con.execute(f"DROP TABLE IF EXISTS {_SET_ASIDE}")
        seconds = time.perf_counter() - started
        con.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
            [
                source_id,
                str(path),
                sha,
                options.format,
                canonical,
                fingerprint,
                rows_read,
                set_aside,
                duplicates,
                json.dumps(added),
                actions,
                seconds,
                __version__,
            ],
        )
        if pseudonymiser is not None:
            store.set_meta("pseudonymisation_key", pseudonymiser.fingerprint)
    log.info("ingested source %d: %d rows read, %d set aside", source_id, rows_read, set_aside)
    return SourceReport(
        str(path),
        sha,
        "ingested",
        rows_read,
        added,
        duplicates,
        set_aside,
        actions,
        seconds,
        tuple(notes),
    )


def _validate(store: Store, raw: RawTable, path: Path, options: IngestOptions) -> Validated:
    if raw.table not in CONTRACTS:
        raise StoreError(f"adapter produced rows for unknown table {raw.table!r}")
    view = f"raw_{raw.table}"
    store.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {raw.sql}")
    try:
        return validate(
            store.con,
            view,
            CONTRACTS[raw.table],
            file=path,
            mapping=raw.mapping,
            timezone=options.timezone or raw.timezone,
            into=f"typed_{raw.table}",
        )
    finally:
        # After a failure inside the transaction (out of memory, say) the drop fails
        # too; the transaction's rollback drops the view, and the first error is the one
        # to report.
        with contextlib.suppress(duckdb.TransactionException):
            store.con.execute(f"DROP VIEW IF EXISTS {view}")


def _raise_first(path: Path, rejects: list[Reject], checked: list[Validated], store: Store) -> None:
    candidates: list[SchemaError] = [
        SchemaError(path, r.reason, row=r.row, column=r.column, line=r.line) for r in rejects
    ]
    for v in checked:
        if v.bad_rows:
            found = store.sql(
                f"SELECT _row, _error_column, _error FROM {v.relation} "
                "WHERE _error IS NOT NULL ORDER BY _row LIMIT 1"
            ).fetchone()
            if found:
                row, column, reason = found
                candidates.append(SchemaError(path, str(reason), row=int(row), column=column))
    if candidates:
        first = min(candidates, key=lambda e: e.row if e.row is not None else 0)
        # The file's rows, not the tables': a row may make several bad actions (the
        # wide CooRTweet form) or a bad post and a bad account. A broken line never
        # reaches a table, so the readers' rejects are rows of their own.
        bad = [
            f"SELECT _row FROM {v.relation} WHERE _error IS NOT NULL" for v in checked if v.bad_rows
        ]
        total = len(rejects)
        if bad:
            union = " UNION ALL ".join(bad)
            counted = store.sql(f"SELECT count(DISTINCT _row) FROM ({union})").fetchone()
            total += int(counted[0]) if counted else 0
        if total > 1:
            first.add_note(
                f"{total} rows in {path} have errors; --on-error quarantine sets them aside "
                "and ingests the rest"
            )
        raise first


def _next_source_id(store: Store) -> int:
    row = store.sql("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchone()
    return int(row[0]) if row else 1


def _quarantine(
    store: Store,
    source_id: int,
    rejects: list[Reject],
    checked: list[Validated],
    pseudonymiser: Pseudonymiser | None,
) -> int:
    """Set aside unreadable and untypable rows; the raw row is kept unless the case is
    pseudonymised (raw rows would carry the identifiers the key hides)."""
    keep_raw = pseudonymiser is None
    for r in rejects:
        store.con.execute(
            "INSERT INTO quarantine VALUES (?, NULL, ?, ?, ?, ?, ?)",
            [source_id, r.row, r.line, r.column, r.reason, r.raw if keep_raw else None],
        )
    bad: list[str] = []
    for v in checked:
        if not v.bad_rows:
            continue
        raw = "CAST(r._raw AS VARCHAR)" if keep_raw else "NULL"
        # One quarantine row per file row and table, however many rows of the table
        # the file row made (a wide row of several objects makes one each).
        store.con.execute(
            f"""INSERT INTO quarantine
                WITH t AS (SELECT _row, _error_column, _error FROM {v.relation}
                           WHERE _error IS NOT NULL
                           QUALIFY row_number() OVER (PARTITION BY _row ORDER BY _error) = 1),
                     r AS (SELECT _row, any_value(_raw) AS _raw FROM {v.relation}_raw
                           GROUP BY _row)
                SELECT ?, ?, t._row, NULL, t._error_column, t._error, {raw}
                FROM t LEFT JOIN r USING (_row) ORDER BY t._row""",
            [source_id, v.contract.name],
        )
        store.con.execute(f"DROP TABLE {v.relation}_raw")
        bad.append(f"SELECT _row FROM {v.relation} WHERE _error IS NOT NULL")
    # A file row is set aside whole, and once, whichever of its tables it broke: the
    # account a bad post would have made is not stored either (_store_rows skips them).
    found = " UNION ".join(bad) if bad else "SELECT CAST(NULL AS BIGINT) AS _row WHERE false"
    store.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SET_ASIDE} AS SELECT DISTINCT _row FROM ({found})"
    )
    rows = store.sql(f"SELECT count(*) FROM {_SET_ASIDE}").fetchone()
    return len(rejects) + (int(rows[0]) if rows else 0)


# The file rows set aside by _quarantine, while a file is stored.
_SET_ASIDE = "_set_aside_rows"


def _kept(table: str, own: bool) -> str:
    """SQL: which good rows of ``table`` a file stores: none of a file row set aside,
    but an account such a row names, of a table other than the file's own, waits for
    :func:`_unvouched` (another row may need it)."""
    if own or table != "accounts":
        return f"_row NOT IN (SELECT _row FROM {_SET_ASIDE})"
    return "true"


def _unvouched(accepted: str) -> str:
    """SQL: delete the accounts only file rows set aside named, where the case does not
    hold the account acting (its post, action or report, from another row of the file,
    stored first, or from another file)."""
    return f"""DELETE FROM {accepted} AS n
        WHERE n._row IN (SELECT _row FROM {_SET_ASIDE})
          AND NOT EXISTS (SELECT 1 FROM posts p
                          WHERE p.platform = n.platform AND p.account_id = n.account_id)
          AND NOT EXISTS (SELECT 1 FROM actions a
                          WHERE a.platform = n.platform AND a.actor_id = n.account_id)
          AND NOT EXISTS (SELECT 1 FROM reports r
                          WHERE r.platform = n.platform AND r.reporter_id = n.account_id)"""


def _pseudonymised(contract: Contract, pseudonymiser: Pseudonymiser | None) -> str:
    selects = []
    for c in contract.columns:
        name = quote_ident(c.name)
        if pseudonymiser is not None and contract.name == "actions" and c.name == "object_id":
            kinds = ", ".join(sql_literal(k) for k in IDENTIFIER_OBJECT_KINDS)
            selects.append(
                f"CASE WHEN kind IN ({kinds}) THEN {pseudonymiser.sql(name)} ELSE {name} END "
                f"AS {name}"
            )
        elif pseudonymiser is not None and c.identifier and c.type == TEXT:
            selects.append(f"{pseudonymiser.sql(name)} AS {name}")
        elif pseudonymiser is not None and c.identifier and c.type == TEXT_LIST:
            selects.append(f"list_transform({name}, e -> {pseudonymiser.sql('e')}) AS {name}")
        elif pseudonymiser is not None and c.type == JSON:
            # Columns beyond the contract may hold identifiers: every string is tokenised.
            selects.append(f"{JSON_TOKENS}(CAST({name} AS VARCHAR))::JSON AS {name}")
        else:
            selects.append(name)
    return ", ".join(selects)


def _posts_without_actions(store: Store, posts: str) -> int:
    """How many of the new posts in ``posts`` made no action."""
    row = store.sql(
        f"""SELECT count(*) FROM {posts} p ANTI JOIN actions a
            ON a.platform = p.platform AND a.source_id = p.post_id"""
    ).fetchone()
    return int(row[0]) if row else 0


def _store_rows(
    store: Store, v: Validated, pseudonymiser: Pseudonymiser | None, *, own: bool = True
) -> tuple[int, int]:
    """Insert the good rows not yet in the case; return the rows added, and the file's
    rows (not set aside) of which the case already held every row they make.

    The rows to store are left in ``accepted_{table}`` (with ``_row`` dropped), where
    the actions are derived from. The typed table ``v.relation`` is consumed: it
    becomes that table where it holds nothing else (every row good, none set aside,
    no key repeated, no identifier to pseudonymise), and is copied from otherwise.
    """
    contract = v.contract
    table = quote_ident(contract.name)
    key = ", ".join(quote_ident(k) for k in contract.key)
    on_key = " AND ".join(f"t.{quote_ident(k)} = n.{quote_ident(k)}" for k in contract.key)
    accepted = f"accepted_{contract.name}"
    # Rows of a keyed table appear once (the first kept). Most files repeat no key: then
    # the costly window is skipped.
    first = ""
    if key:
        repeated = store.sql(
            f"SELECT count(*) FROM (SELECT {key} FROM {v.relation} WHERE _error IS NULL "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
        if repeated and repeated[0]:
            first = f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _row) = 1"
    aside = store.sql(f"SELECT count(*) FROM {_SET_ASIDE}").fetchone()
    whole = not v.bad_rows and not first and pseudonymiser is None and aside == (0,)
    store.con.execute(f"DROP TABLE IF EXISTS {accepted}")
    if whole:
        # Every typed row is kept as it is: the typed table becomes the accepted one,
        # with no copy of the file's rows.
        store.con.execute(f"ALTER TABLE {v.relation} RENAME TO {accepted}")
        store.con.execute(f"ALTER TABLE {accepted} DROP COLUMN _error_column")
        store.con.execute(f"ALTER TABLE {accepted} DROP COLUMN _error")
        row = store.sql(f"SELECT count(*), count(DISTINCT _row) FROM {accepted}").fetchone()
        rows, good = (int(row[0]), int(row[1])) if row else (0, 0)
    else:
        if pseudonymiser is not None:
            pseudonymiser.register(store.con)
        store.con.execute(
            f"""
            CREATE TEMP TABLE {accepted} AS
            SELECT _row, {_pseudonymised(contract, pseudonymiser)} FROM {v.relation}
            WHERE _error IS NULL AND {_kept(contract.name, own)} {first}
            """
        )
        found = store.sql(
            f"SELECT count(DISTINCT _row) FROM {v.relation} "
            f"WHERE _row NOT IN (SELECT _row FROM {_SET_ASIDE})"
        ).fetchone()
        good = int(found[0]) if found else 0
        rows = -1
        store.con.execute(f"DROP TABLE {v.relation}")
    if contract.name == "accounts" and not own:
        store.con.execute(_unvouched(accepted))
    if contract.name == "accounts":
        # Accounts seen again fill in what was missing (a users file after a tweets file).
        filled = [c.name for c in contract.columns if c.name not in contract.key]
        sets = ", ".join(
            f"{quote_ident(c)} = coalesce(t.{quote_ident(c)}, n.{quote_ident(c)})" for c in filled
        )
        store.con.execute(f"UPDATE {table} AS t SET {sets} FROM {accepted} AS n WHERE {on_key}")
    if key:
        store.con.execute(
            f"DELETE FROM {accepted} AS n WHERE EXISTS (SELECT 1 FROM {table} AS t WHERE {on_key})"
        )
    else:
        # Actions a format gives are events with no key, kept as the file gives them
        # (a row given twice is two shares, as CooRTweet counts them). A row the case
        # already holds came from an earlier file, or from this one read with other
        # options: it is not added again.
        columns = [quote_ident(c.name) for c in contract.columns]
        same = " AND ".join(f"t.{c} IS NOT DISTINCT FROM n.{c}" for c in columns)
        store.con.execute(
            f"DELETE FROM {accepted} AS n WHERE EXISTS (SELECT 1 FROM {table} AS t WHERE {same})"
        )
    kept = store.sql(f"SELECT count(*) FROM {accepted}").fetchone()
    added = int(kept[0]) if kept else 0
    if rows == good and added == rows:
        # One row per file row, and none deleted: each is a new file row.
        new_rows = added
    else:
        row = store.sql(f"SELECT count(DISTINCT _row) FROM {accepted}").fetchone()
        new_rows = int(row[0]) if row else 0
    store.con.execute(f"ALTER TABLE {accepted} DROP COLUMN _row")
    store.con.execute(f"INSERT INTO {table} SELECT * FROM {accepted}")
    return added, good - new_rows


_CASE_SUFFIXES = (".duckdb", ".db")


def is_case(path: Path) -> bool:
    """Whether ``path`` is a case file (by its name: ``*.duckdb`` or ``*.db``)."""
    return path.is_file() and path.suffix in _CASE_SUFFIXES


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest: files as given; for a directory, its files named after an input
    table (``accounts.parquet``, ``posts.csv``, ...), in table order.

    A directory with no such file is an error, not an empty case.
    """
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            (p for p in path.iterdir() if p.is_file() and stem(p) in INPUT_TABLES),
            key=lambda p: (INPUT_TABLES.index(stem(p)), p.name),
        )
        if not found:
            raise ConfigError(
                f"{path}: no file named after an input table "
                f"({', '.join(INPUT_TABLES)}) in this directory"
            )
        files.extend(found)
    return files


def open_case(
    inputs: Iterable[Path],
    case: Path | None,
    options: IngestOptions,
    *,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    progress: Progress | None = None,
) -> tuple[Store, list[SourceReport]]:
    """The case to analyse: ``inputs`` itself when it is one case file (opened read-only,
    so an analysis never changes it), else a case at ``case`` holding the input files
    (ingested; a file already there adds nothing), or in memory when ``case`` is
    ``None`` (spilling to ``temp_directory`` beyond the memory limit)."""
    given = list(inputs)
    if len(given) == 1 and is_case(given[0]):
        store = Store(
            given[0], read_only=True, memory_limit=memory_limit, temp_directory=temp_directory
        )
        return store, []
    if any(is_case(p) for p in given):
        raise ConfigError("give either one case file or data files, not both")
    files = expand_inputs(given)
    adapters.get(options.format)  # an unknown format fails before anything is written
    new = case is not None and not case.exists()
    if case is not None:
        paths.directory(case.parent)
    store = Store(
        case if case is not None else ":memory:",
        memory_limit=memory_limit,
        temp_directory=temp_directory,
    )
    try:
        reports = ingest(store, files, options, progress=progress)
    except BaseException:
        store.close()
        if new and case is not None:
            # A case made for this run and left empty by its failure is not kept.
            for leftover in (case, case.with_name(case.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    return store, reports
