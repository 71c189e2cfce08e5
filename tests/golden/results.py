"""The results the test ``tests/test_same_results.py`` holds the code to.

``python tests/golden/results.py`` prints, as JSON, a digest of every result table of
the brigade stage on the planted case and of ``analyze`` on two simulated worlds (its
rows sorted, floats rounded to 9 digits). Run it before a change that must not alter
results, save its output as ``tests/golden/results.json``, and the test then holds the
changed code to it. A change meant to alter results writes the file again, in the same
commit, and says why.

It uses only library calls that stay the same across such changes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

#: Result tables compared, and the simulated worlds (scenario, seed, scale).
TABLES = ("campaigns", "members", "targets", "report_scores", "edges")
WORLDS = (("cib", 0, 0.5), ("brigade", 0, 0.5))


def digest(table: pa.Table) -> dict[str, Any]:
    """Rows and a SHA-256 of the table's rows, in sorted order, floats rounded."""
    rows = []
    for row in table.to_pylist():
        rows.append(
            json.dumps(
                {k: round(v, 9) if isinstance(v, float) else v for k, v in row.items()},
                sort_keys=True,
                default=str,
            )
        )
    rows.sort()
    return {
        "rows": len(rows),
        "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
    }


def planted() -> dict[str, Any]:
    from concerted.brigades import find
    from concerted.testing.planted import planted_case

    con = duckdb.connect()
    planted_case(con, seed=4)
    found = find(con)
    con.close()
    return {name: digest(getattr(found, name)) for name in TABLES}


def world(scenario: str, seed: int, scale: float) -> dict[str, Any]:
    from concerted import simulate
    from concerted.analysis import analyze
    from concerted.ingest import IngestOptions, open_case

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        simulate.simulate(simulate.scenario(scenario).scaled(scale), seed=seed, out=data)
        out = Path(tmp) / "result"
        store, _ = open_case([data], out / "case.duckdb", IngestOptions(format="generic"))
        with store:
            analyze(store, out)
        return {
            name: digest(pq.read_table(out / f"{name}.parquet"))
            for name in TABLES
            if (out / f"{name}.parquet").exists()
        }


def results() -> dict[str, Any]:
    """Every digest, by case."""
    out = {"planted-4": planted()}
    for scenario, seed, scale in WORLDS:
        out[f"{scenario}-{seed}-{scale}"] = world(scenario, seed, scale)
    return out


if __name__ == "__main__":
    json.dump(results(), sys.stdout, indent=1, sort_keys=True)
    print()
