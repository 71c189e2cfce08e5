"""``concerted serve``: its options, its token command, its settings file; and a
server started by the command line, killed with SIGKILL under load, loses nothing it
acknowledged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from concerted.cli import main
from concerted.errors import ConfigError
from concerted.service.auth import TokenStore, create_token
from concerted.service.logs import open_log
from concerted.service.settings import load_settings
from tests.service.conftest import report


def test_token_create_prints_a_token_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    code = main(["serve", "token", "create", "--scope", "reports:write", "--state", str(state)])
    assert code == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("cst_")
    stored = (state / "tokens.json").read_text()
    assert secret not in stored
    assert oct((state / "tokens.json").stat().st_mode & 0o777) == "0o600"
    token = TokenStore(state / "tokens.json").check(secret)
    assert token is not None and token.scopes == {"reports:write"}
    assert main(["serve", "--state", str(state), "token", "create", "--scope", "admin"]) == 0
    assert len(json.loads(stored)["tokens"]) == 1
    assert len(TokenStore(state / "tokens.json")) == 2
    assert main(["serve", "token", "create", "--scope", "root", "--state", str(state)]) == 2


def test_settings_come_from_toml_then_options(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text("[service]\nport = 9000\nrate = 5.0\n[scoring]\nwindow = 60.0\n")
    settings = load_settings(config, port=9100, host=None)
    assert (settings.port, settings.rate, settings.host) == (9100, 5.0, "127.0.0.1")
    assert settings.scoring.window == 60.0
    config.write_text("[service]\ncolour = 1\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings(config)
    config.write_text('[service]\nlog = "nats://127.0.0.1:4222"\nreanalyse_every = "10m"\n')
    settings = load_settings(config)
    assert (settings.log, settings.reanalyse_every) == ("nats://127.0.0.1:4222", 600.0)
    for bad in ('log = "kafka://x"', 'reanalyse_every = "soon"', "reanalyse_every = -1"):
        config.write_text(f"[service]\n{bad}\n")
        with pytest.raises(ConfigError):
            load_settings(config)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(state: Path, port: int, log: str = "sqlite") -> subprocess.Popen[bytes]:
    """``concerted serve`` on ``port``, its intake log named by ``--log``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "concerted",
            "serve",
            "--state",
            str(state),
            "--port",
            str(port),
            "--log",
            log,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the server did not get ready")


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_report(tmp_path: Path, log_kind: str) -> None:
    state = tmp_path / "state"
    assert main(["serve", "token", "create", "--scope", "admin", "--state", str(state)]) == 0
    acknowledged: set[str] = set()
    sent = 0
    for trial in range(5):
        port = _free_port()
        proc = _spawn(state, port, log_kind)
        token = _token(state)
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        try:
            _wait_ready(client, proc)
            stop = threading.Event()

            def load(
                worker: int,
                client: httpx.Client = client,
                stop: threading.Event = stop,
                trial: int = trial,
            ) -> None:
                nonlocal sent
                i = 0
                while not stop.is_set():
                    key = f"k{trial}.{worker}.{i}"
                    rows = [
                        {**report(j, f"u{j % 7}", f"t{j % 5}", float(j)), "report_id": f"{key}.{j}"}
                        for j in range(20)
                    ]
                    i += 1
                    sent += len(rows)
                    try:
                        r = client.post("/v1/reports/batch", json=rows)
                    except httpx.TransportError:
                        return
                    if r.status_code == 200:
                        acknowledged.update(x["report_id"] for x in r.json()["results"])

            workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
            for w in workers:
                w.start()
            time.sleep(0.5 + trial * 0.2)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            stop.set()
            for w in workers:
                w.join()
        finally:
            client.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = open_log(log_kind, state)
    try:
        stored = [e.record.report_id for e in log.read()]
    finally:
        log.close()
    lost = acknowledged - set(stored)
    print(f"sent {sent}, acknowledged {len(acknowledged)}, stored {len(stored)}, lost {len(lost)}")
    assert acknowledged and not lost
    assert len(stored) == len(set(stored))


def _token(state: Path) -> str:
    """A fresh admin token for this start (the file keeps only hashes)."""
    return create_token(state / "tokens.json", ["admin"])[0]
