"""Durability: SIGKILL ``concerted serve`` at random moments under load, many times.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.durability                 # 20 kills
    .venv/bin/python -m benchmarks.durability --kills 5 --seed 2
    .venv/bin/python -m benchmarks.durability --log nats://127.0.0.1:4222   # JetStream

Each round starts ``concerted serve`` (a child process) on the same state directory,
waits until it is ready, checks it (below), puts it under load (four clients sending
batches of 20 new reports, two sending single reports, none retrying) and kills it with
SIGKILL after a random 0.2–2 s. A snapshot is taken every 500 reports, so restarts load
a snapshot and replay the log after it.

**Checks**, after every restart:

* every report that was acknowledged (a 200 answer) is in the log, and no key is in it
  twice;
* the state after replay is that of a server that never stopped: an uninterrupted
  scorer (:class:`concerted.service.state.GuardState` in this process) learns the log's
  reports in log order, and (a) every stored result equals the one it computes, (b) a
  probe report sent to the restarted server is answered exactly as it answers it
  (score, recommendation, signals, features, the target's state).

Prints, per round and in all: reports sent, acknowledged, stored, lost (acknowledged
but not stored: must be 0) and the probe's verdict; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concerted.scoring import ScoreSettings
from concerted.service.auth import create_token
from concerted.service.logs import open_log
from concerted.service.state import GuardState

ROOT = Path(__file__).resolve().parent.parent
#: Short windows so that a few thousand reports reach every signal.
SCORING = {
    "window": 120.0,
    "recent": 8,
    "min_shared": 2,
    "gaps": 2,
    "fast_gap": 5.0,
    "pace_window": 60.0,
    "burst_window": 60.0,
    "baseline_window": 600.0,
    "hold": 90.0,
    "decision_lag": 30.0,
}
_KEEP = ("score", "recommendation", "signals", "features", "target")
START_TS = 1_780_000_000


@dataclass
class Totals:
    sent: int = 0
    acknowledged: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: int = 0

    def tick(self) -> int:
        with self.lock:
            self.clock += 1
            return self.clock


def _report(key: str, n: int, totals: Totals) -> dict[str, Any]:
    # A brigade of 12 on 6 targets among a crowd of 400 on 50, time moving on.
    brigade = n % 3 != 0
    return {
        "report_id": key,
        "platform": "mastodon",
        "reporter_id": f"b{n % 12}" if brigade else f"c{(n * 7919) % 400}",
        "target_id": f"t{n % 6}" if brigade else f"p{(n * 31) % 50}",
        "ts": START_TS + totals.tick() // 4,
        "channel": "direct_link" if brigade else "web",
    }


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    def post(self, path: str, value: Any, timeout: float = 30) -> tuple[int, Any]:
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            con.request(
                "POST",
                path,
                body=json.dumps(value),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            response = con.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            con.close()

    def ready(self) -> bool:
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            con.request("GET", "/readyz", headers={"Authorization": f"Bearer {self.token}"})
            return con.getresponse().status == 200
        except OSError:
            return False
        finally:
            con.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(state: Path) -> tuple[subprocess.Popen[bytes], Client]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "concerted",
            "serve",
            "--state",
            str(state),
            "--port",
            str(port),
            "--config",
            str(state / "serve.toml"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = Client(port, (state / "token").read_text())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        if client.ready():
            return proc, client
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not get ready")


def _load(client: Client, totals: Totals, stop: threading.Event, name: str, batch: bool) -> None:
    i = 0
    while not stop.is_set():
        rows = [
            _report(f"{name}.{i}.{j}", i * 20 + j + zlib.crc32(name.encode()) % 1000, totals)
            for j in range(20 if batch else 1)
        ]
        i += 1
        with totals.lock:
            totals.sent += len(rows)
        try:
            if batch:
                status, body = client.post("/v1/reports/batch", rows)
                ok = [r["report_id"] for r in body["results"] if r["ok"]] if status == 200 else []
            else:
                status, body = client.post("/v1/reports", rows[0])
                ok = [body["report_id"]] if status == 200 else []
        except (OSError, http.client.HTTPException, ValueError):
            return  # the server is gone; nothing is retried
        with totals.lock:
            totals.acknowledged.update(ok)


def _catch_up(reference: GuardState, state: Path, where: str) -> tuple[list[str], int]:
    """Feed the reference the log after its offset; the keys stored and how many stored
    results differ from the reference's."""
    log = open_log(where, state)
    differ = 0
    try:
        for entry in log.read(reference.offset):
            mine = reference.score_and_learn(entry.record.report)
            reference.offset = entry.offset
            stored = entry.record.result
            if any(mine[k] != stored[k] for k in ("score", "recommendation", "signals")):
                differ += 1
        keys = [e.record.report_id for e in log.read()]
    finally:
        log.close()
    return keys, differ


def run(
    kills: int = 20,
    seed: int = 1,
    out: Path | None = None,
    quiet: bool = False,
    log: str = "sqlite",
) -> int:
    """Run ``kills`` rounds on intake log ``log`` (``sqlite``, or a ``nats://`` URL of a
    JetStream server, whose streams must be new); returns the number of failed checks
    (0: all passed)."""
    rng = random.Random(seed)
    state = (out or Path(tempfile.mkdtemp(prefix="concerted-durability-"))) / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    (state / "token").write_text(create_token(state / "tokens.json", ["admin"])[0])
    scoring = "\n".join(f"{k} = {v}" for k, v in SCORING.items())
    (state / "serve.toml").write_text(
        f"[service]\nrate = 1000000.0\nburst = 1000000\nsnapshot_every = 500\n"
        f"log = {json.dumps(log)}\n"
        f"[scoring]\n{scoring}\n"
    )
    reference = GuardState(ScoreSettings(**SCORING))  # type: ignore[arg-type]
    totals = Totals()
    failures = 0
    say = (lambda *a: None) if quiet else print
    say("round  sent  acknowledged  stored  lost  duplicates  results  probe  ready_s")
    for round_ in range(kills + 1):
        began = time.perf_counter()
        proc, client = _start(state)
        ready_s = time.perf_counter() - began
        keys, differ = _catch_up(reference, state, log)
        lost = totals.acknowledged - set(keys)
        duplicates = len(keys) - len(set(keys))
        probe = _report(f"probe.{round_}", 1, totals)  # a brigade member
        status, answer = client.post("/v1/reports", probe)
        expected = reference.score_and_learn(
            {**probe, "ts": _iso(probe["ts"]), "target_kind": "account"}
        )
        same = status == 200 and all(answer[k] == expected[k] for k in _KEEP)
        totals.acknowledged.add(probe["report_id"])
        # The probe is in the log now; the reference learnt it too.
        keys, _ = _catch_up_offset(reference, state, client, log)
        ok = not lost and not duplicates and not differ and same
        failures += not ok
        say(
            f"{round_:>5}  {totals.sent:>4}  {len(totals.acknowledged):>12}  {len(keys):>6}  "
            f"{len(lost):>4}  {duplicates:>10}  {'same' if not differ else differ:>7}  "
            f"{'same' if same else 'DIFFERS':>5}  {ready_s:7.2f}"
        )
        if round_ == kills:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            break
        stop = threading.Event()
        workers = [
            threading.Thread(target=_load, args=(client, totals, stop, f"r{round_}w{w}", w < 4))
            for w in range(6)
        ]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.2, 2.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for w in workers:
            w.join()
    keys, _ = _catch_up(reference, state, log)
    lost = totals.acknowledged - set(keys)
    say(
        f"in all: {kills} kills, sent {totals.sent}, acknowledged {len(totals.acknowledged)}, "
        f"stored {len(keys)}, lost {len(lost)}, failed checks {failures}"
    )
    return failures + len(lost)


def _catch_up_offset(
    reference: GuardState, state: Path, client: Client, where: str
) -> tuple[list[str], int]:
    """The reference learnt the probe as the server did; move its offset past it."""
    log = open_log(where, state)
    try:
        reference.offset = log.last_offset
        return [e.record.report_id for e in log.read()], 0
    finally:
        log.close()


def _iso(ts: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--log", default="sqlite", help="sqlite, or a nats:// URL")
    args = parser.parse_args(argv)
    return 1 if run(args.kills, args.seed, args.out, log=args.log) else 0


if __name__ == "__main__":
    sys.exit(main())
