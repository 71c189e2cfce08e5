"""The engines side by side: the heavy stages on DuckDB and on Spark (local mode).

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.spark                       # about 10^6 actions
    .venv/bin/python -m benchmarks.spark --scale 8             # about 10^7 actions
    .venv/bin/python -m benchmarks.spark --engines duckdb --scale 8 --json

1. **Generate** (once per scale; later runs reuse it): ``concerted simulate --scenario
   pakistan-2020 --seed 0 --scale S`` (one Parquet file per table) under ``--out``:
   about 1.24 x 10^6 actions per unit of scale.
2. **Each engine**, one child process each, on the same files, timing each stage of the
   engine seam (``concerted.engines``) in turn:

   - ``load``: the files into a fresh case (DuckDB, ``CREATE TABLE ... AS SELECT * FROM
     read_parquet``; no validation, the same for both engines);
   - ``derive``: ``derive_actions`` for posts, reports and roles;
   - ``pair``: ``pair`` with the analysis's default co-action layer (window 60 s, its
     default kinds, viral objects capped at 2,000,000 candidate pairs), edges and
     events then counted on the case's connection (DuckDB's pairing is lazy: the count
     runs it);
   - ``expect``: ``expectations`` (the stratified null's sums, strata of one day) on
     those events, counted.

   Spark runs ``local[N]`` (``--spark-master``, default ``local[2]``: the machine's
   cores), ``spark.sql.shuffle.partitions`` = ``--partitions`` (by default 8 up to
   scale 1, then 16 per unit of scale: 128 at 10^7 actions, about 60 MB of the
   pairing's shuffle each, with adaptive execution merging small ones), the driver's
   memory ``--driver-memory`` (by default 4g up to scale 1, else 6g), on loopback,
   spilling to ``--out``'s work directory (``spark.local.dir``) rather than ``/tmp``.
3. **Measured** per child: wall seconds from spawn to exit, CPU seconds (user + sys)
   of the child and of every process under it (the JVM and its Python workers:
   ``utime + stime + cutime + cstime`` from ``/proc`` just before the session stops,
   since pyspark does not wait for its JVM), and the peak resident memory of the
   whole process tree (sampled every 0.1 s, as ``benchmarks/coaction.py`` does),
   with the 1-minute load average before and after each child. With
   ``--shuffle-metrics``, Spark's UI is on (loopback) and each stage records the bytes
   and records Spark shuffled and read, from its REST API.

The edges, events and pairs each engine found are printed; they must be equal (the
exit status is 1 when they are not).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.coaction import run_measured

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def _descendants_cpu(root: int) -> float:
    """CPU seconds of the processes under ``root`` and the children they reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total = 0
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        fields = stats[pid]
        # After the command's ")": state is field 0, so utime..cstime are 11..14.
        total += sum(int(x) for x in fields[11:15])
        todo.extend(children.get(pid, ()))
    return total / tick


def _shuffle(spark: Any) -> dict[str, int]:
    """Bytes and records Spark's completed stages have shuffled so far (its REST API,
    on loopback; ``--shuffle-metrics`` turns the UI on for it)."""
    import urllib.request

    if spark is None:
        return {}
    app = spark.sparkContext.applicationId
    url = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{app}/stages?status=complete"
    with urllib.request.urlopen(url) as response:
        stages = json.load(response)
    keys = ("shuffleWriteBytes", "shuffleWriteRecords", "inputBytes", "outputBytes")
    return {k: sum(int(s.get(k, 0)) for s in stages) for k in keys}


def child(args: argparse.Namespace) -> None:
    """One engine's run, in its own process; prints one JSON line."""
    from concerted.detectors.coaction import CoAction
    from concerted.store import Store

    data = Path(args.data)
    spark = None
    stages: dict[str, float] = {}
    began = time.perf_counter()
    store = Store(Path(args.work) / f"{args.engine}.duckdb", memory_limit=args.memory_limit)
    con = store.con
    if args.engine == "spark":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        from concerted.engines.spark import SparkEngine

        spark = (
            SparkSession.builder.master(args.spark_master)
            .appName("concerted-benchmark")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", args.driver_memory)
            .config("spark.ui.enabled", "true" if args.shuffle_metrics else "false")
            .config("spark.ui.port", "0")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(args.partitions))
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
            .config("spark.local.dir", str(Path(args.work) / "spill"))
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        engine: Any = SparkEngine(con, spark, work_dir=args.work)
        stages["start"] = round(time.perf_counter() - began, 2)
    else:
        from concerted.engines.duck import DuckDBEngine

        engine = DuckDBEngine(con)

    shuffled: dict[str, dict[str, int]] = {}

    def timed(stage: str, work: Any) -> Any:
        before = _shuffle(spark) if args.shuffle_metrics else {}
        t = time.perf_counter()
        result = work()
        stages[stage] = round(time.perf_counter() - t, 2)
        if args.shuffle_metrics:
            after = _shuffle(spark)
            shuffled[stage] = {k: after[k] - before.get(k, 0) for k in after}
        return result

    def load() -> None:
        for table in ("posts", "reports", "roles"):
            con.execute(
                f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet('{data / table}.parquet')"
            )

    timed("load", load)
    actions = timed(
        "derive",
        lambda: sum(engine.derive_actions(t, t, "actions") for t in ("posts", "reports", "roles")),
    )
    layer = CoAction(window=60)

    def pair() -> tuple[Any, int, int, int]:
        paired = engine.pair("actions", [layer])
        edges = con.execute(f"SELECT count(*), sum(weight) FROM {paired.edges}").fetchone()
        (events,) = con.execute(f"SELECT count(*) FROM {paired.events}").fetchone() or (0,)
        assert edges is not None
        return paired, int(edges[0]), int(edges[1] or 0), int(events)

    paired, edges, weight, events = timed("pair", pair)
    sums = timed(
        "expect",
        lambda: engine.expectations(paired.events, "actions", stratum=86_400.0),
    )
    lam = con.execute(f"SELECT count(*), sum(lam) FROM {sums}").fetchone()
    assert lam is not None
    cpu_under = _descendants_cpu(os.getpid())
    if spark is not None:
        spark.stop()
    store.close()
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "actions": actions,
                "edges": edges,
                "weight": weight,
                "events": events,
                "pairs_tested": int(lam[0]),
                "lam_sum": float(lam[1] or 0.0),
                "stages": stages,
                **({"shuffle": shuffled} if args.shuffle_metrics else {}),
                "cpu_self": own.ru_utime + own.ru_stime,
                "cpu_under": cpu_under,
            }
        )
    )


def generate(out: Path, scale: float) -> Path:
    data = out / f"pakistan-2020-s{scale:g}"
    if not (data / "truth.json").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "concerted",
                "simulate",
                "--scenario",
                "pakistan-2020",
                "--seed",
                "0",
                "--scale",
                f"{scale:g}",
                "--out",
                str(data),
                "--overwrite",
            ],
            check=True,
            cwd=REPO,
        )
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.8)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--out", type=Path, default=Path("/tmp/concerted-bench-spark"))
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--partitions", type=int, help="default: from --scale")
    parser.add_argument("--driver-memory", help="default: from --scale")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--shuffle-metrics",
        action="store_true",
        help="Spark: record each stage's shuffle (bytes, records) through Spark's UI.",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.partitions is None:
        args.partitions = 8 if args.scale <= 1 else round(16 * args.scale)
    if args.driver_memory is None:
        args.driver_memory = "4g" if args.scale <= 1 else "6g"
    if args.child:
        args.engine = args.child
        child(args)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    data = generate(args.out, args.scale)
    rows = []
    for engine in args.engines.split(","):
        work = args.out / f"work-{engine}"
        subprocess.run(["rm", "-rf", str(work)], check=True)
        work.mkdir()
        load_before = os.getloadavg()[0]
        run = run_measured(
            [
                sys.executable,
                "-m",
                "benchmarks.spark",
                "--child",
                engine,
                "--data",
                str(data),
                "--work",
                str(work),
                "--spark-master",
                args.spark_master,
                "--partitions",
                str(args.partitions),
                "--driver-memory",
                args.driver_memory,
                "--memory-limit",
                args.memory_limit,
                *(["--shuffle-metrics"] if args.shuffle_metrics else []),
            ]
        )
        load_after = os.getloadavg()[0]
        if run.code != 0:
            sys.stderr.write(run.stderr[-4000:])
            return 1
        found = json.loads(run.stdout.strip().splitlines()[-1])
        found.update(
            wall_s=round(run.seconds, 1),
            cpu_s=round(found.pop("cpu_self") + found.pop("cpu_under"), 1),
            peak_rss_mib=round(run.peak_rss_mib),
            load_before=round(load_before, 2),
            load_after=round(load_after, 2),
            scale=args.scale,
        )
        rows.append(found)
        subprocess.run(["rm", "-rf", str(work)], check=True)
        if not args.json:
            print(json.dumps(found), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    keys = ("actions", "edges", "weight", "events", "pairs_tested")
    same = all(tuple(r[k] for k in keys) == tuple(rows[0][k] for k in keys) for r in rows)
    if not same:
        print("the engines disagree", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
