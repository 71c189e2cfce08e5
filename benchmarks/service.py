"""Service benchmark: ``concerted serve`` on loopback, driven by Debian's ``wrk`` and
``hey`` and by a small batch client.

Usage (from the repository root; needs ``wrk`` and ``hey`` on PATH)::

    .venv/bin/python -m benchmarks.service                    # everything, 10^6 reports
    .venv/bin/python -m benchmarks.service single max         # some of it
    .venv/bin/python -m benchmarks.service restart --reports 10000000 --stream platform

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
    NDJSON batches of ``--batch`` new reports from ``--clients`` client threads (four
    by default), each waiting for its answer before it sends again: acknowledged
    reports/s. The batches ask for the compact answer (``?targets=once``: each
    target's view once, not in every result) unless ``--targets each``. A client reads
    each answer's ``accepted`` count from its first bytes (``--parse-answers``: parses
    it all, which costs the shared machine about 10 µs a report); after the run the
    server's log offset is printed, which must be the number of reports sent.
``guard``
    The guard without HTTP, in this process: ``--batch`` NDJSON batches
    (``--guard-reports`` in all, the SQLite log, the state frozen out of the collector
    as the server does) read, submitted and answered as the batch endpoint does it
    (``read_batch``, ``Guard.submit``, ``encode_batch``, or with ``--targets once``
    ``encode_batch_once``); then a fresh guard replaying that log. CPU µs a report for
    each.
``steps``
    The steps of the guard's writer called in turn on ``--guard-reports`` reports in
    groups of ``--batch`` (the SQLite log, each group's last report on a target shown,
    as ``targets=once`` asks), without the event loop: CPU µs a report of each step
    (the median over the groups, the first two left out), the append's in its thread.
``scorer``
    The scorer alone, in this process: 30,000 reports of the ``batch`` stream learnt
    by ``FastScorer`` (one by one) and ``ArrayScorer`` (batches of ``--batch``, and one
    report a call), twice each, alternating; CPU µs a report. Also the compiled loops'
    first call in a fresh process with an empty numba cache (compiling) and again with
    that cache filled.
``restart``
    Fill a log with ``--reports`` reports (and 90% of a snapshot interval more, which
    a restart replays) through the batch endpoint, SIGKILL the server, start it again
    and time it until ``/readyz`` is 200 (the last snapshot plus the log after it),
    then again with the snapshot set aside (``--whole-log``: the whole log replayed).
    Also the server's resident memory (``VmRSS``) before and after the fill: memory
    per million reports. ``--stream dense`` fills with the ``batch`` stream (every
    report within the longest window, every reporter meeting every other: the state
    grows with every report); ``--stream platform`` with :func:`platform_ndjson`, a
    heavy-tailed stream over 30 days of its own clock for 10^7 reports, whose live
    state is what the windows keep. ``--fill inprocess`` fills the log in this process
    (:func:`fill_inprocess`: the server's guard without HTTP) and ``--reuse`` takes
    the state a run before filled; either way, with ``--whole-log`` the server first
    replays the whole log (timed), is sent a snapshot interval of new reports (its
    snapshot, then 90% of an interval) and is killed, and the restart from that
    snapshot is timed (see :func:`restart`).

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
from collections.abc import Callable, Iterator, Sequence
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
    #: Seconds until ready at the last start.
    ready_s: float = 0.0

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
    out: Path,
    name: str,
    snapshot_every: int = 100_000,
    pair_memory: str = "",
    reuse: bool = False,
) -> Iterator[Server]:
    """A server over a fresh state directory ``out/name`` (or, with ``reuse``, the one
    left there before, with a new token)."""
    state = out / name
    if not reuse:
        shutil.rmtree(state, ignore_errors=True)
    elif not (state / "log.sqlite").exists():
        raise SystemExit(f"--reuse: no log in {state}")
    state.mkdir(parents=True, exist_ok=True)
    token, _ = create_token(state / "tokens.json", ["admin"])
    (state / "serve.toml").write_text(
        "[service]\nrate = 1000000.0\nburst = 1000000\n"
        f"snapshot_every = {snapshot_every}\nmax_batch = 10000\n"
        f"pair_memory = {json.dumps(pair_memory)}\n"
    )
    s = Server(state, free_port(), token)
    s.ready_s = s.start(timeout=3600)
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


#: The ``platform`` stream (:func:`platform_ndjson`): reporters, targets, the stream's
#: span for 10^7 reports (its rate: 3.9 reports a second of its own clock), and the
#: brigade: a pool of accounts, and how many of them report together in each batch.
PLATFORM_REPORTERS = 2_000_000
PLATFORM_TARGETS = 3_000_000
PLATFORM_SPAN_PER_REPORT = 30 * 86_400 / 10_000_000
BRIGADE_POOL = 400
BRIGADE_WAVE = 40


def platform_ndjson(start: int, n: int, run: str) -> bytes:
    """``n`` new reports of the ``platform`` stream, numbered from ``start``, as NDJSON.

    What a platform's report queue looks like, rather than :func:`ndjson`'s dense
    stream (20,000 reporters filing on 5,000 targets, 1,000 reports a second, where
    every reporter meets every other within the window): reporters drawn from
    :data:`PLATFORM_REPORTERS` and targets from :data:`PLATFORM_TARGETS`, both
    heavy-tailed (the id is ``N * u**k`` for ``u`` uniform: most reporters report once
    or twice and most targets are reported once, while the busiest targets get a few
    reports a minute), 10^7 reports over 30 days of the stream's clock, and in every
    10,000 reports one brigade wave: :data:`BRIGADE_WAVE` accounts of a pool of
    :data:`BRIGADE_POOL` reporting the same three targets within about 4 minutes through
    a direct link (about 1.2% of the reports). The same ``start`` gives the same reports.

    >>> lines = platform_ndjson(0, 10_000, "x").splitlines()
    >>> len(lines), sum(b'"channel":"direct_link"' in line for line in lines)
    (10000, 120)
    """
    import numpy as np

    rng = np.random.default_rng(start)
    numbers = np.arange(start, start + n)
    reporters = (PLATFORM_REPORTERS * rng.random(n) ** 2).astype(np.int64).astype(str)
    targets = (PLATFORM_TARGETS * rng.random(n) ** 3).astype(np.int64).astype(str)
    reporters = np.char.add("u", reporters).astype(object)
    targets = np.char.add("t", targets).astype(object)
    channels = np.full(n, "web", dtype=object)
    if n >= 1_000:
        # The wave: its accounts, its three targets, and its slots among 1,000
        # consecutive reports of the batch (about 4 minutes of the stream's clock).
        first = int(rng.integers(0, n - 1_000 + 1))
        slots = first + np.sort(rng.choice(1_000, 3 * BRIGADE_WAVE, replace=False))
        members = rng.choice(BRIGADE_POOL, BRIGADE_WAVE, replace=False)
        wave = rng.integers(0, PLATFORM_TARGETS, 3)
        reporters[slots] = [f"b{m}" for m in np.tile(members, 3)]
        targets[slots] = [f"w{t}" for t in np.repeat(wave, BRIGADE_WAVE)]
        channels[slots] = "direct_link"
    ts = BASE_TS + (numbers * PLATFORM_SPAN_PER_REPORT).astype(np.int64)
    lines = [
        f'{{"report_id":"{run}-{i}","platform":"mastodon","reporter_id":"{r}",'
        f'"target_id":"{t}","ts":{when},"channel":"{c}"}}'
        for i, r, t, when, c in zip(
            numbers.tolist(), reporters, targets, ts.tolist(), channels, strict=True
        )
    ]
    return ("\n".join(lines) + "\n").encode()


def send_batches(
    s: Server,
    total: int,
    size: int,
    run: str,
    threads: int = 4,
    make: Callable[[int, int, str], bytes] | None = None,
    targets: str = "once",
    parse: bool = False,
) -> dict[str, Any]:
    """Send ``total`` new reports in batches of ``size`` from ``threads`` clients; the
    bodies are ``make(start, n, run)`` (:func:`ndjson` by default), each batch asking
    for its answer's ``targets`` shape (``once``: the compact answer; ``each``).

    A batch counts as answered in full when its status is 200 and its answer's
    ``accepted`` is its size. With ``parse`` every answer is parsed as JSON (about 10
    µs of the client's CPU a report, which on a machine it shares with the server is
    taken from the server); otherwise ``accepted`` is read from the answer's first
    bytes, as the server writes them."""
    make = make or ndjson
    starts = list(range(0, total, size))
    bodies: dict[int, bytes] = {}
    lock = threading.Lock()
    refused = 0
    path = f"/v1/reports/batch?targets={targets}"

    def worker(mine: Sequence[int]) -> None:
        nonlocal refused
        con = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
        headers = {"Authorization": f"Bearer {s.token}", "Content-Type": "application/x-ndjson"}
        for start in mine:
            con.request("POST", path, body=bodies.pop(start), headers=headers)
            response = con.getresponse()
            data = response.read()
            if parse:
                accepted = json.loads(data)["accepted"] if response.status == 200 else -1
            else:
                head = _ACCEPTED.match(data)
                accepted = int(head[1]) if head else -1
            if response.status != 200 or accepted != min(size, total - start):
                with lock:
                    refused += 1
        con.close()

    # Bodies are made before the clock starts (in chunks, to bound the client's memory).
    elapsed = client_cpu = 0.0
    chunk = 100 * threads
    before = load()
    for k in range(0, len(starts), chunk):
        part = starts[k : k + chunk]
        for start in part:
            bodies[start] = make(start, min(size, total - start), run)
        began, cpu_began = time.perf_counter(), time.process_time()
        workers = [
            threading.Thread(target=worker, args=(part[i::threads],)) for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed += time.perf_counter() - began
        client_cpu += time.process_time() - cpu_began
    return {
        "reports": total,
        "batch": size,
        "targets": targets,
        "seconds": elapsed,
        "rate": total / elapsed,
        "failed_batches": refused,
        # The clients' own CPU while sending (user + system, every client thread): on
        # a machine shared with the server, what the load generator takes from it.
        "client_cpu_s": client_cpu,
        "load": (before, load()),
    }


#: The start of a batch's answer as the server writes it.
_ACCEPTED = re.compile(rb'\{"accepted":(\d+),"refused":\d+,')


def guard_inprocess(out: Path, total: int, size: int, targets: str = "each") -> dict[str, Any]:
    """Intake and replay CPU a report, in this process (the ``guard`` part), the
    answers in the ``targets`` shape (``each`` or ``once``)."""
    import asyncio
    import resource

    from concerted.scoring import ScoreSettings
    from concerted.service.app import encode_batch, encode_batch_once
    from concerted.service.bodies import read_batch
    from concerted.service.intake import Guard
    from concerted.service.sqlite import SqliteLog
    from concerted.service.state import GuardState

    state = out / "guard"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    bodies = [ndjson(start, min(size, total - start), "guard") for start in range(0, total, size)]
    figures: dict[str, Any] = {"reports": total, "batch": size, "targets": targets}
    once = targets == "once"

    async def intake() -> None:
        guard = Guard(SqliteLog(state / "log.sqlite"), GuardState(ScoreSettings()), freeze_gc=True)
        await guard.start()
        before, cpu, wall = load(), time.process_time(), time.perf_counter()
        for body in bodies:
            # What the batch endpoint does with a body, but for HTTP.
            answers = await guard.submit(read_batch(body), compact=once)
            (encode_batch_once if once else encode_batch)(answers)
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


def guard_steps(out: Path, total: int, size: int) -> dict[str, float]:
    """CPU µs a report of each step of the guard's writer (the ``steps`` part)."""
    import statistics

    import duckdb

    from concerted.scoring import ScoreSettings
    from concerted.service.bodies import read_batch, type_all
    from concerted.service.sqlite import SqliteLog
    from concerted.service.state import GuardState

    place = out / "steps"
    shutil.rmtree(place, ignore_errors=True)
    place.mkdir(parents=True)
    state = GuardState(ScoreSettings())
    log = SqliteLog(place / "log.sqlite")
    con = duckdb.connect()
    times: dict[str, list[float]] = {}

    def step(name: str, began: float) -> float:
        now = time.process_time()
        times.setdefault(name, []).append(now - began)
        return now

    for start in range(0, total, size):
        n = min(size, total - start)
        body = ndjson(start, n, "steps")
        t = time.process_time()
        items = read_batch(body)
        t = step("read the body", t)
        typed = [r for r in type_all(con, items) if isinstance(r, dict)]
        t = step("type", t)
        keys = [(r["platform"], r["report_id"]) for r in typed]
        t = step("keys", t)
        log.lookup(keys)
        t = step("look up the log", t)
        seen: set[tuple[str, str]] = set()
        wanted = []
        for r in reversed(typed):
            target = (r["platform"], r["target_id"])
            wanted.append(target not in seen)
            seen.add(target)
        wanted.reverse()
        t = step("which views", t)
        group = state.begin_group(typed)
        t = step("columns, ids numbered", t)
        scored = state.scorer.learn_many(group.batch)
        t = step("compiled loops", t)
        results, _ = state.end_group(group, scored, wanted)
        t = step("results, views", t)
        began = time.thread_time()
        log.append_new(typed, results.encoded)
        times.setdefault("append (its thread)", []).append(time.thread_time() - began)
    log.close()
    kept = {k: v[2:] or v for k, v in times.items()}
    return {k: statistics.median(v) / size * 1e6 for k, v in kept.items()}


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


def fill_inprocess(
    state: Path,
    total: int,
    size: int,
    make: Callable[[int, int, str], bytes],
    snapshot_every: int,
    pair_memory: str,
) -> dict[str, Any]:
    """Fill the log in ``state`` in this process, as the server would without HTTP:
    the same :class:`~concerted.service.intake.Guard` over the SQLite log, taking
    snapshots every ``snapshot_every`` reports, fed ``total`` reports in batches of
    ``size``; then left as a SIGKILL leaves it (no last snapshot)."""
    import asyncio
    import resource

    from concerted.scoring import ScoreSettings
    from concerted.service.bodies import read_batch
    from concerted.service.intake import Guard
    from concerted.service.settings import duration
    from concerted.service.sqlite import SqliteLog
    from concerted.service.state import GuardState

    memory = duration(pair_memory) if pair_memory else None
    figures: dict[str, Any] = {"reports": total, "batch": size, "how": "in process"}

    async def fill() -> None:
        guard = Guard(
            SqliteLog(state / "log.sqlite"),
            GuardState(ScoreSettings(), memory),
            snapshot=state / "snapshot.bin",
            snapshot_every=snapshot_every,
            freeze_gc=True,
        )
        await guard.start()
        before, cpu, wall = load(), time.process_time(), time.perf_counter()
        for start in range(0, total, size):
            answers = await guard.submit(read_batch(make(start, min(size, total - start), "fill")))
            if len(answers) != min(size, total - start):
                raise RuntimeError("a batch was not answered in full")
        figures.update(
            {
                "cpu_s": time.process_time() - cpu,
                "seconds": time.perf_counter() - wall,
                "load": (before, load()),
                "state": {
                    "targets": len(guard.state.targets),
                    "pairs": guard.state.scorer.pairs,
                },
            }
        )
        # No ``guard.stop()``: it would take a last snapshot, which a SIGKILL does not.
        guard.log.close()

    asyncio.run(fill())
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def restart(args: argparse.Namespace) -> dict[str, Any]:
    """The ``restart`` part.

    A fresh state (``--fill http``, the default): fill its log through the batch
    endpoint, SIGKILL the server, time a restart from the last snapshot, then
    (``--whole-log``) one with the snapshot set aside. A state filled before
    (``--reuse``, or ``--fill inprocess``): with ``--whole-log``, start the server with
    no snapshot (the whole log replayed, timed), send it a snapshot interval of new
    reports (the first group after that replay takes a snapshot, and 90% of an
    interval follows it), SIGKILL it and time a restart from that snapshot; without,
    time a restart from the snapshot the state has. Every snapshot a restart loads is
    then one the measured build wrote."""
    make = platform_ndjson if args.stream == "platform" else ndjson
    # 90% of a snapshot interval past the last snapshot: a restart replays that.
    every = args.snapshot_every
    tail = 9 * every // 10
    figures: dict[str, Any] = {"stream": args.stream, "snapshot_every": every}
    state = args.out / "restart"
    reuse = args.reuse
    if args.fill == "inprocess" and not reuse:
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        figures["fill"] = fill_inprocess(
            state, args.reports + tail, args.batch, make, every, args.pair_memory
        )
        reuse = True
    replay_first = reuse and args.whole_log
    if replay_first:
        (state / "snapshot.bin").unlink(missing_ok=True)
        before = load()
    with server(
        args.out, "restart", snapshot_every=every, pair_memory=args.pair_memory, reuse=reuse
    ) as s:
        if replay_first:
            figures["ready_s_whole_log"] = s.ready_s
            figures["ready_cpu_s_whole_log"] = s.cpu_s()
            figures["replayed_whole_log"] = _metric(s, "concerted_replayed")
            figures["rss_mib_whole_log"] = s.rss_mib()
            figures["load_whole_log"] = (before, load())
            offset = int(_metric(s, "concerted_log_offset"))

            def more(start: int, n: int, run: str) -> bytes:
                return make(offset + start, n, run)

            figures["after_whole_log"] = send_batches(
                s, tail + args.batch, args.batch, "tail", make=more
            )
        elif not reuse:
            empty = s.rss_mib()
            fill = send_batches(s, args.reports + tail, args.batch, "fill", make=make)
            full = s.rss_mib()
            figures |= {
                "fill": fill,
                "rss_mib_empty": empty,
                "rss_mib_full": full,
                "peak_mib_fill": s.peak_mib(),
                "server_cpu_s_fill": s.cpu_s(),
                "rss_mib_per_million": (full - empty) / ((args.reports + tail) / 1e6),
            }
        figures["state"] = {
            m: _metric(s, m)
            for m in (
                "concerted_state_targets",
                "concerted_state_reports",
                "concerted_state_pairs",
            )
        }
        figures["reports"] = _metric(s, "concerted_log_offset")
        figures["rss_mib_before_kill"] = s.rss_mib()
        s.kill()
        snapshot = state / "snapshot.bin"
        figures["log_mib"] = (state / "log.sqlite").stat().st_size / 2**20
        figures["snapshot_mib"] = snapshot.stat().st_size / 2**20
        figures["snapshot_load"] = _load_snapshot(snapshot, args.pair_memory)
        before = load()
        figures["ready_s_snapshot"] = s.start(timeout=3600)
        figures["ready_cpu_s_snapshot"] = s.cpu_s()  # the new server's CPU until ready
        figures["rss_mib_ready_snapshot"] = s.rss_mib()
        figures["replayed_after_snapshot"] = _metric(s, "concerted_replayed")
        figures["load_snapshot"] = (before, load())
        s.kill()
        if args.whole_log and not replay_first:
            # The snapshot set aside (and put back), the whole log replayed.
            aside = snapshot.with_suffix(".aside")
            snapshot.rename(aside)
            try:
                before = load()
                figures["ready_s_whole_log"] = s.start(timeout=3600)
                figures["ready_cpu_s_whole_log"] = s.cpu_s()
                figures["load_whole_log"] = (before, load())
                s.kill()
            finally:
                snapshot.unlink(missing_ok=True)
                aside.rename(snapshot)
        s.process = None
    return figures


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
    parser.add_argument(
        "--targets", choices=("each", "once"), default=None, help="batch answers' shape"
    )
    parser.add_argument("--pair-memory", default="", help="[service] pair_memory, e.g. 2h")
    parser.add_argument("--clients", type=int, default=4, help="batch: client threads")
    parser.add_argument(
        "--parse-answers",
        action="store_true",
        help="batch: parse every answer as JSON (by default only its accepted count)",
    )
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument(
        "--stream",
        choices=("dense", "platform"),
        default="dense",
        help="restart: the reports filled (ndjson or platform_ndjson)",
    )
    parser.add_argument(
        "--snapshot-every", type=int, default=100_000, help="restart: [service] snapshot_every"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="restart: the state filled before, not refilled"
    )
    parser.add_argument(
        "--fill",
        choices=("http", "inprocess"),
        default="http",
        help="restart: fill through the batch endpoint or in this process (fill_inprocess)",
    )
    parser.add_argument(
        "--whole-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restart: also time a restart from the log alone",
    )
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
            results["batch"] = send_batches(
                s,
                args.batch_reports,
                args.batch,
                "batch",
                threads=args.clients,
                targets=args.targets or "once",
                parse=args.parse_answers,
            )
            results["batch"] |= {
                "server_cpu_s": s.cpu_s() - cpu,
                "peak_mib": s.peak_mib(),
                # Every report acknowledged is durable: the state learnt up to the log's
                # offset of the last one.
                "log_offset": _metric(s, "concerted_log_offset"),
            }
            print("batch:", json.dumps(results["batch"]))
    if "guard" in args.parts:
        results["guard"] = guard_inprocess(
            args.out, args.guard_reports, args.batch, args.targets or "each"
        )
        print("guard:", json.dumps(results["guard"]))
    if "steps" in args.parts:
        results["steps"] = guard_steps(args.out, args.guard_reports, args.batch)
        print("steps (CPU µs a report):", json.dumps(results["steps"]))
    if "scorer" in args.parts:
        results["scorer"] = scorer_alone(args.scorer_reports, args.batch)
        print("scorer:", json.dumps(results["scorer"]))
    if "restart" in args.parts:
        results["restart"] = restart(args)
        print("restart:", json.dumps(results["restart"]))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
