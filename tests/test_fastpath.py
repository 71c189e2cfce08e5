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
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted import analysis, fastpath, heap
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
    # And summed by pair as the direct path sums them (codes in sorted runs, merged).
    low, high, ups, downs = fastpath._summed(codes.copy(), n)
    summed = {(int(lo), int(hi)): int(w) for lo, hi, w in zip(low, high, ups, strict=True) if w}
    summed |= {(int(hi), int(lo)): int(w) for lo, hi, w in zip(low, high, downs, strict=True) if w}
    assert summed == got


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 30)), max_size=60),
    st.integers(0, 10),
    st.integers(1, 4),
    st.integers(1, 9),
    st.integers(1, 3),
    st.integers(1, 12),
    st.integers(1, 20),
)
def test_edges_summed_and_written_in_pieces_are_the_weights(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int, int]],
    window: int,
    parts: int,
    piece: int,
    min_weight: int,
    row_group: int,
    chunk: int,
) -> None:
    # Chunks and pieces of a few pairs each: the rows are counted in many ranges, the
    # runs cut into many ranges of pairs, each summed in a thread, and written in row
    # groups of a few edges, as a large file's are.
    account, obj, t = ([r[i] for r in rows] for i in range(3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastpath, "_CHUNK", chunk)
        runs = fastpath._matched_runs(
            np.array(account, dtype=np.int64),
            np.array(obj, dtype=np.int64),
            np.array(t, dtype=np.int64),
            window,
            parts,
        )
    assert all(np.all(run[1:] >= run[:-1]) for run in runs)
    names = pa.array([f"u{i}" for i in range(max(account, default=0) + 1)])
    out = tmp_path_factory.mktemp("pieces")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastpath, "_PIECE", piece)
        patch.setattr(fastpath, "_ROW_GROUP", row_group)
        written = fastpath._write_edges(out, names, runs, min_weight, parts)
    expected = sorted(
        (f"u{u}", f"u{v}", w)
        for (u, v), w in brute_force(account, obj, t, window).items()
        if w >= min_weight
    )
    assert rows_of(out / "edges.parquet") == expected
    assert written == len(expected)
    groups = pq.read_metadata(out / "edges.parquet").num_row_groups
    assert groups <= max(1, -(-written // row_group))


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


@st.composite
def plain_qut_files(draw: st.DrawFn) -> list[Row]:
    """Files the Arrow reader takes: ids with no edge to trim, integer epoch seconds."""
    n = draw(st.integers(min_value=1, max_value=40))
    accounts = draw(st.lists(st.sampled_from(["1", "2", "30", "a", "B", "x y"]), min_size=1))
    objects = ["p1", "p2", "9", "q-3"]
    ids = draw(st.permutations(range(n)))  # in any order, not only the file's
    return [
        (
            f"m{ids[i]}",
            draw(st.sampled_from(accounts)),
            draw(st.sampled_from([*objects, ""])),
            draw(st.sampled_from([*objects, "", ""])),
            str(T0 + draw(st.integers(min_value=0, max_value=90))),
        )
        for i in range(n)
    ]


def reader_of(out: Path) -> str:
    return str(json.loads((out / "run.json").read_text())["notes"]["reader"])


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=plain_qut_files(),
    mode=st.sampled_from(MODES[:3]),
    window=st.sampled_from([0, 1, 10, 30]),
    min_weight=st.integers(min_value=1, max_value=3),
    lf=st.booleans(),
)
def test_the_arrow_reader_writes_what_the_case_gives(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[Row],
    mode: dict[str, Any],
    window: float,
    min_weight: int,
    lf: bool,
) -> None:
    work = tmp_path_factory.mktemp("arrow")
    path = write_qut(work / "posts.csv", rows)  # lines end in CR LF, as csv writes them
    if lf:
        path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))
    settings = {"window": window, "min_weight": min_weight, **mode}
    direct = fastpath.coaction([path], work / "direct", **settings)
    assert reader_of(work / "direct") == "pyarrow"
    full = full_path(path, work / "full", **settings)
    assert direct == full
    assert rows_of(work / "direct" / "edges.parquet") == rows_of(work / "full" / "edges.parquet")


PLAIN: list[Row] = [
    ("m1", "u1", "p", "", str(T0)),
    ("m2", "u2", "p", "", str(T0 + 5)),
    ("m3", "u1", "p", "", str(T0 + 8)),
]


# (how the plain file is changed, why pyarrow leaves it, whether the DuckDB reader then
# takes it: if not, the full path reads it or names the row it refuses)
LEFT_TO_DUCKDB = [
    (lambda b: b"\xef\xbb\xbf" + b, "byte-order mark", True),
    (lambda b: b.replace(b"\r\n", b"\n", 1), "line ends", True),
    (lambda b: b.replace(b"name u2", b"name\ru2"), "line ends", False),
    (lambda b: b.replace(b"name u2", b'"name, u2"'), "a quote", True),
    (lambda b: b.replace(b",u2,", b",\xc3\xa9u2,"), "ids ingest would trim", True),
    (lambda b: b.replace(b",u2,", b", u2,"), "ids ingest would trim", True),
    (lambda b: b.replace(b",u2,", b",u2\t,"), "ids ingest would trim", True),
    (lambda b: b.replace(b"name u2", b"name\x00u2"), "a NUL", True),
    (lambda b: b.replace(str(T0 + 5).encode(), f"{T0 + 5}.5".encode()), "epoch seconds", True),
    (lambda b: b.replace(str(T0 + 5).encode(), b"04102444800"), "epoch seconds", False),
    (lambda b: b.replace(b"m3", b"m2"), "seen twice", False),
    (lambda b: b.replace(b"urls", b"reply_id"), "header", False),
    (lambda b: b.replace(b",", b";"), "pyarrow", True),
    (lambda b: b + b"\r\n", "without its ids", True),
    (lambda b: b + b"\n", "line ends", False),
]


@pytest.mark.parametrize(("change", "why", "taken"), LEFT_TO_DUCKDB)
def test_a_file_the_arrow_reader_does_not_take_goes_through_duckdb(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: Any, why: str, taken: bool
) -> None:
    path = write_qut(tmp_path / "posts.csv", PLAIN)
    path.write_bytes(change(path.read_bytes()))
    settings: dict[str, Any] = {"window": 10, "compat_mode": "qut"}
    with caplog.at_level("INFO", logger="concerted.fastpath"):
        direct = fastpath.coaction([path], tmp_path / "direct", **settings)
    assert why in caplog.text
    assert (direct is not None) == taken
    if direct is not None:
        assert why in reader_of(tmp_path / "direct")
        full = full_path(path, tmp_path / "full", **settings)
        assert direct == full
        assert rows_of(tmp_path / "direct" / "edges.parquet") == rows_of(
            tmp_path / "full" / "edges.parquet"
        )


def test_text_that_is_not_utf8_is_left_to_ingest(tmp_path: Path) -> None:
    path = write_qut(tmp_path / "posts.csv", PLAIN)
    path.write_bytes(path.read_bytes().replace(b"name u2", b"name \xff"))
    assert fastpath._plain_file(path, path.stat().st_size) == "text that is not UTF-8"
    assert fastpath.coaction([path], tmp_path / "direct", window=10, compat_mode="qut") is None


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(-5, 5) | st.integers(-(2**62), 2**62)),
        max_size=30,
    )
)
def test_order_by_is_lexsort(rows: list[tuple[int, int]]) -> None:
    major = np.array([r[0] for r in rows], dtype=np.int64)
    minor = np.array([r[1] for r in rows], dtype=np.int64)
    assert fastpath._order_by(major, minor).tolist() == np.lexsort((minor, major)).tolist()


@settings(max_examples=examples(100), deadline=None)
@given(
    st.integers(0, 3000),
    st.integers(0, 2**16),
    st.sampled_from([1, 3, 1_000_000, 2**40]),
    st.integers(-(2**50), 2**50),
    st.integers(0, 2**31),
    st.booleans(),
)
def test_order_by_packed_with_the_row_is_lexsort(
    rows: int, majors: int, step: int, base: int, seed: int, jitter: bool
) -> None:
    # Many rows with ties, and times on a common step (whole seconds in microseconds):
    # the order sorted with the row number in the key, or by the stable argsort, is
    # lexsort's.
    rng = np.random.default_rng(seed)
    major = rng.integers(0, majors + 1, rows)
    spread = int(rng.integers(1, 2**20))
    minor = base + step * rng.integers(0, spread, rows) + jitter * rng.integers(0, 2, rows)
    assert fastpath._order_by(major, minor).tolist() == np.lexsort((minor, major)).tolist()


class _Mallopt:
    """A stand-in for glibc's ``mallopt``: records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.argtypes: object = None
        self.restype: object = None

    def __call__(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return 1


def test_the_heap_thresholds_are_raised_while_the_path_runs_and_put_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ctypes
    import os

    mallopt = _Mallopt()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: type("Libc", (), {"mallopt": mallopt}))
    with heap.kept():
        inside = list(mallopt.calls)
    try:
        on_glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        on_glibc = False
    raised = {heap.M_MMAP_THRESHOLD, heap.M_TRIM_THRESHOLD}
    if not on_glibc:
        assert mallopt.calls == []
        return
    assert {p for p, v in inside if v == heap.KEPT} == raised
    assert {p for p, v in mallopt.calls[len(inside) :]} == raised
    assert all(v == heap.GLIBC_THRESHOLD for _, v in mallopt.calls[len(inside) :])


def test_the_arrow_reader_leaves_pandas_unimported(tmp_path: Path) -> None:
    # pyarrow's to_numpy and pa.array import pandas where it is installed (0.2 s).
    path = write_qut(tmp_path / "posts.csv", PLAIN)
    code = (
        "import sys; from pathlib import Path; from concerted import fastpath; "
        f"done = fastpath.coaction([Path({str(path)!r})], {str(tmp_path / 'out')!r}, "
        "window=10, compat_mode='qut'); "
        "print(done, 'pandas' in sys.modules); sys.exit('pandas' in sys.modules or not done)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert reader_of(tmp_path / "out") == "pyarrow"
