"""Reports benchmark: millions of reports through every report detector, the brigade
stage and the per-report scorer; and the ablation of the brigade stage's signals.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.reports                       # 10,000,000 reports
    .venv/bin/python -m benchmarks.reports --reports 1000000 --memory-limit 4GB
    .venv/bin/python -m benchmarks.reports ablation --scenario brigade --scenario pakistan-2020

**run** (the default):

1. **Generate** (once per set of parameters; later runs reuse the files under
   ``--out``): Parquet files in the contracts' layouts, drawn with numpy from one
   seeded generator. The everyday trickle: reporters from a bounded Zipf over
   ``reports / 5`` accounts (p ∝ (rank + 1000)^-1), targets from a bounded Zipf over
   ``reports / 10`` accounts and posts (p ∝ (rank + 300)^-1), times over 30 days on a
   daily rhythm, everyday reasons, app or web, a browser or app client, outcomes mostly
   rejected. Organic spikes (one per 25,000 reports): a few hundred people reporting
   one target once each within hours of one another. Brigades (one per 500,000
   reports): 120 members (a third made weeks before, 15% driven by an extension: one
   reason, 3 s apart, in list order, direct link, half with the tool's mark in the
   client), 60 targets, 6 waves, each wave called by an admin's post in the brigade's
   group with profile and report links, and a boast after. Plus ``reports / 50``
   everyday posts.
2. **Load** them into an in-memory case (``--memory-limit``, spilling to a temporary
   directory) and derive the actions, as ingest does.
3. **Find**: :func:`concerted.brigades.find` with every report detector, timed stage
   by stage (each detector, the significance test of co-reporting, reporters,
   brigades, scores, evidence).

It prints each stage's wall and CPU seconds (user + system, DuckDB's threads
included), the total, the peak resident memory of the process (DuckDB works inside
it), the 1-minute load average before and after, and what was found, and writes the
same as JSON to ``--out/run-N.json``.

**ablation**: for each scenario and seed, simulates it (reused under ``--out``),
ingests it into a case file, and runs the brigade stage with every signal, then with
each signal (or group) switched off, printing precision and recall of brigade
reporters, targets, coordinated reports and automated reporters, the organisers found
and the brigades flagged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from concerted import detectors, evaluate, simulate
from concerted.actions import SQL_MACROS, from_posts, from_reports
from concerted.brigades import DETECTORS, BrigadeSettings, find
from concerted.ingest import IngestOptions, open_case
from concerted.schema import CONTRACTS
from concerted.significance import Significance

__all__ = ["ABLATIONS", "ablation", "digest", "generate", "load", "main", "run"]

DAY = 86_400
US = 1_000_000
START_US = 1_590_969_600 * US  # 2020-06-01T00:00:00Z
DAYS = 30
REASONS = ("spam", "harassment", "hate_speech", "nudity", "false_information", "violence")
REASON_P = np.array([0.35, 0.15, 0.15, 0.1, 0.15, 0.1])
BROWSERS = (
    "Mozilla/5.0 (Linux; Android 10; SM-A505F) AppleWebKit/537.36 Chrome/83.0.4103.106",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/83.0.4103.97",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 13_5 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:77.0) Gecko/20100101 Firefox/77.0",
)
APPS = ("FB4A/275.0.0.49.127", "FBIOS/275.0.0.44.120")
MARK = "BulkFlag/2.0"
# Hour-of-day weights: quiet at night, busy in the evening.
RHYTHM = np.array([2, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 6, 6, 5, 5, 6, 7, 8, 9, 9, 8, 6, 4], float)


#: The columns that name a tie and its weight, for the digests of the edges.
_TIE = ["detector", "platform_1", "account_1", "platform_2", "account_2", "weight", "score"]


def _zipf(rng: np.random.Generator, n_ranks: int, offset: float, size: int) -> Any:
    """Ranks 0..n_ranks-1 drawn with p ∝ (rank + offset)^-1."""
    cdf = np.cumsum(1.0 / (np.arange(n_ranks) + offset))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size)), n_ranks - 1)


def _times(rng: np.random.Generator, size: int) -> Any:
    days = rng.integers(0, DAYS, size)
    hours = rng.choice(24, size, p=RHYTHM / RHYTHM.sum())
    seconds = rng.random(size) * 3600
    return START_US + ((days * 24 + hours) * 3600 + seconds).astype(np.int64) * US


class _Columns:
    """Report columns gathered in numpy chunks."""

    def __init__(self) -> None:
        self.parts: dict[str, list[Any]] = {
            k: [] for k in ("reporter", "target", "kind", "ts", "reason", "channel", "client")
        }

    def add(self, **values: Any) -> None:
        n = len(values["reporter"])
        for key, items in self.parts.items():
            value = values[key]
            items.append(np.asarray(value) if np.ndim(value) else np.full(n, value))

    def table(self) -> dict[str, Any]:
        return {k: np.concatenate(v) for k, v in self.parts.items()}


def _stamps(micros: Any) -> pa.Array[Any]:
    """UTC timestamps from microseconds since the epoch."""
    values = pa.array(np.asarray(micros, dtype=np.int64), pa.int64())
    return values.cast(pa.timestamp("us", tz="UTC"))


def _ids(prefix: str, numbers: npt.NDArray[np.int64]) -> pa.Array[Any]:
    return pa.array(np.char.add(prefix, numbers.astype(str)))


def generate(out: Path, n_reports: int, seed: int) -> dict[str, Any]:
    """Write accounts, posts, reports and roles Parquet files under ``out``."""
    rng = np.random.default_rng(seed)
    n_accounts = max(n_reports // 5, 2_000)
    n_targets = max(n_reports // 10, 1_000)
    cols = _Columns()
    n_spikes = max(1, n_reports // 25_000)
    n_brigades = max(1, n_reports // 500_000)

    # Brigades first (their size decides how many everyday reports fill the rest).
    posts: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    young: list[npt.NDArray[np.int64]] = []
    next_account = n_accounts
    planted = {"brigades": n_brigades, "reporters": 0, "reports": 0}
    for b in range(n_brigades):
        members = np.arange(next_account, next_account + 120)
        venue, organiser = next_account + 120, next_account + 121
        next_account += 122
        young.append(members[:40])
        automated = np.zeros(120, bool)
        automated[rng.choice(120, 18, replace=False)] = True
        marked = automated & (rng.random(120) < 0.5)
        targets = rng.choice(n_targets // 2, 60, replace=False)
        roles.append({"account_id": f"a{organiser}", "venue_id": f"a{venue}", "role": "admin"})
        for wave in range(6):
            called = START_US + (
                (rng.integers(1, DAYS - 2) * DAY + 15 * 3600 + rng.integers(0, 7200)) * US
            )
            listed = rng.choice(targets, int(rng.integers(10, 61)), replace=False)
            reason = REASONS[int(rng.integers(len(REASONS)))]
            links = [f"https://www.facebook.com/profile.php?id=t{t}" for t in listed]
            flow = [f"https://www.facebook.com/report/profile/?id=t{t}" for t in listed]
            posts.append(
                {
                    "post_id": f"call{b}-{wave}",
                    "account_id": f"a{organiser}",
                    "ts": called,
                    "venue_id": f"a{venue}",
                    "text": f"Report these accounts now, it is our duty! Reason: {reason}",
                    "urls": links + flow,
                    "mentions": [f"t{t}" for t in listed],
                }
            )
            posts.append(
                {
                    "post_id": f"boast{b}-{wave}",
                    "account_id": f"a{organiser}",
                    "ts": called + 2 * DAY * US,
                    "venue_id": f"a{venue}",
                    "text": "Alhamdulillah, we got them banned, their accounts are taken down",
                    "urls": [],
                    "mentions": [f"t{t}" for t in listed[:10]],
                }
            )
            for m in np.flatnonzero(rng.random(120) < 0.6):
                if automated[m]:
                    order = np.arange(len(listed))
                    gaps = np.maximum(0.5, 3.0 + rng.normal(0, 0.15, len(order)))
                    start = rng.lognormal(np.log(900), 0.6)
                    agent = BROWSERS[m % 4] + (f" {MARK}" if marked[m] else "")
                    channel, why = "direct_link", [reason] * len(order)
                else:
                    order = np.flatnonzero(rng.random(len(listed)) < 0.7)
                    if rng.random() < 0.5:
                        order = rng.permutation(order)
                    gaps = rng.lognormal(np.log(40), 0.7, len(order))
                    start = rng.lognormal(np.log(45 * 60), 0.8)
                    agent = BROWSERS[m % 4]
                    channel = "direct_link" if rng.random() < 0.8 else "app"
                    why = [reason if r < 0.75 else "spam" for r in rng.random(len(order))]
                offsets = start + np.cumsum(gaps) - (gaps[0] if len(gaps) else 0)
                cols.add(
                    reporter=np.full(len(order), members[m]),
                    target=listed[order],
                    kind="account",
                    ts=called + (offsets * US).astype(np.int64),
                    reason=np.asarray(why, dtype=object),
                    channel=channel,
                    client=agent,
                )
                planted["reports"] += len(order)
        planted["reporters"] += 120
    # Organic spikes: many people, one target, once each.
    spike_total = 0
    for _ in range(n_spikes):
        size = int(max(20, rng.lognormal(np.log(300), 0.4)))
        target = int(rng.integers(n_targets // 2, n_targets))
        posted = _times(rng, 1)[0]
        who = rng.choice(n_accounts, size, replace=False)
        app = rng.random(size) < 0.6
        cols.add(
            reporter=who,
            target=np.full(size, target),
            kind="post",
            ts=posted + (rng.lognormal(np.log(2400), 1.0, size) * US).astype(np.int64),
            reason=np.where(rng.random(size) < 0.6, "violence", "spam").astype(object),
            channel=np.where(app, "app", "web").astype(object),
            client=np.where(app, APPS[0], BROWSERS[0]).astype(object),
        )
        spike_total += size
    # The everyday trickle fills the rest.
    rest = max(0, n_reports - planted["reports"] - spike_total)
    for lo in range(0, rest, 2_000_000):
        n = min(2_000_000, rest - lo)
        app = rng.random(n) < 0.6
        kinds = np.where(rng.random(n) < 0.4, "post", "account").astype(object)
        cols.add(
            reporter=_zipf(rng, n_accounts, 1000.0, n),
            target=_zipf(rng, n_targets, 300.0, n),
            kind=kinds,
            ts=_times(rng, n),
            reason=np.asarray(REASONS, dtype=object)[rng.choice(len(REASONS), n, p=REASON_P)],
            channel=np.where(app, "app", "web").astype(object),
            client=np.where(
                app,
                np.asarray(APPS, dtype=object)[rng.integers(0, 2, n)],
                np.asarray(BROWSERS, dtype=object)[rng.integers(0, 4, n)],
            ),
        )
    r = cols.table()
    n = len(r["reporter"])
    roll = rng.random(n)
    codes = np.where(roll < 0.2, 0, np.where(roll < 0.8, 1, 2))
    outcome = np.asarray(["upheld", "rejected", None], dtype=object)[codes]
    reports = pa.table(
        {
            "report_id": _ids("r", np.arange(n)),
            "reporter_id": _ids("a", r["reporter"]),
            "target_id": _ids("t", r["target"]),
            "target_kind": pa.array(r["kind"], pa.string()),
            "reason": pa.array(r["reason"], pa.string()),
            "ts": _stamps(r["ts"]),
            "channel": pa.array(r["channel"], pa.string()),
            "client": pa.array(r["client"], pa.string()),
            "text": pa.nulls(n, pa.string()),
            "outcome": pa.array(outcome, pa.string()),
            "platform": pa.array(np.full(n, "facebook"), pa.string()),
            "extra": pa.nulls(n, pa.string()),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(reports, out / "reports.parquet")
    created = START_US - (rng.uniform(365, 10 * 365, next_account) * DAY * US).astype(np.int64)
    for members in young:
        created[members] = START_US - (rng.uniform(5, 40, len(members)) * DAY * US).astype(np.int64)
    accounts = pa.table(
        {
            "account_id": _ids("a", np.arange(next_account)),
            "platform": pa.array(np.full(next_account, "facebook"), pa.string()),
            "kind": pa.array(np.full(next_account, "user"), pa.string()),
            "created_at": _stamps(created),
        }
    )
    pq.write_table(accounts, out / "accounts.parquet")
    n_posts = max(1, n_reports // 50)
    everyday = {
        "post_id": _ids("p", np.arange(n_posts)),
        "account_id": _ids("a", rng.integers(0, n_accounts, n_posts)),
        "ts": _stamps(_times(rng, n_posts)),
        "venue_id": pa.nulls(n_posts, pa.string()),
        "text": pa.array(np.full(n_posts, "cricket match today, prices up again"), pa.string()),
        "urls": pa.nulls(n_posts, pa.list_(pa.string())),
        "mentions": pa.nulls(n_posts, pa.list_(pa.string())),
    }
    called_posts = {
        "post_id": pa.array([p["post_id"] for p in posts], pa.string()),
        "account_id": pa.array([p["account_id"] for p in posts], pa.string()),
        "ts": _stamps([int(p["ts"]) for p in posts]),
        "venue_id": pa.array([p["venue_id"] for p in posts], pa.string()),
        "text": pa.array([p["text"] for p in posts], pa.string()),
        "urls": pa.array([p["urls"] for p in posts], pa.list_(pa.string())),
        "mentions": pa.array([p["mentions"] for p in posts], pa.list_(pa.string())),
    }
    pq.write_table(
        pa.concat_tables([pa.table(everyday), pa.table(called_posts)]), out / "posts.parquet"
    )
    pq.write_table(
        pa.Table.from_pylist([{**x, "platform": "facebook"} for x in roles]),
        out / "roles.parquet",
    )
    return {
        "reports": n,
        "spikes": n_spikes,
        "spike_reports": spike_total,
        "brigade_reports": planted["reports"],
        "brigades": n_brigades,
        "brigade_reporters": planted["reporters"],
        "accounts": next_account,
        "posts": n_posts + len(posts),
    }


def load(con: duckdb.DuckDBPyConnection, data: Path) -> None:
    """The case tables from the Parquet files, in their contracts, and the actions."""
    con.execute(SQL_MACROS)
    for name in ("accounts", "posts", "reports", "roles", "actions"):
        contract = CONTRACTS[name]
        con.execute(contract.ddl())
        if name == "actions":
            continue
        have = set(pq.read_schema(data / f"{name}.parquet").names)
        values = ", ".join(
            c.name
            if c.name in have
            else "'facebook'"
            if c.name == "platform"
            else f"CAST(NULL AS {c.type})"
            for c in contract.columns
        )
        con.execute(f"INSERT INTO {name} SELECT {values} FROM '{data / name}.parquet'")
    con.execute(f"INSERT INTO actions {from_reports('reports')}")
    con.execute(f"INSERT INTO actions {from_posts('posts')}")


def digest(table: pa.Table, columns: Sequence[str]) -> str:
    """The SHA-256 of ``columns`` of ``table``, its rows sorted by them (first 16 hex
    digits): two runs found the same rows exactly when their digests are equal.

    >>> t = pa.table({"a": [2, 1], "b": ["y", "x"]})
    >>> digest(t, ["a", "b"]) == digest(t.take([1, 0]), ["a", "b"])
    True
    """
    kept = table.select(list(columns)).sort_by([(c, "ascending") for c in columns])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, kept.schema) as writer:
        writer.write_table(kept.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _rss_mib() -> float:
    """The process's resident memory now (``/proc/self/statm``; 0 where there is none)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _RssSampler:
    """Samples the resident memory every ``interval`` seconds in a thread and keeps the
    highest sample since the last :meth:`mark`: the peak of each stage."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.high = 0.0
        self.peaks: list[float] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss_mib()
            with self._lock:
                self.high = max(self.high, rss)

    def start(self) -> None:
        self.high = _rss_mib()
        self._thread.start()

    def mark(self) -> None:
        """Closes the stage under way (its peak joins :attr:`peaks`) and opens the next."""
        now = _rss_mib()
        with self._lock:
            self.peaks.append(round(max(self.high, now), 1))
            self.high = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.out) / f"reports-{args.reports}-seed{args.seed}"
    start = time.perf_counter()
    if not (data / "made.json").is_file():
        made = generate(data, args.reports, args.seed)
        (data / "made.json").write_text(json.dumps(made, indent=2))
    made = json.loads((data / "made.json").read_text())
    generated = round(time.perf_counter() - start, 3)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(dir=args.out) as spill:
        con = duckdb.connect(
            config={"memory_limit": args.memory_limit, "temp_directory": spill, "threads": 2}
        )
        con.execute("SET TimeZone = 'UTC'")
        start = time.perf_counter()
        load(con, data)
        loaded = round(time.perf_counter() - start, 3)
        start, cpu = time.perf_counter(), time.process_time()
        # CPU seconds per stage (user + system, DuckDB's threads included): the clock
        # between one stage's start and the next's, readable on a shared machine.
        # Peak resident memory per stage: a thread samples it every 0.1 s.
        marks: list[tuple[str, float]] = []
        sampler = _RssSampler()
        sampler.start()

        def progress(message: str) -> None:
            if marks:
                sampler.mark()
            marks.append((message.removeprefix("brigades: "), time.process_time()))
            print(f"{message} (rss {_rss_mib():,.0f} MiB)", flush=True)

        found = find(con, BrigadeSettings(), Significance(), progress=progress)
        total = round(time.perf_counter() - start, 3)
        cpu = round(time.process_time() - cpu, 3)
        sampler.mark()
        sampler.stop()
        ends = [t for _, t in marks[1:]] + [time.process_time()]
        stage_cpu = {name: round(end - t, 3) for (name, t), end in zip(marks, ends, strict=True)}
        stage_rss = {name: peak for (name, _), peak in zip(marks, sampler.peaks, strict=True)}
        con.close()
    # What was found, exactly: two runs (two versions of the code) found the same when
    # these are equal.
    digests = {
        "campaigns": digest(found.campaigns, ["campaign_id", "score", "flagged", "accounts"]),
        "members": digest(found.members, ["campaign_id", "platform", "account_id", "role"]),
        "targets": digest(found.targets, ["campaign_id", "platform", "target_id", "reports"]),
        "report_scores": digest(
            found.report_scores,
            ["report_id", "platform", "score", "flagged", "recommendation", "campaign_id"],
        ),
        "edges": digest(found.edges, [*_TIE, "expected", "p_value", "q_value", "significant"]),
        # The ties and their test's verdict without the test's figures, whose last bits
        # follow the order in which the test sums over targets.
        "edges_verdicts": digest(found.edges, [*_TIE, "significant"]),
        "signals": digest(found.signals, ["detector", "entity", "platform", "id", "score"]),
        # Each report's signals, as one string (a list column does not sort).
        "report_signals": digest(
            pa.table(
                {
                    "report_id": found.report_scores.column("report_id"),
                    "platform": found.report_scores.column("platform"),
                    "signals": pc.binary_join(found.report_scores.column("signals"), ","),
                }
            ),
            ["report_id", "platform", "signals"],
        ),
    }
    truth = made
    flagged = found.campaigns.filter(found.campaigns.column("flagged"))
    record = {
        "reports": made["reports"],
        "made": truth,
        "seconds": {"generate": generated, "load": loaded, **found.notes["seconds"]},
        "find_seconds": total,
        "find_cpu_seconds": cpu,
        "cpu_seconds": stage_cpu,
        "peak_rss_mib": _peak_mib(),
        "peak_rss_mib_by_stage": stage_rss,
        "digests": digests,
        "memory_limit": args.memory_limit,
        "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "found": {
            **found.notes["counts"],
            "flagged_brigade_reporters": int(
                sum(
                    1
                    for m in found.members.to_pylist()
                    if m["role"] != "organiser"
                    and m["campaign_id"] in set(flagged.column("campaign_id").to_pylist())
                )
            ),
        },
    }
    n = len(list(Path(args.out).glob("run-*.json")))
    (Path(args.out) / f"run-{n + 1}.json").write_text(json.dumps(record, indent=2))
    return record


# -- ablation ---------------------------------------------------------------------------

#: Each ablation: a name and the detectors it switches off.
ABLATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all signals", ()),
    ("S1 report_burst off", ("report_burst",)),
    ("S2 co_report off", ("co_report",)),
    ("S3 dense_block off", ("dense_block",)),
    ("S4 report_content off", ("report_content",)),
    ("S5 reporter_reputation off", ("reporter_reputation",)),
    ("S6 reporter_inauthenticity off", ("reporter_inauthenticity",)),
    ("S7 report_automation off", ("report_automation",)),
    ("S8 list_order off", ("list_order",)),
    ("M1 mobilisation off", ("mobilisation",)),
    ("M3 boasting off", ("boasting",)),
    ("S3 + S8 off", ("dense_block", "list_order")),
    ("only S2 co_report", tuple(d for d in DETECTORS if d != "co_report")),
)


def _case(out: Path, scenario: str, seed: int) -> Path:
    data = out / f"{scenario}-{seed}"
    if not (data / "truth.json").is_file():
        simulate.simulate(simulate.scenario(scenario), seed=seed, out=data)
    case = out / f"case-{scenario}-{seed}.duckdb"
    if not case.is_file():
        store, _ = open_case([data], case, IngestOptions(format="generic"), memory_limit="2GB")
        store.close()
    return data


def _pr(block: dict[str, Any]) -> str:
    p, r = block["precision"], block["recall"]
    return "-" if p is None else f"{p:.3f}/{r:.3f}"


def ablation(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    header = (
        f"{'case':<18}{'ablation':<32}{'flagged':>8}{'reporters P/R':>16}{'targets P/R':>16}"
        f"{'reports P/R':>16}{'automated P/R':>16}{'organisers':>11}"
    )
    print(header, flush=True)
    for scenario in args.scenario:
        for seed in args.seed_list:
            data = _case(out, scenario, seed)
            for name, off in ABLATIONS:
                used = tuple(detectors.get(d) for d in DETECTORS if d not in off)
                con = duckdb.connect(str(out / f"case-{scenario}-{seed}.duckdb"), read_only=True)
                con.execute("SET memory_limit = '2GB'")
                con.execute("SET TimeZone = 'UTC'")
                found = find(con, BrigadeSettings(detectors=used))
                con.close()
                result = out / f"result-{scenario}-{seed}"
                result.mkdir(exist_ok=True)
                for part in ("campaigns", "members", "targets", "report_scores"):
                    pq.write_table(getattr(found, part), result / f"{part}.parquet")
                score = evaluate.evaluate(result, data)
                organisers = score["brigade_organisers"]
                row = {
                    "case": f"{scenario}-{seed}",
                    "ablation": name,
                    "flagged": found.flagged,
                    **{
                        k: score[k]
                        for k in ("brigade_reporters", "targets", "reports", "automated_reporters")
                    },
                    "organisers_found": organisers["tp"],
                    "organisers": organisers["tp"] + organisers["fn"],
                }
                rows.append(row)
                print(
                    f"{row['case']:<18}{name:<32}{found.flagged:>8}"
                    f"{_pr(row['brigade_reporters']):>16}{_pr(row['targets']):>16}"
                    f"{_pr(row['reports']):>16}{_pr(row['automated_reporters']):>16}"
                    f"{row['organisers_found']:>5}/{row['organisers']:<5}",
                    flush=True,
                )
    (out / "ablation.json").write_text(json.dumps(rows, indent=2))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("run", "ablation"), default="run")
    parser.add_argument("--reports", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--out", default="bench-data/reports")
    parser.add_argument("--scenario", action="append", choices=("brigade", "pakistan-2020"))
    parser.add_argument("--seeds", default="0", help="ablation: comma-separated seeds (default 0)")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.mode == "ablation":
        args.scenario = args.scenario or ["brigade", "pakistan-2020"]
        args.seed_list = [int(s) for s in args.seeds.split(",")]
        ablation(args)
        return 0
    record = run(args)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
