"""Calibration of the significance test on real data with no coordination left in it.

Usage (from the repository root; needs ``../shared/data``)::

    .venv/bin/python -m benchmarks.calibration            # 3 seeds per data set
    .venv/bin/python -m benchmarks.calibration --seeds 5 --data russian_coord_tweets

For each real data set in the CooRTweet long or wide format, ``concerted analyze`` runs
with its defaults on the file as it is and on copies whose coordination has been
destroyed while the rest stays:

``accounts``
    within each platform and day, the rows' accounts are permuted over the rows: every
    object keeps its times (a burst stays a burst), every account its number of rows
    on each day it was active; who acted with whom is random. This is the null the
    ``stratified`` test assumes, so it measures how well its Poisson tail holds on
    real activity.
``times``
    the timestamps are permuted over all rows: every account keeps its objects, but
    bursts and active days are broken.

It prints, per copy, the account pairs tested, those significant, the accounts in
flagged campaigns and the observed false-positive rate of pairs, beside the
false-discovery rate asked for; and CooRTweet's networks on the same file (edges and
accounts, ``min_participation 5, time_window 10`` and ``2, 60``), as ``concerted
coaction --compat coortweet`` reproduces them. On a copy every significant pair, and
every edge of a peer's network, is a false positive.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coortweet"
SETS = {
    "russian_coord_tweets": ("timestamp_share", "account_id"),
    "german_elections": ("timestamp", "account_id"),
}


def _copy(source: Path, out: Path, *, how: str, seed: int, ts: str, account: str) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE d AS SELECT *, row_number() OVER () AS _r FROM read_parquet(?)",
        [str(source)],
    )
    if how == "accounts":
        # Platform: the prefix before '_' where ids carry one (fb_, tw_), else one.
        con.execute(
            f"""CREATE TABLE p AS
                WITH k AS (SELECT _r, {account} AS a,
                                  CASE WHEN contains({account}, '_')
                                       THEN split_part({account}, '_', 1) ELSE '' END AS pf,
                                  ({ts})::BIGINT // 86400 AS day FROM d),
                x AS (SELECT _r, pf, day, row_number() OVER (PARTITION BY pf, day
                          ORDER BY hash(_r, {seed})) AS i FROM k),
                y AS (SELECT a, pf, day, row_number() OVER (PARTITION BY pf, day
                          ORDER BY hash(_r, {seed} + 7919)) AS i FROM k)
                SELECT x._r, y.a FROM x JOIN y USING (pf, day, i)"""
        )
        con.execute(
            f"""COPY (SELECT d.* EXCLUDE (_r, {account}), p.a AS {account}
                      FROM d JOIN p USING (_r)) TO '{out}' (FORMAT parquet)"""
        )
    else:
        con.execute(
            f"""CREATE TABLE p AS
                WITH x AS (SELECT _r, row_number() OVER (ORDER BY hash(_r, {seed})) AS i
                           FROM d),
                y AS (SELECT {ts} AS t, row_number() OVER (ORDER BY hash(_r, {seed} + 7919))
                          AS i FROM d)
                SELECT x._r, y.t FROM x JOIN y USING (i)"""
        )
        con.execute(
            f"""COPY (SELECT d.* EXCLUDE (_r, {ts}), p.t AS {ts}
                      FROM d JOIN p USING (_r)) TO '{out}' (FORMAT parquet)"""
        )


def _analyze(path: Path, out: Path) -> dict[str, object]:
    command = [
        sys.executable,
        "-m",
        "concerted",
        "analyze",
        str(path),
        "--format",
        "coortweet",
        "--out",
        str(out),
        "--overwrite",
    ]
    subprocess.run(command, check=True, capture_output=True)
    run = json.loads((out / "run.json").read_text())
    counts = run["counts"]
    return {
        "pairs": counts["pairs"],
        "significant": counts["significant_pairs"],
        "campaign_accounts": counts["campaign_accounts"],
        "flagged": counts["flagged_campaigns"],
        "fdr": run["settings"]["significance"]["fdr"],
    }


def _coortweet(path: Path, out: Path, participation: int, window: int) -> tuple[int, int]:
    """CooRTweet's network on the file at ``participation`` and ``window``: its edges
    and the accounts they touch."""
    command = [
        *(sys.executable, "-m", "concerted", "coaction", str(path), "--format", "coortweet"),
        *("--compat", "coortweet", "--window", str(window), "--out", str(out), "--overwrite"),
        *("--min-participation", str(participation)),
    ]
    subprocess.run(command, check=True, capture_output=True)
    rows = duckdb.sql(
        f'SELECT "from", "to" FROM read_parquet(\'{out / "edges.parquet"}\')'
    ).fetchall()
    return len(rows), len({a for row in rows for a in row})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", action="append", choices=sorted(SETS))
    args = parser.parse_args(argv)
    names = args.data or sorted(SETS)
    print(
        f"{'data':24} {'copy':10} {'seed':>4} {'pairs':>8} {'signif.':>8} {'FPR':>9} "
        f"{'accounts':>9} {'flagged':>7} {'CooRTweet P5/W10':>17} {'P2/W60':>15}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            source = DATA / f"{name}.parquet"
            ts, account = SETS[name]
            runs = [("as is", 0, source)]
            for how in ("accounts", "times"):
                for seed in range(args.seeds):
                    copy = Path(tmp) / f"{name}-{how}-{seed}.parquet"
                    _copy(source, copy, how=how, seed=seed, ts=ts, account=account)
                    runs.append((how, seed, copy))
            for i, (how, seed, path) in enumerate(runs):
                got = _analyze(path, Path(tmp) / f"out-{name}-{i}")
                pairs, significant = int(got["pairs"]), int(got["significant"])  # type: ignore[call-overload]
                rate = significant / pairs if pairs else 0.0
                peers = [
                    _coortweet(path, Path(tmp) / f"ct-{name}-{i}-{p}", p, w)
                    for p, w in ((5, 10), (2, 60))
                ]
                shown = [f"{e:,} e / {a:,} a" for e, a in peers]
                print(
                    f"{name:24} {how:10} {seed:>4} {pairs:>8,} {significant:>8,} "
                    f"{rate:>9.2e} {got['campaign_accounts']:>9} {got['flagged']:>7} "
                    f"{shown[0]:>17} {shown[1]:>15}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
