"""Score an analysis result against the ground truth of a simulation.

A *result directory* holds the Parquet files of :data:`~concerted.schema.RESULT_FILES`
in the :data:`~concerted.schema.RESULT_CONTRACTS` layouts; a *truth directory* holds
what ``concerted simulate`` wrote: ``truth.parquet`` (``operation_id``, ``entity``,
``id``, ``platform``, ``role``, ``detail``) and ``truth.json`` (``scenario``, ``seed``
and the list of ``operations``). These rules define every figure :func:`evaluate`
reports:

- Only campaigns with ``flagged = true`` are findings. Members and targets of
  unflagged campaigns are ignored; a report counts when its ``report_scores`` row is
  flagged.
- ``campaigns.parquet`` is required. The other files are optional: a missing one
  means no rows of that kind, and is listed under ``missing``.
- Nothing is dropped silently: a row that does not meet its contract, a
  ``campaign_id`` that two campaigns share, or a member or target whose
  ``campaign_id`` is not in ``campaigns.parquet`` raises
  :class:`~concerted.errors.SchemaError` naming file, row and column. So do truth rows
  with an unknown ``entity`` or an ``operation_id`` that ``truth.json`` does not list.
- Things are compared by ``(platform, id)``, platform in lower case and ids trimmed,
  as :func:`~concerted.schema.validate` types them.
- ``accounts``: the distinct members of flagged campaigns against the truth's
  ``account`` rows. ``targets``: the distinct targets of flagged campaigns against
  its ``target`` rows. ``reports``: the flagged reports against its ``report`` rows.
  Each gives ``precision``, ``recall``, ``f1``, ``tp``, ``fp`` and ``fn``.
- ``automated_reporters``: the same for members whose role is
  ``automated_reporter`` against truth accounts with that role: whether
  extension-driven reporters are told apart from human ones.
- ``brigade_reporters``: the distinct members of flagged ``brigade`` campaigns whose
  role is ``reporter`` or ``automated_reporter``, against the truth's accounts with
  role ``reporter``, ``fake_reporter`` or ``automated_reporter`` in operations of kind
  ``brigade``, less those that are also that operation's organisers (a result gives
  an account one role, and ``organiser`` says most); scored as ``accounts`` is.
- ``brigade_organisers``: the distinct members of flagged ``brigade`` campaigns whose
  role is ``organiser``, against the truth's organisers of operations of kind
  ``brigade`` (the admins who called the waves); scored as ``accounts`` is.
- ``recommendations``: how many ``report_scores`` rows carry each recommendation
  (``count``, ``review``, ``discount``, or ``none`` when empty), apart for the
  truth's reports (``coordinated``) and all others (``other``).
- ``campaigns``: each flagged campaign's member set is compared with each
  operation's account set by Jaccard index. A campaign matches its best operation
  when that index is at least 0.5 (ties go to the operation id first in sort order).
  ``precision`` is matched campaigns over flagged campaigns, ``recall`` is operations
  matched by at least one campaign over the operations ``truth.json`` lists (one
  without account rows cannot be matched), ``false_campaigns`` is flagged minus
  matched, and ``matches`` lists each matched campaign, by ``campaign_id``.
- ``campaigns_flagged_on_organic``: on a truth with no operations, the number of
  flagged campaigns (each a false positive); otherwise ``null``.
- ``roles``: for each account role in the truth, how many accounts hold it, how many
  of those were flagged (among the members of flagged campaigns), and the recall.
- Where there is neither a prediction nor a truth, precision, recall and F1 are
  undefined (``null``); otherwise a zero denominator gives 0.0, so an empty result
  scores 0 against a non-empty truth. Ratios are rounded to 4 decimals.

:func:`result_from_truth` writes the perfect result for a truth, the ceiling that
every figure reaches.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from concerted import paths
from concerted.errors import ConfigError, SchemaError
from concerted.schema import (
    RESULT_CONTRACTS,
    RESULT_FILES,
    TRUTH_CONTRACT,
    arrow_schema,
    quote_ident,
    sql_literal,
    validate,
)

__all__ = [
    "MATCH_THRESHOLD",
    "TRUTH_FILES",
    "Score",
    "evaluate",
    "result_from_truth",
]

#: The files of a truth directory, as ``concerted simulate`` writes them.
TRUTH_FILES: tuple[str, str] = ("truth.parquet", "truth.json")
#: The Jaccard index at which a campaign matches an operation.
MATCH_THRESHOLD = Fraction(1, 2)

_KINDS = ("network", "brigade")
_DIGITS = 4


def _ratio(num: int | Fraction, den: int | Fraction, *, defined: bool) -> float | None:
    if not defined:
        return None
    return round(float(Fraction(num) / den), _DIGITS) if den else 0.0


@dataclass(frozen=True)
class Score:
    """Counts of a predicted set against a true set, and the ratios they give.

    The ratios derive from the counts, so the two can never disagree.

    >>> Score(tp=3, fp=1, fn=3).as_dict()
    {'precision': 0.75, 'recall': 0.5, 'f1': 0.6, 'tp': 3, 'fp': 1, 'fn': 3}
    >>> Score(tp=0, fp=0, fn=0).precision is None
    True
    >>> Score(tp=0, fp=0, fn=2).precision
    0.0
    """

    tp: int
    fp: int
    fn: int

    @property
    def _defined(self) -> bool:
        # Nothing predicted and nothing to find: no figure means anything.
        return bool(self.tp or self.fp or self.fn)

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp, defined=self._defined)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn, defined=self._defined)

    @property
    def f1(self) -> float | None:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, defined=self._defined)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(frozen=True)
class _Operation:
    id: str
    kind: str


@dataclass(frozen=True)
class _Truth:
    scenario: Any
    seed: Any
    operations: tuple[_Operation, ...]


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _one(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    row = con.sql(query).fetchone()
    assert row is not None, query
    return row


def _parquet_view(con: duckdb.DuckDBPyConnection, path: Path, view: str) -> None:
    """A view of a Parquet file with ``_row``, its record number from 1."""
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            f"SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({sql_literal(paths.readable(path))}, file_row_number = true)"
        )
        con.execute(f"DESCRIBE {view}").fetchall()
    except duckdb.Error as exc:
        raise SchemaError(path, f"cannot read it as Parquet: {exc}") from exc


def _first_error(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    """Raise for the first row :func:`~concerted.schema.validate` marked bad."""
    bad = con.sql(
        f"SELECT _row, _error_column, _error FROM {table} "
        "WHERE _error IS NOT NULL ORDER BY _row LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise SchemaError(path, str(bad[2]), row=int(bad[0]), column=str(bad[1]))


def _load_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> _Truth:
    """Read the truth into temp table ``truth``, checked against ``truth.json``."""
    missing = [name for name in TRUTH_FILES if not (truth_dir / name).is_file()]
    if missing:
        raise ConfigError(
            f"{truth_dir} is not a truth directory: it lacks {', '.join(missing)} "
            "(write one with 'concerted simulate')"
        )
    meta_path = truth_dir / "truth.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(meta_path, f"cannot read it as JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise SchemaError(meta_path, "expected a JSON object")
    for key in ("scenario", "seed", "operations"):
        if key not in meta:
            raise SchemaError(meta_path, f"missing key {key!r}", column=key)
    if not isinstance(meta["operations"], list):
        raise SchemaError(meta_path, "'operations' is not a list", column="operations")
    operations: list[_Operation] = []
    for i, op in enumerate(meta["operations"], start=1):
        if not isinstance(op, dict) or not isinstance(op.get("id"), str) or not op["id"]:
            raise SchemaError(meta_path, f"operation {i} has no string 'id'", column="operations")
        if op.get("kind") not in _KINDS:
            raise SchemaError(
                meta_path,
                f"operation {op['id']!r} has kind {op.get('kind')!r}, "
                f"expected one of {', '.join(_KINDS)}",
                column="operations",
            )
        if any(o.id == op["id"] for o in operations):
            raise SchemaError(meta_path, f"operation id {op['id']!r} twice", column="operations")
        operations.append(_Operation(op["id"], op["kind"]))

    path = truth_dir / "truth.parquet"
    _parquet_view(con, path, "raw_truth")
    validate(con, "raw_truth", TRUTH_CONTRACT, file=path, into="truth")
    _first_error(con, "truth", path)
    known = ", ".join(sql_literal(o.id) for o in operations)
    stray = con.sql(
        "SELECT _row, operation_id FROM truth WHERE "
        + (f"operation_id NOT IN ({known})" if known else "TRUE")
        + " ORDER BY _row LIMIT 1"
    ).fetchone()
    if stray is not None:
        raise SchemaError(
            path,
            f"operation not listed in truth.json ({stray[1]!r})",
            row=int(stray[0]),
            column="operation_id",
        )
    return _Truth(meta["scenario"], meta["seed"], tuple(operations))


def _load_result(con: duckdb.DuckDBPyConnection, result_dir: Path) -> list[str]:
    """Type each result file into a temp table of its contract's name; return the
    names of the optional files that are missing."""
    missing: list[str] = []
    for name, file in RESULT_FILES.items():
        contract = RESULT_CONTRACTS[name]
        path = result_dir / file
        raw = f"raw_{name}"
        if path.is_file():
            _parquet_view(con, path, raw)
        elif name == "campaigns":
            raise ConfigError(f"{result_dir} holds no {file}: it is not a result directory")
        else:
            missing.append(file)
            empty = ", ".join(
                f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}" for c in contract.columns
            )
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {raw} AS "
                f"SELECT CAST(NULL AS BIGINT) AS _row, {empty} LIMIT 0"
            )
        validate(con, raw, contract, file=path, into=name)
        _first_error(con, name, path)

    twice = con.sql(
        "SELECT _row, campaign_id, min(_row) OVER (PARTITION BY campaign_id) FROM campaigns "
        "QUALIFY _row > min(_row) OVER (PARTITION BY campaign_id) ORDER BY _row LIMIT 1"
    ).fetchone()
    if twice is not None:
        raise SchemaError(
            result_dir / RESULT_FILES["campaigns"],
            f"campaign_id {twice[1]!r} already on row {twice[2]}",
            row=int(twice[0]),
            column="campaign_id",
        )
    for name in ("members", "targets"):
        orphan = con.sql(
            f"SELECT _row, campaign_id FROM {name} "
            "WHERE campaign_id NOT IN (SELECT campaign_id FROM campaigns) ORDER BY _row LIMIT 1"
        ).fetchone()
        if orphan is not None:
            raise SchemaError(
                result_dir / RESULT_FILES[name],
                f"campaign_id {orphan[1]!r} is not in {RESULT_FILES['campaigns']}",
                row=int(orphan[0]),
                column="campaign_id",
            )
    return missing


def _score(con: duckdb.DuckDBPyConnection, predicted: str, truth: str) -> Score:
    """Score two queries that each give ``platform, id``; duplicates count once."""
    n_pred, n_truth, tp = _one(
        con,
        f"WITH p AS (SELECT DISTINCT platform, id FROM ({predicted})), "
        f"t AS (SELECT DISTINCT platform, id FROM ({truth})) "
        "SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM t), "
        "(SELECT count(*) FROM p JOIN t USING (platform, id))",
    )
    return Score(tp=int(tp), fp=int(n_pred) - int(tp), fn=int(n_truth) - int(tp))


_FLAGGED_MEMBERS = (
    "SELECT m.platform, m.account_id AS id, m.role, m.campaign_id FROM members m "
    "JOIN campaigns c USING (campaign_id) WHERE c.flagged"
)
_TRUTH_ACCOUNTS = "SELECT platform, id, role, operation_id FROM truth WHERE entity = 'account'"


def _campaigns(con: duckdb.DuckDBPyConnection, operations: Sequence[_Operation]) -> dict[str, Any]:
    flagged = int(_one(con, "SELECT count(*) FROM campaigns WHERE flagged")[0])
    # Only pairs that share an account can reach the threshold.
    pairs = con.sql(
        f"WITH cm AS (SELECT DISTINCT campaign_id, platform, id FROM ({_FLAGGED_MEMBERS})), "
        f"om AS (SELECT DISTINCT operation_id, platform, id FROM ({_TRUTH_ACCOUNTS})), "
        "cs AS (SELECT campaign_id, count(*) AS n FROM cm GROUP BY campaign_id), "
        "os AS (SELECT operation_id, count(*) AS n FROM om GROUP BY operation_id) "
        "SELECT campaign_id, operation_id, count(*) AS shared, any_value(cs.n), any_value(os.n) "
        "FROM cm JOIN om USING (platform, id) JOIN cs USING (campaign_id) "
        "JOIN os USING (operation_id) GROUP BY campaign_id, operation_id"
    ).fetchall()
    best: dict[str, tuple[Fraction, str]] = {}
    for campaign, operation, shared, n_campaign, n_operation in pairs:
        jaccard = Fraction(int(shared), int(n_campaign) + int(n_operation) - int(shared))
        held = best.get(campaign)
        if held is None or (-jaccard, operation) < (-held[0], held[1]):
            best[campaign] = (jaccard, operation)
    matches = [
        {"campaign_id": c, "operation_id": o, "jaccard": round(float(j), _DIGITS)}
        for c, (j, o) in sorted(best.items())
        if j >= MATCH_THRESHOLD
    ]
    found = {m["operation_id"] for m in matches}
    defined = bool(flagged or operations)
    # F1 from the exact ratios, not the rounded ones.
    p = Fraction(len(matches), flagged) if flagged else Fraction(0)
    r = Fraction(len(found), len(operations)) if operations else Fraction(0)
    f1 = _ratio(2 * p * r, p + r, defined=defined) if p + r else _ratio(0, 0, defined=defined)
    return {
        "precision": _ratio(len(matches), flagged, defined=defined),
        "recall": _ratio(len(found), len(operations), defined=defined),
        "f1": f1,
        "flagged": flagged,
        "matched": len(matches),
        "operations": len(operations),
        "operations_matched": len(found),
        "false_campaigns": flagged - len(matches),
        "matches": matches,
    }


def _roles(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    rows = con.sql(
        f"WITH t AS (SELECT DISTINCT role, platform, id FROM ({_TRUTH_ACCOUNTS})), "
        f"p AS (SELECT DISTINCT platform, id FROM ({_FLAGGED_MEMBERS})) "
        "SELECT role, count(*), count(p.id) FROM t LEFT JOIN p USING (platform, id) "
        "GROUP BY role ORDER BY role"
    ).fetchall()
    return {
        str(role): {
            "truth": int(n),
            "flagged": int(hit),
            "recall": _ratio(int(hit), int(n), defined=True),
        }
        for role, n, hit in rows
    }


def evaluate(result_dir: str | Path, truth_dir: str | Path) -> dict[str, Any]:
    """Score the result in ``result_dir`` against the truth in ``truth_dir``.

    Returns a JSON-ready dict: ``scenario``, ``seed``, ``result``, ``truth``,
    ``missing``, ``accounts``, ``targets``, ``reports``, ``campaigns``,
    ``campaigns_flagged_on_organic``, ``roles``, ``automated_reporters``,
    ``brigade_reporters`` and ``recommendations``, as the module's rules define them.
    """
    result_dir, truth_dir = Path(result_dir), Path(truth_dir)
    with _connect() as con:
        truth = _load_truth(con, truth_dir)
        missing = _load_result(con, result_dir)

        def entity(kind: str) -> str:
            return f"SELECT platform, id FROM truth WHERE entity = {sql_literal(kind)}"

        accounts = _score(con, _FLAGGED_MEMBERS, entity("account"))
        targets = _score(
            con,
            "SELECT t.platform, t.target_id AS id FROM targets t "
            "JOIN campaigns c USING (campaign_id) WHERE c.flagged",
            entity("target"),
        )
        reports = _score(
            con,
            "SELECT platform, report_id AS id FROM report_scores WHERE flagged",
            entity("report"),
        )
        automated = _score(
            con,
            f"SELECT * FROM ({_FLAGGED_MEMBERS}) WHERE role = 'automated_reporter'",
            f"SELECT * FROM ({_TRUTH_ACCOUNTS}) WHERE role = 'automated_reporter'",
        )
        brigades = ", ".join(sql_literal(o.id) for o in truth.operations if o.kind == "brigade")
        brigade_reporters = _score(
            con,
            f"SELECT m.platform, m.id FROM ({_FLAGGED_MEMBERS}) m "
            "JOIN campaigns c USING (campaign_id) WHERE c.kind = 'brigade' "
            "AND m.role IN ('reporter', 'automated_reporter')",
            f"SELECT platform, id, operation_id FROM ({_TRUTH_ACCOUNTS}) WHERE role IN "
            "('reporter', 'fake_reporter', 'automated_reporter') "
            f"AND operation_id IN ({brigades or 'NULL'}) "
            f"EXCEPT SELECT platform, id, operation_id FROM ({_TRUTH_ACCOUNTS}) "
            "WHERE role = 'organiser'",
        )
        brigade_organisers = _score(
            con,
            f"SELECT m.platform, m.id FROM ({_FLAGGED_MEMBERS}) m "
            "JOIN campaigns c USING (campaign_id) WHERE c.kind = 'brigade' "
            "AND m.role = 'organiser'",
            f"SELECT platform, id FROM ({_TRUTH_ACCOUNTS}) WHERE role = 'organiser' "
            f"AND operation_id IN ({brigades or 'NULL'})",
        )
        campaigns = _campaigns(con, truth.operations)
        return {
            "scenario": truth.scenario,
            "seed": truth.seed,
            "result": str(result_dir),
            "truth": str(truth_dir),
            "missing": missing,
            "accounts": accounts.as_dict(),
            "targets": targets.as_dict(),
            "reports": reports.as_dict(),
            "campaigns": campaigns,
            "campaigns_flagged_on_organic": None if truth.operations else campaigns["flagged"],
            "roles": _roles(con),
            "automated_reporters": automated.as_dict(),
            "brigade_reporters": brigade_reporters.as_dict(),
            "brigade_organisers": brigade_organisers.as_dict(),
            "recommendations": _recommendations(con),
        }


def _recommendations(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    rows = con.sql(
        "WITH t AS (SELECT DISTINCT platform, id FROM truth WHERE entity = 'report') "
        "SELECT CASE WHEN t.id IS NULL THEN 'other' ELSE 'coordinated' END, "
        "coalesce(s.recommendation, 'none'), count(*) "
        "FROM report_scores s LEFT JOIN t ON t.platform = s.platform AND t.id = s.report_id "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    out: dict[str, dict[str, int]] = {"coordinated": {}, "other": {}}
    for group, recommendation, n in rows:
        out[str(group)][str(recommendation)] = int(n)
    return out


def _member_role(roles: set[str]) -> str:
    """The one result role that says most about an account's truth roles."""
    if "organiser" in roles:
        return "organiser"
    if "automated_reporter" in roles:
        return "automated_reporter"
    if roles & {"reporter", "fake_reporter"}:
        return "reporter"
    return "member"


def _write(out_dir: Path, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    schema = arrow_schema(RESULT_CONTRACTS[name])
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), out_dir / RESULT_FILES[name])


def result_from_truth(truth_dir: str | Path, out_dir: str | Path) -> None:
    """Write the perfect result for the truth in ``truth_dir`` to ``out_dir``.

    One flagged campaign per operation (``campaign_id`` is the operation id), its
    accounts as members, its targets, and every truth report flagged for discounting.
    It is the ceiling check: :func:`evaluate` scores it 1.0 everywhere.
    """
    out_dir = Path(out_dir)
    with _connect() as con:
        truth = _load_truth(con, Path(truth_dir))
        accounts: dict[tuple[str, str, str], set[str]] = {}
        for op, platform, id_, role in con.sql(
            f"SELECT operation_id, platform, id, role FROM ({_TRUTH_ACCOUNTS}) "
            "ORDER BY operation_id, platform, id, role"
        ).fetchall():
            accounts.setdefault((op, platform, id_), set()).add(role)
        targets = con.sql(
            "SELECT DISTINCT operation_id, platform, id FROM truth WHERE entity = 'target' "
            "ORDER BY ALL"
        ).fetchall()
        # A report's key is (platform, id): one row each, under its first operation.
        order = {o.id: i for i, o in enumerate(truth.operations)}
        reports: dict[tuple[str, str], str] = {}
        for op, platform, id_ in con.sql(
            "SELECT DISTINCT operation_id, platform, id FROM truth WHERE entity = 'report' "
            "ORDER BY platform, id"
        ).fetchall():
            held = reports.get((platform, id_))
            if held is None or order[op] < order[held]:
                reports[(platform, id_)] = op

    members = [
        {"campaign_id": op, "account_id": id_, "platform": platform, "role": _member_role(roles)}
        for (op, platform, id_), roles in accounts.items()
    ]
    target_rows = [
        {"campaign_id": op, "target_id": id_, "platform": platform, "target_kind": "account"}
        for op, platform, id_ in targets
    ]
    report_rows = [
        {
            "report_id": id_,
            "platform": platform,
            "score": 1.0,
            "flagged": True,
            "recommendation": "discount",
            "campaign_id": op,
        }
        for (platform, id_), op in reports.items()
    ]

    def count(rows: Sequence[Mapping[str, Any]]) -> Counter[str]:
        return Counter(str(r["campaign_id"]) for r in rows)

    n_members, n_targets, n_reports = count(members), count(target_rows), count(report_rows)
    campaigns = [
        {
            "campaign_id": o.id,
            "kind": o.kind,
            "score": 1.0,
            "flagged": True,
            "accounts": n_members[o.id],
            "targets": n_targets[o.id],
            "reports": n_reports[o.id],
        }
        for o in truth.operations
    ]
    paths.directory(out_dir)
    _write(out_dir, "campaigns", campaigns)
    _write(out_dir, "members", members)
    _write(out_dir, "targets", target_rows)
    _write(out_dir, "report_scores", report_rows)
