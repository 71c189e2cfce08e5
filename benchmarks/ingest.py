"""Ingest benchmark: a synthetic posts file, as CSV and as Parquet, into fresh cases.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.ingest                   # 10,000,000 rows
    .venv/bin/python -m benchmarks.ingest --rows 1000000 --json

1. **Generate** (once per set of parameters; later runs reuse the files): a posts file
   in the generic format, written by DuckDB SQL straight from ``range()`` (no Python
   loops, out of core): ``post_id``, ``account_id`` (``--accounts`` distinct at most,
   default rows / 10, heavy-tailed: the busiest account posts about 2% of the rows),
   ``platform``, ``ts`` (ISO 8601 with ``Z``, over 30 days), ``text`` (short; about a
   third from a pool of shared messages), ``urls`` (0-2; ``www.``, ``utm_`` and other
   tracking parameters, trailing slashes), ``hashtags`` (0-3) and ``repost_of`` (about
   40% of rows). The Parquet file holds ``urls`` and ``hashtags`` as lists; the CSV,
   written from the Parquet file, holds them space-separated. Everything is derived
   from ``hash(row, salt)``, so the same parameters give the same files.
2. **Ingest** each file into a fresh case through the library
   (``Store(case, memory_limit=...)`` and ``ingest(...)``), one child process per run,
   so that the peak resident memory reported (the child's own ``ru_maxrss``, from
   ``wait4``) is that run's alone. The clock covers ``ingest()`` and closing the store
   (the checkpoint); the ingest's progress messages split it into stages.
3. **Report** per format: rows, actions derived, seconds, CPU seconds (the child's
   user + system time, all threads), rows/s, peak RSS, peak spill, the DuckDB memory
   limit and the 1-minute load average before and after the run (the machine may be
   shared: compare CPU seconds, not wall, between runs), with the machine, Python and
   DuckDB versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench-data"
# Bump when the generator's SQL changes, so that older files are not reused.
GENERATOR_VERSION = 1
FORMATS = ("csv", "parquet")
MIB = 2**20

# A uniform double in [0, 1) from a row number and a salt; deterministic, unlike random().
_MACROS = """
CREATE OR REPLACE TEMP MACRO bench_u(i, salt) AS
    CAST(hash(i, salt) >> 11 AS DOUBLE) / 9007199254740992.0;
CREATE OR REPLACE TEMP MACRO bench_pick(xs, i, salt) AS
    xs[1 + CAST(floor(bench_u(i, salt) * len(xs)) AS BIGINT)];
CREATE OR REPLACE TEMP MACRO bench_url(i, k) AS
    bench_pick(['https://', 'https://', 'https://', 'http://', 'https://www.', 'https://www.',
                'http://www.', 'HTTPS://WWW.'], i, 100 + k)
    || CASE WHEN bench_u(i, 110 + k) < 0.05 THEN 'm.' ELSE '' END
    || bench_pick(['news', 'daily', 'truth', 'patriot', 'media', 'info', 'report', 'blog'],
                  i, 120 + k)
    || CAST(floor(2000 * pow(bench_u(i, 130 + k), 2)) AS BIGINT)
    || bench_pick(['.com', '.com', '.org', '.net', '.co.uk', '.info'], i, 140 + k)
    || CASE WHEN bench_u(i, 150 + k) < 0.02 THEN ':443' ELSE '' END
    || '/' || bench_pick(['article', 'news', 'story', 'p', 'watch', '2024/03'], i, 160 + k)
    || '/' || CAST(floor(200000 * pow(bench_u(i, 170 + k), 3)) AS BIGINT)
    || CASE WHEN bench_u(i, 180 + k) < 0.3 THEN '/' ELSE '' END
    || CASE
        WHEN bench_u(i, 190 + k) < 0.25 THEN '?utm_source=fb&utm_medium=social&utm_campaign=c'
            || CAST(floor(100 * bench_u(i, 200 + k)) AS BIGINT)
        WHEN bench_u(i, 190 + k) < 0.35 THEN '?id=' || CAST(floor(1000 * bench_u(i, 200 + k))
            AS BIGINT) || '&utm_source=twitter'
        WHEN bench_u(i, 190 + k) < 0.40 THEN '?fbclid=IwAR' || left(md5(CAST(i AS VARCHAR)), 16)
        WHEN bench_u(i, 190 + k) < 0.45 THEN '?page=2'
        ELSE ''
    END
    || CASE WHEN bench_u(i, 210 + k) < 0.05 THEN '#comments' ELSE '' END;
CREATE OR REPLACE TEMP MACRO bench_tag(i, k) AS
    CASE WHEN bench_u(i, 300 + k) < 0.1 THEN '#' ELSE '' END
    || bench_pick(['Vote', 'vote', 'Election', 'Truth', 'News', 'Fraud', 'Rally', 'Stop'],
                  i, 310 + k)
    || CAST(floor(5000 * pow(bench_u(i, 320 + k), 3)) AS BIGINT);
CREATE OR REPLACE TEMP MACRO bench_shared(k) AS
    bench_pick(['Share this before they delete it', 'BREAKING: you will not believe',
                'Everyone needs to see this', 'The media will not tell you', 'Wake up, people',
                'Vote today, it matters'], k, 400)
    || ' ' || k
    || CASE WHEN bench_u(k, 410) < 0.3 THEN ' https://t.co/' || left(md5(CAST(k AS VARCHAR)), 10)
            ELSE '' END
    || CASE WHEN bench_u(k, 420) < 0.2 THEN ' @user' || k ELSE '' END;
"""


def _posts_sql(rows: int, accounts: int) -> str:
    """A SELECT of the posts, in the Parquet file's types (lists for urls, hashtags)."""
    return f"""
    WITH base AS (
        SELECT range AS i,
               CAST(floor({accounts} * pow(bench_u(range, 1), 3)) AS BIGINT) AS acct,
               bench_u(range, 2) < 0.4 AS is_repost,
               CASE WHEN bench_u(range, 3) < 0.5 THEN 0
                    WHEN bench_u(range, 3) < 0.85 THEN 1 ELSE 2 END AS n_urls,
               CASE WHEN bench_u(range, 4) < 0.4 THEN 0
                    WHEN bench_u(range, 4) < 0.7 THEN 1
                    WHEN bench_u(range, 4) < 0.9 THEN 2 ELSE 3 END AS n_tags,
               CAST(floor(2000 * pow(bench_u(range, 5), 2)) AS BIGINT) AS shared
        FROM range({rows})
    )
    SELECT
        CAST(1700000000000000000 + i AS VARCHAR) AS post_id,
        CAST(100000 + acct AS VARCHAR) AS account_id,
        CASE WHEN hash(acct) % 5 = 0 THEN 'facebook' ELSE 'twitter' END AS platform,
        strftime(TIMESTAMP '2024-03-01' + to_seconds(CAST(floor(bench_u(i, 6) * 2592000)
            AS BIGINT)), '%Y-%m-%dT%H:%M:%SZ') AS ts,
        CASE
            WHEN is_repost THEN 'RT @user' || (100000 + acct % 1000) || ': ' || bench_shared(shared)
            WHEN bench_u(i, 7) < 0.35 THEN
                CASE WHEN bench_u(i, 8) < 0.2 THEN upper(bench_shared(shared))
                     ELSE bench_shared(shared) END
            ELSE 'post ' || i || ' about '
                || bench_pick(['the vote', 'prices', 'the match', 'my day', 'the news',
                               'the rally', 'lunch'], i, 9)
                || CASE WHEN bench_u(i, 10) < 0.2 THEN ', see @user' || acct % 5000 ELSE '' END
        END AS text,
        CASE WHEN n_urls = 0 THEN NULL
             ELSE list_slice([bench_url(i, 1), bench_url(i, 2)], 1, n_urls) END AS urls,
        CASE WHEN n_tags = 0 THEN NULL
             ELSE list_slice([bench_tag(i, 1), bench_tag(i, 2), bench_tag(i, 3)], 1, n_tags)
        END AS hashtags,
        CASE WHEN is_repost THEN CAST(1700000000000000000
            + floor({rows} * pow(bench_u(i, 11), 4)) AS BIGINT)::VARCHAR END AS repost_of
    FROM base
    """


def _sql_str(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Generated:
    files: dict[str, Path]
    reused: bool
    seconds: float


def generate(out_dir: Path, rows: int, accounts: int, memory_limit: str) -> Generated:
    """The posts file as CSV and Parquet, generated unless files of these parameters exist."""
    stem = f"posts-r{rows}-a{accounts}-g{GENERATOR_VERSION}"
    files = {"parquet": out_dir / f"{stem}.parquet", "csv": out_dir / f"{stem}.csv"}
    if all(p.is_file() for p in files.values()):
        return Generated(files, True, 0.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    spill = out_dir / f"{stem}.gen.tmp"
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(spill)})
    try:
        con.execute(_MACROS)
        partial = files["parquet"].with_suffix(".parquet.partial")
        con.execute(f"COPY ({_posts_sql(rows, accounts)}) TO {_sql_str(partial)} (FORMAT parquet)")
        partial.replace(files["parquet"])
        partial = files["csv"].with_suffix(".csv.partial")
        con.execute(
            f"""
            COPY (
                SELECT * REPLACE (array_to_string(urls, ' ') AS urls,
                                  array_to_string(hashtags, ' ') AS hashtags)
                FROM read_parquet({_sql_str(files["parquet"])})
            ) TO {_sql_str(partial)} (FORMAT csv, HEADER)
            """
        )
        partial.replace(files["csv"])
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return Generated(files, False, time.perf_counter() - started)


# -- one ingest, in a child process ---------------------------------------------------


@dataclass
class RunResult:
    format: str
    file: str
    file_mib: float
    rows: int
    rows_added: int
    actions: int
    seconds: float
    cpu_seconds: float
    rows_per_second: float
    peak_rss_mib: float
    peak_spill_mib: float
    case_mib: float
    memory_limit: str
    threads: int
    load_before: float = 0.0
    load_after: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _dir_bytes(path: Path) -> int:
    total = 0
    try:
        for entry in os.scandir(path):
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                elif entry.is_dir(follow_symlinks=False):
                    total += _dir_bytes(Path(entry.path))
            except FileNotFoundError:
                continue
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return total


def _remove_case(case: Path) -> None:
    for extra in ("", ".wal"):
        Path(f"{case}{extra}").unlink(missing_ok=True)
    shutil.rmtree(f"{case}.tmp", ignore_errors=True)


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Ingest one file into a fresh case; runs in its own process."""
    from concerted.adapters.base import AdapterOptions
    from concerted.ingest import IngestOptions, ingest
    from concerted.store import Store

    path = Path(spec["file"])
    case = Path(spec["case"])
    _remove_case(case)
    spill = Path(f"{case}.tmp")
    peak_spill = 0
    done = threading.Event()

    def watch_spill() -> None:
        nonlocal peak_spill
        while not done.wait(0.25):
            peak_spill = max(peak_spill, _dir_bytes(spill))

    watcher = threading.Thread(target=watch_spill, daemon=True)
    watcher.start()
    marks: list[tuple[str, float]] = []

    def progress(message: str) -> None:
        marks.append((message.split(" ", 1)[0], time.perf_counter()))

    started = time.perf_counter()
    store = Store(case, memory_limit=spec["memory_limit"])
    threads_row = store.sql("SELECT current_setting('threads')").fetchone()
    marks.append(("open", started))
    report = ingest(
        store,
        [path],
        IngestOptions(format="generic", adapter=AdapterOptions(table="posts")),
        progress=progress,
    )[0]
    marks.append(("close", time.perf_counter()))
    store.close()
    finished = time.perf_counter()
    done.set()
    watcher.join()
    stages = {
        name: round(end - start, 3)
        for (name, start), (_, end) in zip(marks, [*marks[1:], ("end", finished)], strict=True)
    }
    return {
        "rows": report.rows_read,
        "rows_added": sum(report.rows_added.values()),
        "actions": report.actions_added,
        "seconds": finished - started,
        "peak_spill_mib": peak_spill / MIB,
        "case_mib": case.stat().st_size / MIB,
        "threads": int(threads_row[0]) if threads_row else 0,
        "stages": stages,
    }


def run_child(module: str, spec: dict[str, Any]) -> tuple[int, str, str, float]:
    """Run ``python -m MODULE --child SPEC``; return its exit status, what it printed
    on stdout and on stderr, and its own peak resident memory in MiB."""
    code, out, stderr, peak_rss_mib, _ = run_child_timed(module, spec)
    return code, out, stderr, peak_rss_mib


def run_child_timed(module: str, spec: dict[str, Any]) -> tuple[int, str, str, float, float]:
    """:func:`run_child`, and the child's CPU seconds (user + system, all its threads)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--child", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=REPO,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        with proc.stdout:
            out = proc.stdout.read()
        # wait4, not proc.wait(): it gives this child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        errors.seek(0)
        stderr = errors.read()
    # ru_maxrss is in kilobytes on Linux.
    cpu = usage.ru_utime + usage.ru_stime
    return os.waitstatus_to_exitcode(status), out, stderr, usage.ru_maxrss / 1024, cpu


def run_one(fmt: str, path: Path, out_dir: Path, memory_limit: str, keep: bool) -> RunResult:
    """Ingest ``path`` in a child process and measure it."""
    case = out_dir / f"bench-{fmt}.duckdb"
    spec = {"file": str(path), "case": str(case), "memory_limit": memory_limit}
    load_before = os.getloadavg()[0]
    code, out, stderr, peak_rss_mib, cpu = run_child_timed("benchmarks.ingest", spec)
    load_after = os.getloadavg()[0]
    sys.stderr.write(stderr)
    result = RunResult(
        format=fmt,
        file=str(path),
        file_mib=path.stat().st_size / MIB,
        rows=0,
        rows_added=0,
        actions=0,
        seconds=0.0,
        cpu_seconds=cpu,
        rows_per_second=0.0,
        peak_rss_mib=peak_rss_mib,
        peak_spill_mib=0.0,
        case_mib=0.0,
        memory_limit=memory_limit,
        threads=0,
        load_before=load_before,
        load_after=load_after,
    )
    lines = out.strip().splitlines()
    if code != 0 or not lines:
        last = [line for line in stderr.splitlines() if line.strip()][-1:]
        killed = f", killed by signal {-code}" if code < 0 else ""
        result.error = f"exit status {code}{killed}: " + (last[0] if last else "")
    else:
        found = json.loads(lines[-1])
        result.rows = found["rows"]
        result.rows_added = found["rows_added"]
        result.actions = found["actions"]
        result.seconds = found["seconds"]
        result.rows_per_second = found["rows"] / found["seconds"] if found["seconds"] else 0.0
        result.peak_spill_mib = found["peak_spill_mib"]
        result.case_mib = found["case_mib"]
        result.threads = found["threads"]
        result.stages = found["stages"]
    if not keep:
        _remove_case(case)
    return result


# -- the machine ------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    import concerted

    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "src_modified": bool(_git("status", "--porcelain", "--", "src")),
        "concerted_path": str(Path(concerted.__file__).parent),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "concerted": concerted.__version__,
    }


# -- the command --------------------------------------------------------------------------


def _table(results: Sequence[RunResult]) -> str:
    header = (
        "format",
        "rows",
        "actions",
        "seconds",
        "CPU s",
        "rows/s",
        "peak RSS MiB",
        "peak spill MiB",
        "memory limit",
        "file MiB",
        "case MiB",
        "load before/after",
    )
    body = [
        (
            r.format,
            f"{r.rows:,}",
            f"{r.actions:,}",
            f"{r.seconds:.1f}",
            f"{r.cpu_seconds:.1f}",
            f"{r.rows_per_second:,.0f}",
            f"{r.peak_rss_mib:,.0f}",
            f"{r.peak_spill_mib:,.0f}",
            r.memory_limit,
            f"{r.file_mib:,.0f}",
            f"{r.case_mib:,.0f}",
            f"{r.load_before:.2f} / {r.load_after:.2f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in body]
    top = "  ".join(cell.rjust(w) for cell, w in zip(header, widths, strict=True))
    return "\n".join([top, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in the posts file")
    parser.add_argument(
        "--accounts", type=int, default=None, help="account id range (default rows / 10)"
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where files go")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit per ingest")
    parser.add_argument(
        "--formats", default=",".join(FORMATS), help="comma-separated: csv, parquet"
    )
    parser.add_argument("--keep-cases", action="store_true", help="keep the case files")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0

    rows: int = args.rows
    accounts: int = args.accounts or max(1, rows // 10)
    out_dir: Path = args.out_dir.resolve()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(formats) - set(FORMATS)
    if unknown:
        parser.error(f"unknown format(s): {', '.join(sorted(unknown))}")

    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    say(f"generating {rows:,} rows in {out_dir} (reused when present) ...")
    gen = generate(out_dir, rows, accounts, args.memory_limit)
    say(
        "reusing existing files"
        if gen.reused
        else f"generated in {gen.seconds:.1f} s: " + ", ".join(str(p) for p in gen.files.values())
    )
    results = []
    for fmt in formats:
        say(f"ingesting {gen.files[fmt].name} ...")
        results.append(run_one(fmt, gen.files[fmt], out_dir, args.memory_limit, args.keep_cases))

    info = machine()
    command = " ".join(["python -m benchmarks.ingest", *(argv or sys.argv[1:])])
    if args.json:
        payload = {
            "machine": info,
            "command": command,
            "rows": rows,
            "accounts": accounts,
            "generated": {
                "reused": gen.reused,
                "seconds": round(gen.seconds, 3),
                "files": {k: str(v) for k, v in gen.files.items()},
            },
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(
            f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; "
            f"{info['os']}"
        )
        print(f"Python {info['python']}, DuckDB {info['duckdb']}, concerted {info['concerted']}")
        modified = " (src/ modified)" if info["src_modified"] else ""
        print(f"commit {info['commit']}{modified}; concerted from {info['concerted_path']}")
        print(f"command: {command}")
        print()
        print(_table(results))
        print()
        for r in results:
            if r.error:
                print(f"{r.format}: FAILED: {r.error}")
            else:
                staged = ", ".join(f"{k} {v:.1f}" for k, v in r.stages.items())
                print(f"{r.format} stages (s): {staged}; DuckDB threads {r.threads}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
