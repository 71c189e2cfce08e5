"""Service benchmark: ``concerted serve`` on loopback, driven by Debian's ``wrk`` and
``hey`` and by a small batch client.

Usage (from the repository root; needs ``wrk`` and ``hey`` on PATH)::

    .venv/bin/python -m benchmarks.service                    # everything, 10^6 reports
    .venv/bin/python -m benchmarks.service single max         # some of it
    .venv/bin/python -m benchmarks.service restart --reports 10000000

Each part starts its own server (``concerted serve`` in a child process, a fresh state
directory under ``--out``, the default scoring settings, a rate limit high enough never
to answer 429) and stops it after:

``single``
    One report per request at a fixed rate: ``wrk`` with a Lua script that makes every
    report new (its own ``report_id``; reporters and targets drawn from 20,000 and
    5,000), so that every request is validated, scored, learnt and committed, and a
    per-connection delay tuned to reach ``--rate`` requests/s (``wrk`` has no rate
    option; the figure printed is the rate reached). Then ``hey -q`` at the same rate,
    which can only send one fixed body: after the first, every request is a repeat
    (validated and looked up, not scored).
``max``
    ``wrk`` without delay, ``--connections`` connections: the most single reports/s.
``batch``
    NDJSON batches of ``--batch`` new reports from four client threads: acknowledged
    reports/s.
``guard``
    The guard without HTTP, in this process: ``--batch`` NDJSON batches
    (``--guard-reports`` in all, the SQLite log, the state frozen out of the collector
    as the server does) read, submitted and answered as the batch endpoint does it
    (``read_batch``, ``Guard.submit``, ``encode_batch``); then a fresh guard replaying
    that log. CPU µs a report for each.
``scorer``
    The scorer alone, in this process: 30,000 reports of the ``batch`` stream learnt
    by ``FastScorer`` (one by one) and ``ArrayScorer`` (batches of ``--batch``, and one
    report a call), twice each, alternating; CPU µs a report. Also the compiled loops'
    first call in a fresh process with an empty numba cache (compiling) and again with
    that cache filled.
``restart``
    Fill a log with ``--reports`` reports through the batch endpoint, SIGKILL the
    server, start it again and time it until ``/readyz`` is 200 (the last snapshot plus
    the log after it), then again with the snapshot deleted (the whole log replayed).
    Also the server's resident memory (``VmRSS``) before and after the fill: memory
    per million live reports (every report is within the longest window here).

The load average (1 min) is printed beside each figure: on a shared machine it says
how much else was running.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concerted.service.auth import create_token

ROOT = Path(__file__).resolve().parent.parent
BASE_TS = 1_780_000_000  # 2026-05-28: a fixed stream clock
REPORTERS = 20_000
TARGETS = 5_000

_LUA = """
local counter = 0
local step = 0
request = function()
  counter = counter + 1
  local r = (counter * 7919 + tid * 104729) % {reporters}
  local t = (counter * 31 + tid * 17) % {targets}
  local body = string.format(
    '{{"report_id":"{run}-%d-%d","platform":"mastodon","reporter_id":"u%d",' ..
    '"target_id":"t%d","ts":%d,"channel":"web"}}',
    tid, counter, r, t, {base} + math.floor(counter / 20))
  return wrk.format("POST", "/v1/reports", {{["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {token}"}}, body)
end
{delay}
"""

_SETUP = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
"""


def load() -> float:
    return os.getloadavg()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    state: Path
    port: int
    token: str
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 600.0) -> float:
        """Start the server; the seconds until ``/readyz`` answers 200."""
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/concerted"),
                "serve",
                "--state",
                str(self.state),
                "--port",
                str(self.port),
                "--config",
                str(self.state / "serve.toml"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return time.perf_counter() - began
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("the server did not get ready")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            con.request(method, path, body=body, headers=headers)
            response = con.getresponse()
            return response.status, response.read()
        finally:
            con.close()

    def rss_mib(self) -> float:
        assert self.process is not None
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", text)
        assert match is not None
        return int(match[1]) / 1024

    def peak_mib(self) -> float:
        """The server's peak resident memory (``VmHWM``)."""
        assert self.process is not None
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", text)
        assert match is not None
        return int(match[1]) / 1024

    def cpu_s(self) -> float:
        """The server's CPU seconds so far, user + system (``/proc/PID/stat``)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def server(
    out: Path, name: str, snapshot_every: int = 100_000, pair_memory: str = ""
) -> Iterator[Server]:
    state = out / name
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    token, _ = create_token(state / "tokens.json", ["admin"])
    (state / "serve.toml").write_text(
        "[service]\nrate = 1000000.0\nburst = 1000000\n"
        f"snapshot_every = {snapshot_every}\nmax_batch = 10000\n"
        f"pair_memory = {json.dumps(pair_memory)}\n"
    )
    s = Server(state, free_port(), token)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def wrk(
    s: Server, seconds: int, connections: int, delay_ms: float | None, run: str
) -> dict[str, Any]:
    delay = "" if delay_ms is None else f"delay = function() return {delay_ms} end"
    script = s.state / f"{run}.lua"
    script.write_text(
        _SETUP
        + _LUA.format(
            reporters=REPORTERS,
            targets=TARGETS,
            run=run,
            base=BASE_TS,
            token=s.token,
            delay=delay,
        )
    )
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    before = load()
    text = subprocess.run(
        [*cmd, f"http://127.0.0.1:{s.port}"], capture_output=True, text=True, check=True
    ).stdout
    return {
        "command": " ".join(cmd),
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1]),  # type: ignore[index]
        "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", text, re.M)[1]),  # type: ignore[index]
        "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", text, re.M)[1]),  # type: ignore[index]
        "non_2xx": int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0,
        "errors": "Socket errors" in text,
        "load": (before, load()),
    }


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def hey(s: Server, seconds: int, workers: int, per_worker: float) -> dict[str, Any]:
    body = s.state / "hey.json"
    body.write_text(
        json.dumps(
            {
                "report_id": "hey-1",
                "platform": "mastodon",
                "reporter_id": "u1",
                "target_id": "t1",
                "ts": BASE_TS,
            }
        )
    )
    cmd = [
        "hey",
        "-z",
        f"{seconds}s",
        "-c",
        str(workers),
        "-q",
        str(per_worker),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-H",
        f"Authorization: Bearer {s.token}",
        "-D",
        str(body),
    ]
    before = load()
    text = subprocess.run(
        [*cmd, f"http://127.0.0.1:{s.port}/v1/reports"], capture_output=True, text=True, check=True
    ).stdout
    shown = [
        c if not c.startswith("Authorization") else "Authorization: Bearer $TOKEN" for c in cmd
    ]
    return {
        "command": " ".join(shown),
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1]),  # type: ignore[index]
        "p50_ms": float(re.search(r"50%+ in ([\d.]+) secs", text)[1]) * 1e3,  # type: ignore[index]
        "p99_ms": float(re.search(r"99%+ in ([\d.]+) secs", text)[1]) * 1e3,  # type: ignore[index]
        "statuses": re.findall(r"\[(\d+)\]\s+(\d+) responses", text),
        "load": (before, load()),
    }


def ndjson(start: int, n: int, run: str) -> bytes:
    """``n`` new reports, numbered from ``start``, as NDJSON."""
    rng = random.Random(start)
    lines = [
        json.dumps(
            {
                "report_id": f"{run}-{i}",
                "platform": "mastodon",
                "reporter_id": f"u{rng.randrange(REPORTERS)}",
                "target_id": f"t{rng.randrange(TARGETS)}",
                "ts": BASE_TS + i // 1000,
                "channel": "web",
            }
        )
        for i in range(start, start + n)
    ]
    return ("\n".join(lines) + "\n").encode()


def send_batches(s: Server, total: int, size: int, run: str, threads: int = 4) -> dict[str, Any]:
    """Send ``total`` new reports in batches of ``size`` from ``threads`` clients."""
    starts = list(range(0, total, size))
    bodies: dict[int, bytes] = {}
    lock = threading.Lock()
    refused = 0

    def worker(mine: Sequence[int]) -> None:
        nonlocal refused
        con = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
        headers = {"Authorization": f"Bearer {s.token}", "Content-Type": "application/x-ndjson"}
        for start in mine:
            con.request("POST", "/v1/reports/batch", body=bodies.pop(start), headers=headers)
            response = con.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or answer["accepted"] != min(size, total - start):
                with lock:
                    refused += 1
        con.close()

    # Bodies are made before the clock starts (in chunks, to bound the client's memory).
    elapsed = 0.0
    chunk = 100 * threads
    before = load()
    for k in range(0, len(starts), chunk):
        part = starts[k : k + chunk]
        for start in part:
            bodies[start] = ndjson(start, min(size, total - start), run)
        began = time.perf_counter()
        workers = [
            threading.Thread(target=worker, args=(part[i::threads],)) for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed += time.perf_counter() - began
    return {
        "reports": total,
        "batch": size,
        "seconds": elapsed,
        "rate": total / elapsed,
        "failed_batches": refused,
        "load": (before, load()),
    }


def guard_inprocess(out: Path, total: int, size: int) -> dict[str, Any]:
    """Intake and replay CPU a report, in this process (the ``guard`` part)."""
    import asyncio
    import resource

    from concerted.scoring import ScoreSettings
    from concerted.service.app import encode_batch
    from concerted.service.intake import Guard, read_batch
    from concerted.service.sqlite import SqliteLog
    from concerted.service.state import GuardState

    state = out / "guard"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    bodies = [ndjson(start, min(size, total - start), "guard") for start in range(0, total, size)]
    figures: dict[str, Any] = {"reports": total, "batch": size}

    async def intake() -> None:
        guard = Guard(SqliteLog(state / "log.sqlite"), GuardState(ScoreSettings()), freeze_gc=True)
        await guard.start()
        before, cpu, wall = load(), time.process_time(), time.perf_counter()
        for body in bodies:
            # What the batch endpoint does with a body, but for HTTP.
            encode_batch(await guard.submit(read_batch(body)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        figures["intake"] = {
            "cpu_us_per_report": cpu / total * 1e6,
            "cpu_s": cpu,
            "wall_s": wall,
            "load": (before, load()),
        }
        await guard.stop()
        guard.log.close()

    async def replay() -> None:
        guard = Guard(SqliteLog(state / "log.sqlite"), GuardState(ScoreSettings()))
        before, cpu, wall = load(), time.process_time(), time.perf_counter()
        await guard.start()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        figures["replay"] = {
            "replayed": guard.stats.replayed,
            "cpu_us_per_report": cpu / max(guard.stats.replayed, 1) * 1e6,
            "cpu_s": cpu,
            "wall_s": wall,
            "load": (before, load()),
        }
        await guard.stop()
        guard.log.close()

    asyncio.run(intake())
    (state / "snapshot.bin").unlink(missing_ok=True)
    asyncio.run(replay())
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


_FIRST_CALL = """
import time
began = time.perf_counter()
from concerted.config import ScoreSettings
from concerted.service.arrayscore import ArrayScorer
imported = time.perf_counter()
s = ArrayScorer(ScoreSettings())
s.learn_many(s.encode([{"platform": "x", "reporter_id": "a", "target_id": "t", "ts": 0}]))
print(imported - began, time.perf_counter() - imported)
"""


def scorer_alone(total: int, size: int) -> dict[str, Any]:
    """CPU a report of each scorer on the ``batch`` stream (the ``scorer`` part)."""
    from concerted.scoring import ScoreSettings
    from concerted.service.arrayscore import ArrayScorer
    from concerted.service.fastscore import FastScorer

    rows = [
        {**r, "ts": r["ts"] * 1_000_000, "reporter_created_at": None}
        for r in map(json.loads, ndjson(0, total, "scorer").splitlines())
    ]
    warm = ArrayScorer(ScoreSettings())  # the compiled loops loaded before timing
    warm.learn_many(warm.encode(rows[:2]))
    figures: dict[str, Any] = {"reports": total, "batch": size}
    for attempt in range(2):
        for kind in ("fast", "array", "array_one"):
            before, cpu, wall = load(), time.process_time(), time.perf_counter()
            if kind == "fast":
                fast = FastScorer(ScoreSettings())
                for x in rows:
                    fast.evaluate(x)
                    fast.learn_one(x)
                pairs = fast.pairs
            else:
                array = ArrayScorer(ScoreSettings())
                step = size if kind == "array" else 1
                for i in range(0, total, step):
                    array.learn_many(array.encode(rows[i : i + step]))
                pairs = array.pairs
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            figures[f"{kind}_{attempt}"] = {
                "cpu_us_per_report": cpu / total * 1e6,
                "wall_s": wall,
                "pairs": pairs,
                "load": (before, load()),
            }
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("compile", "cached"):
            before = load()
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            ).stdout.split()
            figures[f"first_call_{name}"] = {
                "import_s": float(out[0]),
                "first_call_s": float(out[1]),
                "load": (before, load()),
            }
    return figures


def _load_snapshot(path: Path, pair_memory: str) -> dict[str, Any]:
    """``GuardState.load`` of a snapshot in this process: CPU and wall seconds."""
    from concerted.scoring import ScoreSettings
    from concerted.service.settings import duration
    from concerted.service.state import GuardState

    memory = duration(pair_memory) if pair_memory else None
    before, cpu, wall = load(), time.process_time(), time.perf_counter()
    state = GuardState.load(path, ScoreSettings(), memory)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "offset": state.offset,
        "cpu_s": cpu,
        "wall_s": wall,
        "load": (before, load()),
    }


def _metric(s: Server, name: str) -> float:
    """A metric's value from ``/metrics`` (the sum over its labels)."""
    text = s.request("GET", "/metrics")[1].decode()
    return sum(float(m[1]) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["single", "max", "batch", "restart"])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-serve")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--delay", type=float, default=None, help="wrk's delay (ms); tuned")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batch-reports", type=int, default=200_000)
    parser.add_argument("--pair-memory", default="", help="[service] pair_memory, e.g. 2h")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--guard-reports", type=int, default=60_000)
    parser.add_argument("--scorer-reports", type=int, default=30_000)
    args = parser.parse_args(argv)
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            print(f"needs {tool} on PATH (apt-get install {tool})", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    print(f"commit {commit} (plus the working tree), {os.cpu_count()} cores, load {load():.2f}")
    results: dict[str, Any] = {}
    if "single" in args.parts:
        with server(args.out, "single") as s:
            # 20 connections; each waits ``delay`` between its requests. Tune the delay
            # on short runs until the rate reached is within 3% of the goal.
            connections = 20
            delay = args.delay if args.delay is not None else 1000 * connections / args.rate
            for attempt in range(6):
                probe = wrk(s, 3, connections, delay, f"probe{attempt}")
                if abs(probe["rate"] - args.rate) <= 0.03 * args.rate or args.delay is not None:
                    break
                delay = max(0.0, delay * probe["rate"] / args.rate)
            cpu = s.cpu_s()
            results["single_wrk"] = wrk(s, args.seconds, connections, round(delay, 2), "single")
            results["single_wrk"]["delay_ms"] = round(delay, 2)
            results["single_wrk"] |= {"server_cpu_s": s.cpu_s() - cpu, "peak_mib": s.peak_mib()}
            print("single (wrk, new reports):", json.dumps(results["single_wrk"]))
            cpu = s.cpu_s()
            results["single_hey"] = hey(s, args.seconds, connections, args.rate / connections)
            results["single_hey"] |= {"server_cpu_s": s.cpu_s() - cpu, "peak_mib": s.peak_mib()}
            print("single (hey, one repeated report):", json.dumps(results["single_hey"]))
    if "max" in args.parts:
        with server(args.out, "max") as s:
            cpu = s.cpu_s()
            results["max_wrk"] = wrk(s, args.seconds, args.connections, None, "max")
            results["max_wrk"] |= {"server_cpu_s": s.cpu_s() - cpu, "peak_mib": s.peak_mib()}
            print("max (wrk, new reports):", json.dumps(results["max_wrk"]))
    if "batch" in args.parts:
        with server(args.out, "batch", pair_memory=args.pair_memory) as s:
            cpu = s.cpu_s()
            results["batch"] = send_batches(s, args.batch_reports, args.batch, "batch")
            results["batch"] |= {"server_cpu_s": s.cpu_s() - cpu, "peak_mib": s.peak_mib()}
            print("batch:", json.dumps(results["batch"]))
    if "guard" in args.parts:
        results["guard"] = guard_inprocess(args.out, args.guard_reports, args.batch)
        print("guard:", json.dumps(results["guard"]))
    if "scorer" in args.parts:
        results["scorer"] = scorer_alone(args.scorer_reports, args.batch)
        print("scorer:", json.dumps(results["scorer"]))
    if "restart" in args.parts:
        with server(args.out, "restart", pair_memory=args.pair_memory) as s:
            empty = s.rss_mib()
            # 90% of a snapshot interval past the last snapshot: a restart replays that.
            tail = 9 * 100_000 // 10
            fill = send_batches(s, args.reports + tail, args.batch, "fill")
            full = s.rss_mib()
            peak = s.peak_mib()
            fill_cpu = s.cpu_s()
            size = {
                m: _metric(s, m)
                for m in (
                    "concerted_state_targets",
                    "concerted_state_reports",
                    "concerted_state_pairs",
                )
            }
            s.kill()
            log_mib = (s.state / "log.sqlite").stat().st_size / 2**20
            snapshot_mib = (s.state / "snapshot.bin").stat().st_size / 2**20
            loading = _load_snapshot(s.state / "snapshot.bin", args.pair_memory)
            with_snapshot = s.start(timeout=3600)
            cpu_snapshot = s.cpu_s()  # the new server's CPU until ready
            replayed = _metric(s, "concerted_replayed")
            s.kill()
            (s.state / "snapshot.bin").unlink()
            before = load()
            whole_log = s.start(timeout=3600)
            cpu_whole_log = s.cpu_s()
            results["restart"] = {
                "reports": args.reports + tail,
                "replayed_after_snapshot": replayed,
                "fill": fill,
                "rss_mib_empty": empty,
                "rss_mib_full": full,
                "peak_mib_fill": peak,
                "server_cpu_s_fill": fill_cpu,
                "rss_mib_per_million": (full - empty) / ((args.reports + tail) / 1e6),
                "state": size,
                "log_mib": log_mib,
                "snapshot_mib": snapshot_mib,
                "snapshot_load": loading,
                "ready_s_snapshot": with_snapshot,
                "ready_s_whole_log": whole_log,
                "ready_cpu_s_snapshot": cpu_snapshot,
                "ready_cpu_s_whole_log": cpu_whole_log,
                "load": (before, load()),
            }
            print("restart:", json.dumps(results["restart"]))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
