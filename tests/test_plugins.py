"""A third-party detector plugs in as a built-in one does: through the entry point,
enabled from TOML, weighed, and refused from the wrong family with a clear error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_cli import run

# End to end: left out of `make test-fast`.
pytestmark = pytest.mark.e2e

_TOY = '''
from dataclasses import dataclass
from typing import ClassVar

from concerted.detectors.base import Evidence, empty


@dataclass(frozen=True, kw_only=True)
class EveryReporter:
    """Scores every account that filed a report 1.0: a signal that always fires."""

    name: ClassVar[str] = "toy_reporters"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.9
    reads: ClassVar[tuple[str, ...]] = ()

    def detect(self, con, actions):
        signals = con.sql(
            f"""SELECT 'toy_reporters' AS detector, 'toy' AS layer, 'account' AS entity,
                       platform, actor_id AS id, 1.0::DOUBLE AS score, NULL::DOUBLE AS value,
                       NULL::VARCHAR AS related_id, min(ts) AS first_ts, max(ts) AS last_ts,
                       'filed a report' AS detail
                FROM {actions} WHERE kind = 'report' GROUP BY ALL"""
        )
        return Evidence(edges=empty(con, "edges"), events=empty(con, "events"), signals=signals)
'''


def _install(root: Path) -> dict[str, str]:
    """The toy detector as an installed distribution on a path of its own."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "toy_detector.py").write_text(_TOY)
    info = root / "toy_detector-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-detector\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[concerted.detectors]\ntoy_reporters = toy_detector:EveryReporter\n"
    )
    return {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}


def _concerted(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(*args, env=env, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("plugin")
    env = _install(root / "site")
    sim = root / "sim"
    made = _concerted(
        env, "simulate", "--scenario", "brigade", "--seed", "1", "--scale", "0.3", "--out", sim
    )
    assert made.returncode == 0, made.stderr
    return root, env


def _brigade_scores(out: Path) -> list[float]:
    campaigns = pq.read_table(out / "campaigns.parquet").to_pylist()
    return sorted(c["score"] for c in campaigns if c["kind"] == "brigade")


def test_a_plugin_report_detector_is_listed(world: tuple[Path, dict[str, str]]) -> None:
    _, env = world
    listed = _concerted(env, "detectors")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if "toy_reporters" in x)
    assert "report" in line and "0.9" in line and "plugin" in line


def test_a_plugin_report_detector_enabled_from_toml_raises_the_score(
    world: tuple[Path, dict[str, str]],
) -> None:
    root, env = world
    plain = _concerted(env, "analyze", root / "sim", "--out", root / "plain")
    assert plain.returncode == 0, plain.stderr
    from concerted.brigades import DETECTORS

    settings = root / "toy.toml"
    names = ", ".join(f'"{n}"' for n in (*DETECTORS, "toy_reporters"))
    settings.write_text(f"[brigades]\ndetectors = [{names}]\n")
    toy = _concerted(env, "analyze", root / "sim", "--out", root / "toy", "--config", settings)
    assert toy.returncode == 0, toy.stderr
    before, after = _brigade_scores(root / "plain"), _brigade_scores(root / "toy")
    assert before and len(after) == len(before)
    assert all(a > b for a, b in zip(after, before, strict=True))
    run = json.loads((root / "toy" / "run.json").read_text())
    assert run["settings"]["brigades"]["signal_weights"]["toy_reporters"] == 0.9
    signals = pq.read_table(root / "toy" / "campaigns.parquet").to_pylist()
    assert any("toy_reporters" in json.loads(c["summary"]).get("signals", {}) for c in signals)


def test_a_plugin_report_detector_is_refused_as_a_network_layer(
    world: tuple[Path, dict[str, str]],
) -> None:
    root, env = world
    settings = root / "wrong.toml"
    settings.write_text('[layers]\ncorroborating = ["toy_reporters"]\n')
    done = _concerted(env, "analyze", root / "sim", "--out", root / "wrong", "--config", settings)
    assert done.returncode == 1, done.stderr
    assert "toy_reporters" in done.stderr and "is a report detector" in done.stderr
    assert "Traceback" not in done.stderr
