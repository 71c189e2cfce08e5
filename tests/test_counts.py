"""Every count a run gives is the same in the command line, run.json, summary.json
and report.html: the pairs tested and beyond chance, the networks in one order, and
each network's ties."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import pytest

from tests.test_cli import run

pytestmark = pytest.mark.e2e


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_cli_run_json_summary_and_report_agree(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    made = run("simulate", "--scenario", "cib", "--seed", "3", "--scale", "0.5", "--out", sim)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "result"
    done = run("analyze", sim, "--out", out, env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    counts = json.loads((out / "run.json").read_text())["counts"]
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text(encoding="utf-8")

    # Pairs tested and beyond chance.
    line = re.search(r"([\d,]+) account pairs co-acted, ([\d,]+) beyond chance", done.stdout)
    assert line, done.stdout
    assert (_number(line[1]), _number(line[2])) == (counts["pairs"], counts["significant_pairs"])
    assert summary["counts"] == counts

    # The networks, in one order, each with its ties beyond chance.
    cli = [
        (m[1], _number(m[2]))
        for m in re.finditer(r"(network-\d+)\s*│\s*[\d,]+\s*│\s*([\d,]+)", done.stdout)
    ]
    listed = [(n["campaign_id"], n["ties"]) for n in summary["networks"]]
    assert cli and cli == listed
    in_page = [
        _number(m[1]) for m in re.finditer(r"([\d,]+) pairs? of accounts acted together", page)
    ]
    assert in_page == [ties for _, ties in listed]

    # The network view's caption counts every tie among the members, of every kind.
    caption = re.search(r"strongest of their ([\d,]+) ties of every kind", page)
    assert caption
    con = duckdb.connect()
    (every,) = con.execute(
        f"""WITH m AS (SELECT platform, account_id FROM '{out / "members.parquet"}'
                       WHERE campaign_id = ?)
            SELECT count(*) FROM (
                SELECT DISTINCT platform_1, account_1, platform_2, account_2
                FROM '{out / "edges.parquet"}' e
                WHERE coalesce(significant, true)
                  AND (platform_1, account_1) IN (SELECT * FROM m)
                  AND (platform_2, account_2) IN (SELECT * FROM m))""",
        [listed[0][0]],
    ).fetchone() or (0,)
    assert _number(caption[1]) == every
