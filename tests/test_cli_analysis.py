"""`concerted analyze` and `concerted coaction` as a user runs them, and their settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from concerted import config
from concerted.errors import ConfigError
from tests.test_cli import run

# End to end: left out of `make test-fast`.
pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"


def _shares(path: Path) -> Path:
    """A CooRTweet long-form file: four accounts retweet five objects within seconds,
    thrice over; others retweet at random hours."""
    lines = ["object_id,account_id,content_id,timestamp_share"]
    n = 0
    for item in range(5):
        for k, account in enumerate(["a", "b", "c", "d"]):
            n += 1
            lines.append(f"o{item},{account},c{n},{1_600_000_000 + item * 7200 + k * 5}")
    for i in range(20):
        n += 1
        lines.append(f"o{i % 5},x{i},c{n},{1_600_000_000 + 3600 * (i + 1) + 1800}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_coaction_compat_modes_write_the_peers_columns(tmp_path: Path) -> None:
    shares = _shares(tmp_path / "shares.csv")
    qut = run("coaction", shares, "-f", "coortweet", "--window", "60", "--compat", "qut",
              "--out", tmp_path / "qut", "--case", tmp_path / "case.duckdb")  # fmt: skip
    assert qut.returncode == 0, qut.stderr
    edges = pq.read_table(tmp_path / "qut" / "edges.parquet")
    assert edges.column_names == ["user_1", "user_2", "weight"]
    # Four accounts, every ordered pair, five messages each.
    assert edges.num_rows == 12 and set(edges.column("weight").to_pylist()) == {5}

    assert not (tmp_path / "qut" / "case.duckdb").exists()
    ct = run("coaction", tmp_path / "case.duckdb", "--window", "60", "--compat",
             "coortweet", "--min-participation", "5", "--out", tmp_path / "ct")  # fmt: skip
    assert ct.returncode == 0, ct.stderr
    pairs = pq.read_table(tmp_path / "ct" / "pairs.parquet")
    assert pairs.column_names == [
        "object_id",
        "account_id",
        "account_id_y",
        "content_id",
        "content_id_y",
        "time_delta",
    ]
    assert pairs.num_rows == 5 * 6
    network = pq.read_table(tmp_path / "ct" / "edges.parquet")
    assert network.column_names[:5] == ["from", "to", "weight", "avg_time_delta", "n_content_id"]
    assert "edge_symmetry_score" in network.column_names
    run_json = json.loads((tmp_path / "ct" / "run.json").read_text())
    assert run_json["settings"]["compat"] == "coortweet"


def test_coaction_without_compat_writes_evidence(tmp_path: Path) -> None:
    shares = _shares(tmp_path / "shares.csv")
    done = run("coaction", shares, "-f", "coortweet", "--window", "60", "--kind", "repost",
               "--out", tmp_path / "own")  # fmt: skip
    assert done.returncode == 0, done.stderr
    edges = pq.read_table(tmp_path / "own" / "edges.parquet").to_pylist()
    assert len(edges) == 6 and {e["weight"] for e in edges} == {5.0}
    events = pq.read_table(tmp_path / "own" / "events.parquet")
    assert events.num_rows == 30


def test_analyze_refuses_to_overwrite_and_explains(tmp_path: Path) -> None:
    shares = _shares(tmp_path / "shares.csv")
    first = run("analyze", shares, "-f", "coortweet", "--out", tmp_path / "r", "--json")
    assert first.returncode == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["counts"]["pairs"] == 6
    again = run("analyze", shares, "-f", "coortweet", "--out", tmp_path / "r")
    assert again.returncode == 1
    assert "--overwrite" in again.stderr


def test_analyze_prints_the_networks_it_found(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    made = run("simulate", "--scenario", "cib", "--seed", "3", "--scale", "0.5", "--out", sim)
    assert made.returncode == 0, made.stderr
    done = run("analyze", sim, "--out", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    assert "network-1" in done.stdout and "beyond chance" in done.stdout


def test_a_bad_config_is_one_clear_error(tmp_path: Path) -> None:
    settings = tmp_path / "s.toml"
    settings.write_text("[coaction]\nwindw = 30\n")
    done = run("analyze", tmp_path, "--out", tmp_path / "r", "--config", settings)
    assert done.returncode == 1
    assert "s.toml" in done.stderr and "'windw'" in done.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[coaction]\nwindow = 'soon'\n", "must be float"),
        ("[coaction]\nkinds = ['likes']\n", "unknown kind 'likes'"),
        ("[significance]\nnull = 'magic'\n", "no null model"),
        ("[clusters]\nmethod = 'kmeans'\n", "leiden or components"),
        ("[report]\nx = 1\n", "no section [report]"),
        ("[coaction\n", "not valid TOML"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(path)


def test_config_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[coaction]\nwindow = 30\nkinds = ['hashtag']\nmax_object_pairs = 0\n"
        "[significance]\nfdr = 0.05\n[clusters]\nmethod = 'leiden'\n"
    )
    loaded = config.load(path)
    assert loaded.coaction.window == 30.0 and loaded.coaction.kinds == ("hashtag",)
    assert loaded.coaction.max_object_pairs is None
    assert loaded.significance.fdr == 0.05 and loaded.clusters.method == "leiden"
    assert loaded.campaigns == config.Config().campaigns


def test_every_setting_is_documented() -> None:
    pages = ("analysis.md", "reporting.md")
    docs = "\n".join((DOCS.parent / page).read_text() for page in pages)
    for part, values in config.Config().as_dict().items():
        assert f"[{part}" in docs
        for key in values:
            if key == "name":
                continue
            assert f"`{part}.{key}`" in docs, f"docs/{' and '.join(pages)} lack {part}.{key}"


def test_analyze_a_case_without_actions(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,platform,kind\na1,facebook,user\n")
    done = run("analyze", accounts, "--out", tmp_path / "r", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["campaigns"] == 0
    assert pq.read_table(tmp_path / "r" / "edges.parquet").num_rows == 0


@pytest.mark.parametrize("name", ["o'q", "with space", "ünïcødé ☂", 'dou"ble', "run[1]", "*"])
def test_analyze_writes_to_any_directory_name(tmp_path: Path, name: str) -> None:
    shares = _shares(tmp_path / "shares.csv")
    out = tmp_path / name / "result"
    done = run("analyze", shares, "-f", "coortweet", "--out", out)
    assert done.returncode == 0, done.stderr
    assert (out / "edges.parquet").is_file() and (out / "report.html").is_file()
    again = run("coaction", shares, "-f", "coortweet", "--window", "60", "--out", out / "c")
    assert again.returncode == 0, again.stderr


def test_no_network_says_what_was_tested_and_how_close_it_came(tmp_path: Path) -> None:
    lines = ["object_id,account_id,content_id,timestamp_share"]
    for i in range(30):
        lines.append(f"o{i % 10},u{i},c{i},{1_600_000_000 + i * 20}")
    path = tmp_path / "few.csv"
    path.write_text("\n".join(lines) + "\n")
    done = run("analyze", path, "-f", "coortweet", "--out", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    assert "no coordinated network found: " in done.stdout
    assert "false-discovery rate 0.01" in done.stdout


def test_a_file_analyze_cannot_place_is_explained_and_leaves_no_case(tmp_path: Path) -> None:
    (tmp_path / "things.csv").write_text("post_id,account_id\n1,a\n")
    done = run("analyze", tmp_path / "things.csv", "--out", tmp_path / "r")
    assert done.returncode == 1
    assert "name the file after its table" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r" / "case.duckdb").exists()
