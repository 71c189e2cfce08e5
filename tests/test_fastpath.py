"""``concerted coaction --compat`` read straight from the file gives what the case gives."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted import analysis, fastpath
from concerted.adapters.base import AdapterOptions
from concerted.adapters.qut import COLUMNS
from concerted.cli import main
from concerted.ingest import IngestOptions, open_case
from tests.budget import examples

T0 = 1_704_067_200

# message_id, user_id, repost_id, reply_id, timestamp (as written in the file)
Row = tuple[str, str, str, str, str]


def write_qut(path: Path, rows: list[Row]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for m, u, repost, reply, ts in rows:
            writer.writerow([m, u, f"name {u}", repost, reply, "", ts, ""])
    return path


def full_path(path: Path, out: Path, **settings: Any) -> dict[str, int]:
    """The command as it was: the whole case built, then paired."""
    store, _ = open_case(
        [path], None, IngestOptions(format="qut", adapter=AdapterOptions(platform=None))
    )
    with store:
        return analysis.coaction(store, out, **settings)


def rows_of(path: Path) -> list[tuple[Any, ...]]:
    return sorted(duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall())


@st.composite
def qut_files(draw: st.DrawFn) -> list[Row]:
    n = draw(st.integers(min_value=0, max_value=40))
    accounts = draw(
        st.lists(st.sampled_from(["1", "2", "30", " 4 ", "a", "B", "\u3000z", "é"]), min_size=1)
    )
    objects = ["p1", "p2", " p3", "9", "q\u00a0"]
    rows: list[Row] = []
    for i in range(n):
        repost = draw(st.sampled_from([*objects, "", ""]))
        reply = draw(st.sampled_from([*objects, "", "", ""]))
        seconds = draw(st.integers(min_value=0, max_value=90))
        fraction = draw(st.sampled_from(["", ".5", ".25", ".000001"]))
        rows.append(
            (f"m{i}", draw(st.sampled_from(accounts)), repost, reply, f"{T0 + seconds}{fraction}")
        )
    return rows


MODES = [
    {"compat_mode": "qut", "kinds": None},
    {"compat_mode": "qut", "kinds": ("reply",)},
    {"compat_mode": "qut", "kinds": ("repost", "reply")},
    {"compat_mode": "coortweet", "kinds": ("repost",)},
    {"compat_mode": "coortweet", "kinds": ("repost", "reply")},
]


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=qut_files(),
    mode=st.sampled_from(MODES),
    window=st.sampled_from([0, 0.5, 1, 10, 30]),
    min_weight=st.integers(min_value=1, max_value=3),
    min_participation=st.integers(min_value=0, max_value=3),
)
def test_the_direct_path_writes_what_the_case_gives(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[Row],
    mode: dict[str, Any],
    window: float,
    min_weight: int,
    min_participation: int,
) -> None:
    work = tmp_path_factory.mktemp("direct")
    path = write_qut(work / "posts.csv", rows)
    settings = {
        "window": window,
        "min_weight": min_weight,
        "min_participation": min_participation,
        **mode,
    }
    direct = fastpath.coaction([path], work / "direct", **settings)
    if not rows:
        assert direct is None  # nothing to read: the full path says so
        return
    assert direct is not None
    full = full_path(path, work / "full", **settings)
    assert direct == full
    for name in full:
        assert rows_of(work / "direct" / name) == rows_of(work / "full" / name), name
    run = json.loads((work / "direct" / "run.json").read_text())
    assert run["inputs"][0]["rows_read"] == len(rows)
    assert run["inputs"][0]["rows_set_aside"] == 0


def brute_force(account: list[int], obj: list[int], t: list[int], window: int) -> dict[Any, int]:
    """The toolkit's weights by definition: messages of u matched by v."""
    weights: dict[tuple[int, int], int] = {}
    for x in range(len(t)):
        matched = {
            account[y]
            for y in range(len(t))
            if obj[y] == obj[x] and account[y] != account[x] and abs(t[y] - t[x]) <= window
        }
        for v in matched:
            weights[(account[x], v)] = weights.get((account[x], v), 0) + 1
    return weights


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(0, 40)), max_size=60),
    st.integers(0, 12),
    st.integers(1, 5),
)
def test_message_matches_sum_to_the_weights(
    rows: list[tuple[int, int, int]], window: int, parts: int
) -> None:
    account, obj, t = ([r[i] for r in rows] for i in range(3))
    codes = fastpath.message_matches(
        np.array(account, dtype=np.int64),
        np.array(obj, dtype=np.int64),
        np.array(t, dtype=np.int64),
        window,
        parts,
    )
    n = max(account, default=0) + 1
    got: dict[tuple[int, int], int] = {}
    for code in codes.tolist():
        low, high = divmod(code >> 2, n)
        for pair, w in (((low, high), (code >> 1) & 1), ((high, low), code & 1)):
            if w:
                got[pair] = got.get(pair, 0) + w
    assert got == brute_force(account, obj, t, window)


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        (("m2", "u2", "p", "", "yesterday"), "timestamp", "unparseable timestamp"),
        (("m2", "u2", "p", "", "1e9"), "timestamp", "unparseable timestamp"),
        (("m2", "u2", "p", "", "99999999999"), "timestamp", "outside"),
        (("m2", "u2", "p", "", "1700000000000"), "timestamp", "unparseable timestamp"),
        (("m2", "u2", "p", "", "-5"), "timestamp", "outside"),
        (("m2", "", "p", "", str(T0)), "user_id", "missing value"),
        (("  ", "u2", "p", "", str(T0)), "message_id", "missing value"),
        (("m2", "u2", "p", "", ""), "timestamp", "missing value"),
    ],
)
def test_a_bad_row_is_raised_with_file_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: Row, column: str, reason: str
) -> None:
    path = write_qut(tmp_path / "posts.csv", [("m1", "u1", "p", "", str(T0)), row])
    assert fastpath.coaction([path], tmp_path / "direct", window=60, compat_mode="qut") is None
    code = main(
        [
            "coaction",
            str(path),
            "--format",
            "qut",
            "--window",
            "60",
            "--compat",
            "qut",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    message = capsys.readouterr().err
    assert f"{path}, row 2, column '{column}'" in message.replace("\n", "")
    assert reason in message
    assert not (tmp_path / "out" / "edges.parquet").exists()


def test_a_line_that_does_not_split_goes_to_the_full_path(tmp_path: Path) -> None:
    path = write_qut(tmp_path / "posts.csv", [("m1", "u1", "p", "", str(T0))])
    with path.open("a") as fh:
        fh.write("m2,u2,extra,column,here,and,more,than,eight,fields\n")
    assert fastpath.coaction([path], tmp_path / "direct", window=60, compat_mode="qut") is None


def test_repeated_message_ids_take_the_full_path_with_the_same_edges(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("m1", "u1", "p", "", str(T0)),
        ("m1", "u3", "p", "", str(T0)),  # the first row of m1 is kept, as ingest keeps it
        ("m2", "u2", "p", "", str(T0 + 5)),
    ]
    path = write_qut(tmp_path / "posts.csv", rows)
    assert fastpath.coaction([path], tmp_path / "direct", window=60, compat_mode="qut") is None
    args = ["--format", "qut", "--window", "60", "--compat", "qut"]
    assert main(["coaction", str(path), *args, "--out", str(tmp_path / "cli")]) == 0
    assert rows_of(tmp_path / "cli" / "edges.parquet") == [("u1", "u2", 1), ("u2", "u1", 1)]


def test_the_direct_path_is_taken_only_where_it_applies(tmp_path: Path) -> None:
    csv_file = [tmp_path / "posts.csv"]
    plain: dict[str, Any] = {
        "case_path": None,
        "format_": "qut",
        "compat_mode": "qut",
        "kinds": None,
    }
    assert fastpath.applies(csv_file, **plain) == ("repost",)
    assert fastpath.applies(csv_file, **(plain | {"case_path": tmp_path / "c.duckdb"})) is None
    assert fastpath.applies(csv_file, **(plain | {"format_": "generic"})) is None
    assert fastpath.applies(csv_file, **(plain | {"compat_mode": None})) is None
    assert fastpath.applies(csv_file, **(plain | {"kinds": ("share_url",)})) is None
    assert fastpath.applies(csv_file * 2, **plain) is None
    assert fastpath.applies([tmp_path / "c.duckdb"], **plain) is None
    coortweet = plain | {"compat_mode": "coortweet"}
    assert fastpath.applies(csv_file, **coortweet) is None  # every kind in the data
    assert fastpath.applies(csv_file, **(coortweet | {"kinds": ("reply",)})) == ("reply",)


def test_the_command_does_not_import_the_analysis() -> None:
    code = (
        "import sys; from concerted.cli import main; "
        "heavy = [m for m in ('concerted.analysis', 'concerted.outputs', 'concerted.service', "
        "'concerted.brigades', 'concerted.engines.spark', 'pyspark', 'scipy.stats') "
        "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_blank_platform_takes_the_full_path(tmp_path: Path) -> None:
    path = write_qut(tmp_path / "posts.csv", [("m1", "u1", "p", "", str(T0))])
    args: dict[str, Any] = {"window": 60, "compat_mode": "qut"}
    assert fastpath.coaction([path], tmp_path / "blank", platform="  ", **args) is None
    assert fastpath.coaction([path], tmp_path / "named", platform=" X ", **args) == {
        "edges.parquet": 0
    }


@pytest.mark.parametrize("compat", ["qut", "coortweet"])
def test_the_command_gives_the_same_files_with_and_without_a_case(
    tmp_path: Path, compat: str
) -> None:
    rng = np.random.default_rng(7)
    rows: list[Row] = [
        (
            f"m{i}",
            f"u{rng.integers(0, 12)}",
            f"p{rng.integers(0, 5)}",
            f"r{rng.integers(0, 3)}" if rng.random() < 0.3 else "",
            str(T0 + int(rng.integers(0, 600))),
        )
        for i in range(400)
    ]
    path = write_qut(tmp_path / "posts.csv", rows)
    args = ["--format", "qut", "--window", "20", "--compat", compat, "--kind", "repost"]
    args += ["--kind", "reply"]
    assert main(["coaction", str(path), *args, "--out", str(tmp_path / "direct")]) == 0
    case = ["--case", str(tmp_path / "case.duckdb")]
    assert main(["coaction", str(path), *args, *case, "--out", str(tmp_path / "full")]) == 0
    direct = json.loads((tmp_path / "direct" / "run.json").read_text())
    assert direct["notes"]["read"].startswith("direct")
    full = json.loads((tmp_path / "full" / "run.json").read_text())
    assert direct["rows"] == full["rows"] and direct["rows"]["edges.parquet"] > 0
    for name in full["rows"]:
        assert rows_of(tmp_path / "direct" / name) == rows_of(tmp_path / "full" / name)
