"""A real uvicorn server on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from concerted.service.auth import create_token
from concerted.service.base import IntakeLog
from concerted.service.logs import open_log
from concerted.service.server import config
from concerted.service.settings import ServiceSettings
from tests import test_scoring as scoring_tests

START = datetime(2026, 3, 1, tzinfo=UTC)
#: Small windows, as tests/test_scoring.py uses, so that short streams reach every signal.
SMALL = scoring_tests.SMALL


@dataclass
class Running:
    """A started server: its address, a client per scope and a way to stop it."""

    url: str
    settings: ServiceSettings
    tokens: dict[str, str]
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, scope: str = "admin") -> httpx.Client:
        if scope not in self.clients:
            headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
            self.clients[scope] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[scope]

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client().get("/readyz").status_code == 200:
                return
            time.sleep(0.02)
        raise AssertionError("the server did not get ready")

    def stop(self) -> None:
        for c in self.clients.values():
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        self.sock.close()


def tokens_for(state: Path) -> dict[str, str]:
    """One token per scope (and ``admin``) in the state directory's token file."""
    return {
        scope: create_token(state / "tokens.json", [scope])[0]
        for scope in ("reports:write", "reports:read", "admin")
    }


def start(settings: ServiceSettings, tokens: dict[str, str]) -> Running:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config(replace(settings, port=port)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the server did not start")
        time.sleep(0.01)
    running = Running(f"http://127.0.0.1:{port}", settings, tokens, server, thread, sock)
    running.wait_ready()
    return running


Start = Callable[..., Running]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Start]:
    """``serve(state=..., **settings)`` starts a server; all are stopped at the end."""
    started: list[Running] = []
    tokens: dict[Path, dict[str, str]] = {}

    def _start(state: Path | None = None, **knobs: Any) -> Running:
        state = state or tmp_path / "state"
        state.mkdir(parents=True, exist_ok=True)
        if state not in tokens:
            tokens[state] = tokens_for(state)
        knobs.setdefault("scoring", SMALL)
        running = start(ServiceSettings(state=state, **knobs), tokens[state])
        started.append(running)
        return running

    yield _start
    for running in started:
        if running.thread.is_alive():
            running.stop()


def report(i: int, reporter: str, target: str, seconds: float, **extra: Any) -> dict[str, Any]:
    """A report in the request format."""
    return {
        "report_id": f"r{i:04d}",
        "platform": "mastodon",
        "reporter_id": reporter,
        "target_id": target,
        "ts": (START + timedelta(seconds=seconds)).isoformat(),
        **extra,
    }


def brigade_stream(n: int = 120) -> list[dict[str, Any]]:
    """The same five reporters on target after target, every few seconds, among a
    crowd reporting once each: coreport, automation, pace and bursts all occur."""
    rows = []
    for i in range(n):
        if i % 3 == 2:
            rows.append(report(i, f"crowd{i}", f"t{i % 7}", 4.0 * i, channel="web"))
        else:
            rows.append(
                report(
                    i,
                    f"b{i % 5}",
                    f"t{(i // 10) % 4}",
                    4.0 * i,
                    channel="direct_link",
                    client="bot/1.0",
                )
            )
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NatsServer:
    """A ``nats-server -js`` on a free loopback port, its store in a directory of its
    own; ``kill`` (SIGKILL) and ``start`` again on the same store and port."""

    store: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail(
                "nats-server is not installed: the JetStream log's tests need it "
                "(Debian: apt-get install nats-server; .ci/run installs it)",
                pytrace=False,
            )
        self.proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "nats-server exited at start"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("nats-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A JetStream server for this test (it fails, not skips, without nats-server)."""
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.kill()


@pytest.fixture(params=["sqlite", "nats"])
def log_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each intake log in turn, as the ``log`` setting names it: ``sqlite``, or the URL
    of a JetStream server started for the test."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server.url
    server.kill()


@pytest.fixture
def open_intake_log(log_kind: str, tmp_path: Path) -> Iterator[Callable[[], IntakeLog]]:
    """Opens the same log of kind ``log_kind`` each time it is called; all are closed."""
    opened: list[IntakeLog] = []

    def _open() -> IntakeLog:
        log = open_log(log_kind, tmp_path)
        opened.append(log)
        return log

    yield _open
    for log in opened:
        log.close()
