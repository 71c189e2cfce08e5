"""The command line, run as a user runs it: a separate process, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from concerted.cli import cli
from tests.conftest import FIXTURES

README = Path(__file__).resolve().parents[1] / "README.md"


def run(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "concerted", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def test_ingest_then_info(tmp_path: Path) -> None:
    case = tmp_path / "case.duckdb"
    done = run(
        "ingest",
        case,
        FIXTURES / "generic" / "posts.csv",
        "--format",
        "generic",
        "--table",
        "posts",
        "--map",
        "account_id=author",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)
    assert report["rows_added"] == {"posts": 4}
    again = run(
        "ingest",
        case,
        FIXTURES / "generic" / "posts.csv",
        "-f",
        "generic",
        "--table",
        "posts",
        "--map",
        "account_id=author",
    )
    assert again.returncode == 0
    assert "already in the case" in again.stdout
    info = run("info", case, "--json")
    assert info.returncode == 0
    data = json.loads(info.stdout)
    assert data["tables"]["posts"]["rows"] == 4
    assert data["tables"]["actions"]["by_kind"]["repost"] == 1
    assert data["tables"]["posts"]["span"] == {
        "first": "2021-03-01T05:02:00Z",
        "last": "2021-03-01T10:01:00Z",
    }
    assert [s["rows_read"] for s in data["sources"]] == [4]
    text = run("info", case)
    assert text.returncode == 0 and "posts" in text.stdout and "sources" in text.stdout


def test_bad_input_exits_1_with_one_message(tmp_path: Path) -> None:
    done = run(
        "ingest",
        tmp_path / "c.duckdb",
        FIXTURES / "generic" / "posts_broken.csv",
        "-f",
        "generic",
        "--table",
        "posts",
    )
    assert done.returncode == 1
    assert "posts_broken.csv" in done.stderr and "row 2" in done.stderr
    assert "Traceback" not in done.stderr
    kept = run(
        "ingest",
        tmp_path / "c.duckdb",
        FIXTURES / "generic" / "posts_broken.csv",
        "-f",
        "generic",
        "--table",
        "posts",
        "--on-error",
        "quarantine",
    )
    assert kept.returncode == 0
    assert "3 rows set aside" in kept.stdout
    info = json.loads(run("info", tmp_path / "c.duckdb", "--json").stdout)
    assert sum(q["rows"] for q in info["quarantine"]) == 3


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("ingest", tmp_path / "c.duckdb").returncode == 2
    assert (
        run("ingest", tmp_path / "c.duckdb", tmp_path / "missing.csv", "-f", "generic").returncode
        == 2
    )
    done = run(
        "ingest",
        tmp_path / "c.duckdb",
        FIXTURES / "generic" / "posts.csv",
        "-f",
        "generic",
        "--map",
        "oops",
    )
    assert done.returncode == 2 and "KEY=VALUE" in done.stderr
    assert run("no-such-command").returncode == 2


def test_config_errors_exit_1(tmp_path: Path) -> None:
    # An unknown format is a command-line error, as the README says: exit 2, and the
    # formats named; nothing is written.
    done = run("ingest", tmp_path / "c.duckdb", FIXTURES / "generic" / "posts.csv", "-f", "tiktok")
    assert done.returncode == 2 and "no format 'tiktok'; known: atproto, coortweet" in done.stderr
    assert not (tmp_path / "c.duckdb").exists()
    done = run("analyze", FIXTURES / "generic" / "posts.csv", "-f", "tiktok", "--out", tmp_path)
    assert done.returncode == 2 and "no format 'tiktok'" in done.stderr
    key = tmp_path / "k"
    key.write_text("short")
    done = run(
        "ingest",
        tmp_path / "c.duckdb",
        FIXTURES / "generic" / "roles.json",
        "-f",
        "generic",
        "--table",
        "roles",
        "--pseudonymise-key-file",
        key,
    )
    assert done.returncode == 1 and "at least 16" in done.stderr


def _commands() -> list[tuple[str, click.Command]]:
    assert isinstance(cli, click.Group)
    return sorted(cli.commands.items())


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_command_has_help(name: str, command: click.Command) -> None:
    done = run(name, "--help")
    assert done.returncode == 0
    assert "Usage:" in done.stdout
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_option_is_documented_in_the_readme(name: str, command: click.Command) -> None:
    readme = README.read_text()
    assert f"concerted {name}" in readme
    for param in command.params:
        if isinstance(param, click.Option):
            assert any(opt in readme for opt in param.opts), f"README lacks {param.opts}"


def test_formats_lists_every_adapter() -> None:
    done = run("formats")
    assert done.returncode == 0
    for name in ("generic", "coortweet", "qut", "twitter-io", "crowdtangle", "reports"):
        assert name in done.stdout


def test_files_before_a_bad_one_stay_ingested(tmp_path: Path) -> None:
    case = tmp_path / "c.duckdb"
    done = run(
        "ingest",
        case,
        FIXTURES / "generic" / "posts.csv",
        FIXTURES / "generic" / "posts_broken.csv",
        "-f",
        "generic",
        "--table",
        "posts",
        "--map",
        "account_id=author",
    )
    assert done.returncode == 1
    assert "posts.csv: 4 rows read" in done.stdout
    assert "posts_broken.csv" in done.stderr
    info = json.loads(run("info", case, "--json").stdout)
    assert info["tables"]["posts"]["rows"] == 4
