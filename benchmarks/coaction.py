"""Co-action benchmark: concerted against the coordination-network-toolkit, file to edges.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.coaction                        # 1,000,000 reposts
    .venv/bin/python -m benchmarks.coaction --actions 10000000 --no-peer --memory-limit 8GB

1. **Generate** (once per set of parameters; later runs reuse the file): a CSV in the
   toolkit's format (``message_id,user_id,username,repost_id,reply_id,message,
   timestamp,urls``) where every row is a repost. numpy draws it in chunks of
   1,000,000 rows from one seeded generator, so 10^8 rows need no more memory than
   10^6: the account from a bounded Zipf over ``--accounts`` ranks (p ∝ rank^-1),
   the object reposted from a bounded Zipf over ``--objects`` ranks (p ∝ rank^-1.6),
   the time uniform over 30 days in integer Unix seconds. Ranks map to ids through a
   seeded permutation; ``reply_id``, ``message`` and ``urls`` are empty.
2. **concerted**, one child process: ``concerted coaction FILE --format qut --kind
   repost --window W --compat qut --out DIR`` (``--via cli``; its ``run.json`` gives
   the time of pairing and writing the edges, and of reading the file where the command
   reads it straight into actions, no case built), or the same work through the library
   (``--via library``: ``Store``, ``ingest`` and ``compat.qut_edges``, written to
   ``DIR/edges.parquet``, each step timed). ``--via auto`` (the default) takes the
   command when this concerted has it.
3. **The toolkit**, three child processes: ``preprocess`` the CSV into a fresh SQLite
   database and ``compute co_retweet --time_window W --min_edge_weight 1`` (on all
   cores, its default), through its command line, then the edges to CSV through the
   function its ``export_network ... --output_format csv`` calls (self loops dropped,
   its default): that command fails in 1.5.2. ``--no-peer`` skips the toolkit.
4. **Compare** the two sets of directed edges (user_1, user_2, weight): they must be the
   same; the exit status is 1 when they are not.

Each child is started by a small launcher, which times it from spawn to exit. Its peak
memory is the larger of the largest ``ru_maxrss`` among the child and the descendants
it waited for, and the sum of the resident memory of all of them, sampled every 0.1 s:
the toolkit computes in a pool of worker processes. The generated CSV is kept under
``--out`` and reused; the toolkit's database, concerted's output and the edge files are
deleted unless ``--keep``.

Every child reads its modules' bytecode from a cache under ``--out``, compiled before
the first measured run, as an installed package has it: where ``PYTHONDONTWRITEBYTECODE``
is set and the source tree holds no bytecode, each run would otherwise compile
concerted's modules again (about 0.1 s of CPU at start-up). ``--cold-bytecode`` keeps
the environment as it is.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from benchmarks.ingest import DEFAULT_OUT, MIB, REPO, machine
from concerted.adapters.qut import COLUMNS  # the toolkit's CSV columns, in its order

# Bump when the generator changes, so that older files are not reused.
GENERATOR_VERSION = 1
CHUNK = 1_000_000
DAY = 86_400
DAYS = 30
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
ACCOUNT_EXPONENT = 1.0
OBJECT_EXPONENT = 1.6
HEADER = ",".join(COLUMNS) + "\n"
MESSAGE_BASE = 1_700_000_000_000_000_000
OBJECT_BASE = 1_600_000_000_000_000_000
ACCOUNT_BASE = 1_000_000_000


# -- the workload -------------------------------------------------------------------------


def _zipf_cdf(n: int, exponent: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The cumulative distribution of a Zipf law bounded to ranks 1..n."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _draw(
    rng: np.random.Generator, cdf: np.ndarray[Any, np.dtype[np.float64]], size: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """``size`` ranks (0-based) drawn from ``cdf``."""
    ranks = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(ranks, len(cdf) - 1).astype(np.int64)


def expected_pairs(actions: int, objects: int, window: int) -> float:
    """Expected pairs of actions on one object at most ``window`` seconds apart.

    For an object with n actions uniform over a span T, a pair falls within the window
    with probability 2w/T - (w/T)^2; n is binomial, E[n(n-1)] = N(N-1)p^2.
    """
    cdf = _zipf_cdf(objects, OBJECT_EXPONENT)
    p = np.diff(cdf, prepend=0.0)
    x = window / (DAYS * DAY)
    return float(actions * (actions - 1) / 2 * np.sum(p * p) * (2 * x - x * x))


@dataclass(frozen=True)
class Workload:
    file: Path
    actions: int
    accounts: int
    objects: int
    seed: int
    active_accounts: int
    reposted_objects: int
    busiest_account: int
    top_object: int
    file_mib: float
    reused: bool
    seconds: float


def generate(out_dir: Path, actions: int, accounts: int, objects: int, seed: int) -> Workload:
    """The reposts CSV, generated unless a file of these parameters exists."""
    stem = f"coaction-n{actions}-a{accounts}-o{objects}-s{seed}-g{GENERATOR_VERSION}"
    path = out_dir / f"{stem}.csv"
    about = out_dir / f"{stem}.json"
    if path.is_file() and about.is_file():
        found = json.loads(about.read_text())
        return Workload(file=path, reused=True, seconds=0.0, **found)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    account_ids = pc.cast(pa.array(ACCOUNT_BASE + rng.permutation(accounts)), pa.string())
    usernames = pa.array([f"user{a}" for a in account_ids.to_pylist()], pa.string())
    object_ids = pc.cast(pa.array(OBJECT_BASE + rng.permutation(objects)), pa.string())
    account_cdf = _zipf_cdf(accounts, ACCOUNT_EXPONENT)
    object_cdf = _zipf_cdf(objects, OBJECT_EXPONENT)
    per_account = np.zeros(accounts, dtype=np.int64)
    per_object = np.zeros(objects, dtype=np.int64)
    schema = pa.schema(
        [pa.field(name, pa.int64() if name == "timestamp" else pa.string()) for name in COLUMNS]
    )
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    partial = path.with_suffix(".csv.partial")
    with partial.open("wb") as fh:
        fh.write(HEADER.encode())
        with pcsv.CSVWriter(fh, schema, write_options=options) as writer:
            for start in range(0, actions, CHUNK):
                size = min(CHUNK, actions - start)
                who = _draw(rng, account_cdf, size)
                what = _draw(rng, object_cdf, size)
                when = T0 + rng.integers(0, DAYS * DAY, size, dtype=np.int64)
                per_account += np.bincount(who, minlength=accounts)
                per_object += np.bincount(what, minlength=objects)
                empty = pa.nulls(size, pa.string())
                ids = np.arange(MESSAGE_BASE + start, MESSAGE_BASE + start + size)
                writer.write_table(
                    pa.table(
                        [
                            pc.cast(pa.array(ids), pa.string()),
                            account_ids.take(pa.array(who)),
                            usernames.take(pa.array(who)),
                            object_ids.take(pa.array(what)),
                            empty,
                            empty,
                            pa.array(when),
                            empty,
                        ],
                        schema=schema,
                    )
                )
    partial.replace(path)
    found = {
        "actions": actions,
        "accounts": accounts,
        "objects": objects,
        "seed": seed,
        "active_accounts": int(np.count_nonzero(per_account)),
        "reposted_objects": int(np.count_nonzero(per_object)),
        "busiest_account": int(per_account.max()),
        "top_object": int(per_object.max()),
        "file_mib": round(path.stat().st_size / MIB, 1),
    }
    about.write_text(json.dumps(found, indent=2) + "\n")
    return Workload(file=path, reused=False, seconds=time.perf_counter() - started, **found)


# -- measuring a child process ------------------------------------------------------------


def _tree_rss(root: int, page: int) -> int:
    """Resident bytes of the descendants of ``root`` (not ``root`` itself), now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name, in parentheses, may hold spaces: the fields follow its end.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total = 0
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, ()))
    return total


# A small launcher between this process and the measured command. A child's ru_maxrss
# starts from the memory of the process that spawned it (the kernel carries the
# spawner's high-water mark across exec), which here holds numpy, pyarrow and DuckDB;
# spawned from a bare interpreter instead, the command's figure is its own. The launcher
# reports the command's exit status, its time from spawn to exit, and the largest
# ru_maxrss among it and the descendants it waited for, and their CPU time together
# (RUSAGE_CHILDREN).
_LAUNCHER = """\
import json, os, resource, sys, time
began = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status = os.waitpid(pid, 0)
seconds = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
with open(sys.argv[1], "w") as fh:
    json.dump([os.waitstatus_to_exitcode(status), seconds, cpu, usage.ru_maxrss], fh)
"""


@dataclass
class Measured:
    command: list[str]
    code: int
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str


def run_measured(command: list[str]) -> Measured:
    """Run ``command``; time it to its exit and measure its process tree's memory.

    The peak is the larger of the largest single process's ``ru_maxrss`` and the sum of
    the resident memory of all the command's processes, sampled every 0.1 s.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    page = os.sysconf("SC_PAGE_SIZE")
    peak = 0
    done = threading.Event()
    texts: dict[str, str] = {}
    # What earlier runs left to write back is written now, not during this one.
    os.sync()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch, "report.json")
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER, str(report), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=env,
            text=True,
        )

        def drain(name: str, stream: TextIO) -> None:
            with stream:
                texts[name] = stream.read()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.1):
                peak = max(peak, _tree_rss(proc.pid, page))

        assert proc.stdout is not None and proc.stderr is not None
        threads = [
            threading.Thread(target=drain, args=("stdout", proc.stdout), daemon=True),
            threading.Thread(target=drain, args=("stderr", proc.stderr), daemon=True),
            threading.Thread(target=sample, daemon=True),
        ]
        for thread in threads:
            thread.start()
        launcher = proc.wait()
        done.set()
        for thread in threads:
            thread.join()
        if launcher != 0 or not report.is_file():
            code, seconds, cpu, maxrss_kib = launcher or 1, 0.0, 0.0, 0
        else:
            code, seconds, cpu, maxrss_kib = json.loads(report.read_text())
    return Measured(
        command=command,
        code=code,
        seconds=seconds,
        cpu_seconds=cpu,
        # ru_maxrss is in kilobytes on Linux.
        peak_rss_mib=max(peak / MIB, maxrss_kib / 1024),
        stdout=texts.get("stdout", ""),
        stderr=texts.get("stderr", ""),
    )


# What the measured commands import, compiled once into the cache (``warm_bytecode``).
_IMPORTS = (
    "import concerted.cli, concerted.fastpath, concerted.analysis, concerted.compat, "
    "pyarrow.csv, pyarrow.compute, pyarrow.parquet, duckdb"
)
_TOOLKIT_IMPORTS = (
    "import coordination_network_toolkit.__main__, coordination_network_toolkit.output"
)


def warm_bytecode(cache: Path, peer: bool) -> None:
    """Children from now on read bytecode from ``cache``, compiled here first (as an
    installed package has it), whatever ``PYTHONDONTWRITEBYTECODE`` says."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(cache)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    for imports in (_IMPORTS, _TOOLKIT_IMPORTS) if peer else (_IMPORTS,):
        subprocess.run([sys.executable, "-c", imports], cwd=REPO, env=env, check=True)


def _failed(what: str, run: Measured) -> SystemExit:
    sys.stderr.write(run.stderr[-4000:])
    return SystemExit(f"{what} failed (exit status {run.code}): {' '.join(run.command)}")


# -- the two tools ------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    seconds: float
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None


@dataclass
class ToolResult:
    tool: str
    via: str
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    edges_file: str
    stages: list[Stage] = field(default_factory=list)


def has_coaction_command() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "concerted", "coaction", "--help"],
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    return done.returncode == 0


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """concerted through the library: a fresh case, ingest, co-action edges to Parquet."""
    from concerted.adapters.base import AdapterOptions
    from concerted.compat import qut_edges
    from concerted.ingest import IngestOptions, ingest
    from concerted.store import Store

    marks: list[tuple[str, float]] = [("open", time.perf_counter())]
    store = Store(
        Path(spec["case"]), memory_limit=spec["memory_limit"], temp_directory=spec["temp_dir"]
    )

    def progress(message: str) -> None:
        marks.append((f"ingest: {message.split(' ', 1)[0]}", time.perf_counter()))

    ingest(
        store,
        [Path(spec["file"])],
        IngestOptions(format="qut", adapter=AdapterOptions()),
        progress=progress,
    )
    marks.append(("edges", time.perf_counter()))
    edges = qut_edges(store.con, "actions", window=spec["window"], kinds=("repost",), min_weight=1)
    marks.append(("write", time.perf_counter()))
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    edges.write_parquet(str(out / "edges.parquet"))
    marks.append(("close", time.perf_counter()))
    store.close()
    finished = time.perf_counter()
    return {
        name: round(end - start, 3)
        for (name, start), (_, end) in zip(marks, [*marks[1:], ("end", finished)], strict=True)
    }


def run_concerted(
    via: str,
    file: Path,
    work: Path,
    window: int,
    memory_limit: str | None,
    temp_dir: str | None,
    mode: str = "qut",
    case_file: bool = False,
) -> ToolResult:
    out = work / "concerted"
    if via == "cli":
        command = [sys.executable, "-m", "concerted", "coaction", str(file), "--format", "qut"]
        command += ["--kind", "repost", "--window", str(window)]
        command += ["--compat", "qut"] if mode == "qut" else []
        command += ["--out", str(out)]
        command += ["--case", str(work / "case.duckdb")] if case_file else []
        if memory_limit:
            command += ["--memory-limit", memory_limit]
        if temp_dir:
            command += ["--temp-dir", temp_dir]
    else:
        spec = {
            "file": str(file),
            "case": str(work / "case.duckdb"),
            "out": str(out),
            "window": window,
            "memory_limit": memory_limit,
            "temp_dir": temp_dir,
        }
        command = [sys.executable, "-m", "benchmarks.coaction", "--child", json.dumps(spec)]
    run = run_measured(command)
    if run.code != 0:
        raise _failed("concerted", run)
    stages: list[Stage] = []
    if via == "library":
        found: dict[str, float] = json.loads(run.stdout.strip().splitlines()[-1])
        stages = [Stage(name, seconds) for name, seconds in found.items()]
    elif (out / "run.json").is_file():
        # The command records the time of pairing and writing the edges.
        record = json.loads((out / "run.json").read_text())
        pairing = float(record["seconds"])
        direct = str(record.get("notes", {}).get("read", "")).startswith("direct")
        stages = [
            # The direct path (no case built) times its reading of the file too.
            Stage(
                "start-up, close" if direct else "start-up, ingest, close", run.seconds - pairing
            ),
            Stage(
                ("reading, pairing and writing edges" if direct else "pairing and writing edges")
                + " (run.json)",
                pairing,
            ),
        ]
        viral = record.get("notes", {}).get("viral_objects", [])
        if viral:
            left = sum(int(v["actions"]) for v in viral)
            pairs = sum(int(v["candidate_pairs"]) for v in viral)
            stages.append(
                Stage(
                    f"left out as viral: {len(viral)} objects, {left:,} actions, "
                    f"{pairs:,} candidate pairs",
                    0.0,
                )
            )
    return ToolResult(
        tool="concerted",
        via=via,
        seconds=run.seconds,
        cpu_seconds=run.cpu_seconds,
        peak_rss_mib=run.peak_rss_mib,
        edges_file=str(out / "edges.parquet"),
        stages=stages,
    )


# The direct path's stages, timed in one process as the command runs them: the script
# imports what the command imports, wraps the stages of ``concerted.fastpath`` so that
# each call records its wall time and the process's CPU time (all threads: pyarrow's
# reader and the counting use both cores), then runs ``fastpath.coaction``. The DuckDB
# sniffer and the file's hash run in threads beside the read; their own CPU time is
# their thread's. Prints one JSON list of [stage, calls, wall s, CPU s].
_STAGES = """\
import json, sys, time
began, cpu_began = time.perf_counter(), time.process_time()
import concerted.cli
from pathlib import Path
from concerted import fastpath
import pyarrow.csv
marks = [("start-up: import concerted.cli", 1, time.perf_counter() - began,
          time.process_time() - cpu_began)]
THREADS = ("_sniffed", "_hash_file")
def timed(name, label, owner=fastpath):
    inner = getattr(owner, name)
    clock = time.thread_time if name in THREADS else time.process_time
    def call(*args, **kwargs):
        wall, cpu = time.perf_counter(), clock()
        try:
            return inner(*args, **kwargs)
        finally:
            marks.append((label, 1, time.perf_counter() - wall, clock() - cpu))
    setattr(owner, name, call)
for name, label in [
    ("_plain_file", "read: the file's bytes checked (quotes, line ends, UTF-8)"),
    ("_sniffed", "read: DuckDB's sniffer (a thread beside the read)"),
    ("_hash_file", "read: SHA-256 of the file (a thread beside the read)"),
    ("_edged", "checks: ids ingest would trim"),
    ("_epoch_seconds", "checks: times"),
    ("_unique", "checks: message ids unique"),
    ("_read_arrow", "read and checks, in all"),
    ("_numbered", "numbering accounts and objects"),
    ("_matched_runs", "counting: pairs of rows within the window"),
    ("_write_edges", "summing by pair (threads), writing edges.parquet"),
    ("coaction", "fastpath.coaction, in all"),
]:
    timed(name, label)
timed("read_csv", "read: pyarrow.csv, five columns", pyarrow.csv)
file, out, window = sys.argv[1], sys.argv[2], float(sys.argv[3])
done = fastpath.coaction([Path(file)], out, window=window, compat_mode="qut",
                         kinds=("repost",))
marks.append(("process, in all", 1, time.perf_counter() - began,
              time.process_time() - cpu_began))
found = {}
for label, calls, wall, cpu in marks:
    seen = found.setdefault(label, [label, 0, 0.0, 0.0])
    seen[1] += calls; seen[2] += wall; seen[3] += cpu
print(json.dumps({"written": done, "stages": list(found.values())}))
"""


def run_stages(file: Path, work: Path, window: int) -> tuple[Measured, list[Stage]]:
    """The direct path's stages in one child process (``_STAGES``)."""
    out = work / "stages"
    run = run_measured([sys.executable, "-c", _STAGES, str(file), str(out), str(window)])
    if run.code != 0:
        raise _failed("the staged direct path", run)
    found = json.loads(run.stdout.strip().splitlines()[-1])
    if not found["written"]:
        raise SystemExit("the staged run did not take the direct path")
    return run, [
        Stage(f"{label} ({calls}×)" if calls > 1 else label, wall, cpu)
        for label, calls, wall, cpu in found["stages"]
    ]


# The toolkit's command line (its console script, ``compute_networks``), and its edge
# export: the function its ``export_network ... --output_format csv`` calls, called
# directly, because that command fails in 1.5.2 (it passes ``n_messages`` to
# ``output_gephi_csv``, which takes none). Self loops are dropped, its default.
_TOOLKIT_CLI = "import sys; from coordination_network_toolkit.__main__ import main; main()"
_TOOLKIT_EXPORT = (
    "import sys; from coordination_network_toolkit.output import output_gephi_csv; "
    "output_gephi_csv(sys.argv[1], 'co_retweet', sys.argv[2], loops=False)"
)


def run_toolkit(file: Path, work: Path, window: int) -> ToolResult:
    db = work / "toolkit.db"
    edges = work / "toolkit-edges.csv"
    base = [sys.executable, "-c", _TOOLKIT_CLI, str(db)]
    commands = {
        "preprocess": [*base, "preprocess", "--format", "csv", str(file)],
        "compute": [*base, "compute", "co_retweet", "--time_window", str(window)]
        + ["--min_edge_weight", "1"],
        "export": [sys.executable, "-c", _TOOLKIT_EXPORT, str(db), str(edges)],
    }
    stages = []
    for name, command in commands.items():
        run = run_measured(command)
        if run.code != 0:
            raise _failed(f"the toolkit's {name}", run)
        stages.append(Stage(name, run.seconds, run.cpu_seconds, run.peak_rss_mib))
    return ToolResult(
        tool="coordination-network-toolkit",
        via="cli",
        seconds=sum(s.seconds for s in stages),
        cpu_seconds=sum(s.cpu_seconds or 0.0 for s in stages),
        peak_rss_mib=max(s.peak_rss_mib or 0.0 for s in stages),
        edges_file=str(edges),
        stages=stages,
    )


# -- comparing the edges ------------------------------------------------------------------


@dataclass
class Comparison:
    concerted_edges: int
    concerted_distinct: int
    toolkit_edges: int | None = None
    toolkit_distinct: int | None = None
    only_concerted: int | None = None
    only_toolkit: int | None = None
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool | None:
        if self.toolkit_edges is None:
            return None
        return (
            self.only_concerted == 0
            and self.only_toolkit == 0
            and self.concerted_edges == self.concerted_distinct
            and self.toolkit_edges == self.toolkit_distinct
        )


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def compare(concerted_edges: str, toolkit_edges: str | None) -> Comparison:
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TEMP TABLE ours AS SELECT user_1::VARCHAR AS user_1, "
            "user_2::VARCHAR AS user_2, weight::BIGINT AS weight FROM read_parquet(?)",
            [concerted_edges],
        )
        result = Comparison(
            concerted_edges=_one(con, "SELECT count(*) FROM ours"),
            concerted_distinct=_one(con, "SELECT count(*) FROM (SELECT DISTINCT * FROM ours)"),
        )
        if toolkit_edges is None:
            return result
        con.execute(
            "CREATE TEMP TABLE peer AS SELECT source AS user_1, target AS user_2, "
            "weight::BIGINT AS weight FROM read_csv(?, header = true, all_varchar = true)",
            [toolkit_edges],
        )
        result.toolkit_edges = _one(con, "SELECT count(*) FROM peer")
        result.toolkit_distinct = _one(con, "SELECT count(*) FROM (SELECT DISTINCT * FROM peer)")
        result.only_concerted = _one(con, "SELECT count(*) FROM (FROM ours EXCEPT FROM peer)")
        result.only_toolkit = _one(con, "SELECT count(*) FROM (FROM peer EXCEPT FROM ours)")
        for side, first, second in (("concerted", "ours", "peer"), ("toolkit", "peer", "ours")):
            rows = con.execute(
                f"FROM (FROM {first} EXCEPT FROM {second}) ORDER BY ALL LIMIT 5"
            ).fetchall()
            result.examples += [f"only {side}: {u1} -> {u2} weight {w}" for u1, u2, w in rows]
        return result
    finally:
        con.close()


# -- the command --------------------------------------------------------------------------


def _rate(actions: int, seconds: float) -> str:
    return f"{actions / seconds:,.0f}" if seconds else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--actions", type=int, default=1_000_000, help="reposts to generate")
    parser.add_argument("--accounts", type=int, default=100_000, help="account ranks")
    parser.add_argument("--objects", type=int, default=200_000, help="object ranks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=int, default=60, help="seconds")
    parser.add_argument("--memory-limit", help="passed to concerted (default: its own)")
    parser.add_argument("--temp-dir", help="passed to concerted: where DuckDB spills")
    parser.add_argument("--no-peer", action="store_true", help="skip the toolkit")
    parser.add_argument(
        "--case-file",
        action="store_true",
        help="concerted keeps its case in a file (--case) instead of in memory",
    )
    parser.add_argument(
        "--mode",
        choices=["qut", "concerted"],
        default="qut",
        help="qut: the toolkit's edges (--compat qut, exact); concerted: concerted's own "
        "detector with its viral-object cap (no peer to compare with)",
    )
    parser.add_argument(
        "--via",
        choices=("auto", "cli", "library"),
        default="auto",
        help="run concerted as the command or through the library (auto: the command "
        "when this concerted has it)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "coaction", help="where files go")
    parser.add_argument("--keep", action="store_true", help="keep databases and edge files")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also time the direct path's stages in one process (after both tools)",
    )
    parser.add_argument(
        "--cold-bytecode",
        action="store_true",
        help="no bytecode cache of the benchmark's own: the environment as it is",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    out: Path = args.out.resolve()
    via: str = args.via
    if via == "auto":
        via = "cli" if has_coaction_command() else "library"
    say(f"generating {args.actions:,} reposts in {out} (reused when present) ...")
    data = generate(out, args.actions, args.accounts, args.objects, args.seed)
    say(("reusing " if data.reused else f"generated in {data.seconds:.1f} s: ") + str(data.file))
    if not args.cold_bytecode:
        warm_bytecode(out / "pycache", peer=not args.no_peer and args.mode == "qut")
    work = out / f"run-n{args.actions}-s{args.seed}-w{args.window}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        say(f"concerted ({via}) ...")
        ours = run_concerted(
            via,
            data.file,
            work,
            args.window,
            args.memory_limit,
            args.temp_dir,
            args.mode,
            args.case_file,
        )
        peer = None
        if not args.no_peer and args.mode == "qut":
            say("coordination-network-toolkit ...")
            peer = run_toolkit(data.file, work, args.window)
        staged: tuple[Measured, list[Stage]] | None = None
        if args.stages:
            say("the direct path's stages ...")
            staged = run_stages(data.file, work, args.window)
        say("comparing the edges ...")
        if args.mode == "qut":
            same = compare(ours.edges_file, peer.edges_file if peer else None)
        else:
            edges = _one(duckdb.connect(), f"SELECT count(*) FROM '{ours.edges_file}'")
            same = Comparison(concerted_edges=edges, concerted_distinct=edges)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    load_after = os.getloadavg()[0]
    info = machine()
    info["coordination_network_toolkit"] = importlib.metadata.version(
        "coordination-network-toolkit"
    )
    command = " ".join(["python -m benchmarks.coaction", *(argv or sys.argv[1:])])
    ratio = peer.seconds / ours.seconds if peer else None
    if args.json:
        payload = {
            "machine": info,
            "command": command,
            "workload": asdict(data) | {"file": str(data.file), "window": args.window},
            "expected_pairs": expected_pairs(args.actions, args.objects, args.window),
            "concerted": asdict(ours),
            "toolkit": asdict(peer) if peer else None,
            "comparison": asdict(same) | {"ok": same.ok},
            "ratio": ratio,
            "stages": None
            if staged is None
            else {
                "seconds": staged[0].seconds,
                "cpu_seconds": staged[0].cpu_seconds,
                "peak_rss_mib": staged[0].peak_rss_mib,
                "stages": [asdict(s) for s in staged[1]],
            },
            "load_average_1min": {"before": load_before, "after": load_after},
            "bytecode": "environment" if args.cold_bytecode else "compiled beforehand",
        }
        print(json.dumps(payload, indent=2))
    else:
        print(
            f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; "
            f"{info['os']}"
        )
        print(
            f"Python {info['python']}, DuckDB {info['duckdb']}, concerted {info['concerted']}, "
            f"coordination-network-toolkit {info['coordination_network_toolkit']}"
        )
        modified = " (src/ modified)" if info["src_modified"] else ""
        print(f"commit {info['commit']}{modified}; concerted from {info['concerted_path']}")
        print(f"command: {command}")
        bytecode = "as the environment has it" if args.cold_bytecode else "compiled beforehand"
        print(f"bytecode: {bytecode}")
        print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
        print()
        made = "reused" if data.reused else f"generated in {data.seconds:.1f} s"
        print(
            f"workload: {data.actions:,} reposts by {data.active_accounts:,} of "
            f"{data.accounts:,} accounts (busiest {data.busiest_account:,}) on "
            f"{data.reposted_objects:,} of {data.objects:,} objects (top {data.top_object:,}); "
            f"{DAYS} days, window {args.window} s; {data.file_mib:,.0f} MiB CSV ({made})"
        )
        pairs = expected_pairs(args.actions, args.objects, args.window)
        print(f"expected action pairs within the window: {pairs:,.0f}")
        print()
        for result in (ours, peer):
            if result is None:
                continue
            print(
                f"{result.tool} ({result.via}): {result.seconds:.1f} s, "
                f"{_rate(data.actions, result.seconds)} rows/s, "
                f"CPU {result.cpu_seconds:.1f} s, peak RSS {result.peak_rss_mib:,.0f} MiB"
            )
            for s in result.stages:
                cpu = f", CPU {s.cpu_seconds:.1f} s" if s.cpu_seconds is not None else ""
                rss = f", peak RSS {s.peak_rss_mib:,.0f} MiB" if s.peak_rss_mib else ""
                print(f"  {s.name}: {s.seconds:.1f} s{cpu}{rss}")
        print()
        if same.ok is None:
            print(f"edges: concerted {same.concerted_edges:,} (toolkit not run)")
        else:
            verdict = "OK" if same.ok else "MISMATCH"
            print(
                f"edges: concerted {same.concerted_edges:,} ({same.concerted_distinct:,} "
                f"distinct), toolkit {same.toolkit_edges:,} ({same.toolkit_distinct:,} "
                f"distinct); only concerted {same.only_concerted:,}, only toolkit "
                f"{same.only_toolkit:,}: {verdict}"
            )
            for line in same.examples:
                print(f"  {line}")
        if ratio is not None:
            print(f"toolkit seconds / concerted seconds: {ratio:.1f}")
            if peer is not None and ours.cpu_seconds:
                cpu_ratio = peer.cpu_seconds / ours.cpu_seconds
                print(f"toolkit CPU seconds / concerted CPU seconds: {cpu_ratio:.1f}")
        if staged is not None:
            run, stages = staged
            print()
            print(
                f"the direct path's stages, one process: {run.seconds:.2f} s, "
                f"CPU {run.cpu_seconds:.2f} s, peak RSS {run.peak_rss_mib:,.0f} MiB"
            )
            for s in stages:
                print(f"  {s.name}: {s.seconds:.3f} s, CPU {s.cpu_seconds or 0.0:.3f} s")
    return 1 if same.ok is False else 0


if __name__ == "__main__":
    sys.exit(main())
