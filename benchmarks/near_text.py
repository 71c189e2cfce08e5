"""Near-duplicate text benchmark: multilingual posts with planted edited copies.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.near_text                     # 1,000,000 posts
    .venv/bin/python -m benchmarks.near_text --posts 200000 --sample 5000
    .venv/bin/python -m benchmarks.near_text --no-peer --no-libraries --json

1. **Generate** (once per set of parameters; later runs reuse the file): ``--posts``
   everyday posts in English, Urdu, Hindi and romanised Urdu (35/25/15/25 %), drawn by
   the simulator's text model (:func:`concerted.simulation.text.organic_texts`, 8 to 30
   Zipf-drawn words), by ``--accounts`` accounts, spread over 30 days. ``--groups``
   of them are sources: each gets a geometric number of copies (mean 2.5, at most 20),
   posted by other accounts within minutes, each edited as operators edit a paste
   (:func:`~concerted.simulation.text.edit_text` at a rate drawn from 0 to 0.12) and
   dressed as copies are: case changed, zero-width characters and bidi marks inserted,
   Arabic-script letter variants swapped and diacritics added, a number written in
   another script, a link, a mention or an emoji added. The planted pairs are every
   two posts of a group; their true similarity is the Jaccard similarity of the sets
   of 4-character substrings of the normalised texts, computed here with Python sets
   (not with the detector's code).
2. **concerted**, one child process: the posts into an in-memory DuckDB (not timed),
   then ``NearText().detect`` (clusters, ``near_text`` actions, co-action), each stage
   timed; its peak RSS is the child's ``ru_maxrss``.
3. **Score**: recall of planted pairs (both posts in one cluster) among those with true
   similarity at least 0.8 (the goal: 0.95) and at least the detector's threshold;
   precision of the reported pairs (two posts in one cluster) against the planted groups.
4. **Libraries**: datasketch and rensa sketch and index the same shingles of
   ``--library-sample`` texts (MinHash of 120 values, LSH of 20 bands of 6).
5. **The toolkit**: on ``--sample`` posts (whole planted groups plus organic posts,
   from the same file), the coordination-network-toolkit's ``co_similar_tweet``
   (word-set Jaccard at the same threshold, the same time window) against
   ``NearText().detect`` on the same posts, each in child processes timed from spawn
   to exit (the toolkit: preprocess, compute, export); the ratio is toolkit seconds
   over concerted seconds. ``--no-peer`` skips it.

The machine is shared while this is written: the script prints the load average before
and after, and CPU seconds beside wall seconds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from benchmarks.coaction import Measured, run_measured
from benchmarks.ingest import DEFAULT_OUT, machine
from concerted.simulation import text as prose
from concerted.textnorm import normalize_array

# Bump when the generator changes, so that older files are not reused.
GENERATOR_VERSION = 1
DAY = 86_400
DAYS = 30
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
LANGUAGE_SHARES = (0.35, 0.25, 0.15, 0.25)  # en, ur, hi, ur-Latn
SHINGLE = 4
GOAL_SIMILARITY = 0.8

_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u200f", "\u200e", "\ufeff", "\u2066", "\u2069")
_ARABIC_VARIANTS: dict[str, str | int | None] = {"ی": "ي", "ک": "ك", "ہ": "ه", "ے": "ي"}
_HARAKAT = ("\u064e", "\u064f", "\u0650", "\u0651", "\u0652")
_DIGITS = {"ur": "۰۱۲۳۴۵۶۷۸۹", "hi": "०१२३४५६७८९", "en": "0123456789", "ur-Latn": "0123456789"}
_EXTRAS = (" 🇵🇰", " 🔥🔥", "!!", " ❤️", " 👍")


# -- the workload -------------------------------------------------------------------------


def _dress(rng: np.random.Generator, text: str, lang: str, number: str | None) -> str:
    """A copy as it is pasted: what normalisation should undo."""
    roll = rng.random(8)
    if number is not None:
        text = f"{text} {number.translate(str.maketrans('0123456789', _DIGITS[lang]))}"
    if roll[0] < 0.3:
        text = text.upper() if roll[1] < 0.5 else text.title()
    if lang == "ur" and roll[2] < 0.5:
        text = text.translate(str.maketrans(_ARABIC_VARIANTS))
    if lang == "ur" and roll[3] < 0.3:
        chars = list(text)
        for i in rng.choice(len(chars), min(3, len(chars)), replace=False):
            if "\u0600" <= chars[int(i)] <= "\u06ff":
                chars[int(i)] += _HARAKAT[int(rng.integers(len(_HARAKAT)))]
        text = "".join(chars)
    if roll[4] < 0.4:
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(text) + 1))
            text = text[:i] + _INVISIBLE[int(rng.integers(len(_INVISIBLE)))] + text[i:]
    if roll[5] < 0.3:
        text += f" https://t.co/{int(rng.integers(1 << 40)):x}"
    if roll[6] < 0.3:
        text = f"@user{int(rng.integers(100_000))} {text}"
    if roll[7] < 0.4:
        text += _EXTRAS[int(rng.integers(len(_EXTRAS)))]
    return text


@dataclass(frozen=True)
class Workload:
    file: Path
    posts: int
    accounts: int
    groups: int
    copies: int
    seed: int
    reused: bool
    seconds: float


def generate(out_dir: Path, posts: int, accounts: int, groups: int, seed: int) -> Workload:
    """The posts file, generated unless a file of these parameters exists."""
    stem = f"neartext-n{posts}-a{accounts}-g{groups}-s{seed}-v{GENERATOR_VERSION}"
    path = out_dir / f"{stem}.parquet"
    if path.is_file():
        meta = pq.read_metadata(path).metadata or {}
        found = json.loads(meta[b"workload"])
        return Workload(file=path, reused=True, seconds=0.0, **found)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    langs = rng.choice(len(prose.LANGUAGES), posts, p=LANGUAGE_SHARES)
    lang_names = [prose.LANGUAGES[int(i)] for i in langs]
    texts = prose.organic_texts(rng, lang_names, min_words=8, max_words=30)
    account = rng.integers(0, accounts, posts)
    ts = T0 + rng.integers(0, DAYS * DAY, posts)
    group = np.full(posts, -1, dtype=np.int64)
    role = np.zeros(posts, dtype=np.int8)  # 0 organic, 1 source, 2 copy
    sizes = np.minimum(rng.geometric(0.4, groups), 20)
    if groups + int(sizes.sum()) > posts:
        raise SystemExit("too many groups for the posts asked for")
    chosen = rng.permutation(posts)[: groups + int(sizes.sum())]
    sources, slots = chosen[:groups], chosen[groups:]
    numbers = rng.random(groups) < 0.3
    at = 0
    for g in range(groups):
        s = int(sources[g])
        group[s], role[s] = g, 1
        lang = lang_names[s]
        number = str(int(rng.integers(1, 2030))) if numbers[g] else None
        if number is not None:
            texts[s] = f"{texts[s]} {number}"
        rate = rng.uniform(0.0, 0.12)
        base = texts[s] if number is None else texts[s].rsplit(" ", 1)[0]
        for _ in range(int(sizes[g])):
            d = int(slots[at])
            at += 1
            texts[d] = _dress(rng, prose.edit_text(rng, base, rate), lang, number)
            group[d], role[d] = g, 2
            ts[d] = ts[s] + 1 + int(rng.exponential(600))
            account[d] = rng.integers(0, accounts)
    found = {
        "posts": posts,
        "accounts": accounts,
        "groups": groups,
        "copies": int(sizes.sum()),
        "seed": seed,
    }
    table = pa.table(
        {
            "post_id": [f"p{i:08d}" for i in range(posts)],
            "account_id": [f"u{int(a):07d}" for a in account],
            "ts": pa.array(ts * 1_000_000, pa.timestamp("us", tz="UTC")),
            "text": texts,
            "lang": lang_names,
            "grp": group,
            "role": role,
        }
    )
    table = table.replace_schema_metadata({"workload": json.dumps(found)})
    partial = path.with_suffix(".partial")
    pq.write_table(table, partial)
    partial.replace(path)
    return Workload(file=path, reused=False, seconds=time.perf_counter() - started, **found)


# -- concerted, in a child process ------------------------------------------------------


def _load(con: duckdb.DuckDBPyConnection, file: str, where: str = "") -> None:
    con.execute(
        f"""CREATE TABLE posts AS
            SELECT post_id, account_id, 'twitter' AS platform, ts, text
            FROM read_parquet('{file}') {where}"""
    )
    con.execute(
        """CREATE TABLE actions AS
           SELECT account_id AS actor_id, platform, 'text' AS kind, md5(text) AS object_id,
                  ts, post_id AS source_id FROM posts"""
    )


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """concerted on the posts file: clusters, ``near_text`` actions and co-action edges,
    each timed, as ``NearText.detect`` runs them."""
    from concerted.detectors.coaction import CoAction
    from concerted.detectors.near_text import NearText

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{spec['memory_limit']}'")
    loaded = time.perf_counter()
    _load(con, spec["file"])
    loaded = time.perf_counter() - loaded
    detector = NearText(window=spec["window"])
    marks = [time.perf_counter()]
    cpu = time.process_time()
    clusters = detector.clusters(con, "actions")
    marks.append(time.perf_counter())
    actions = detector.actions(con, "actions", clusters)
    marks.append(time.perf_counter())
    edges = CoAction(window=detector.window, kinds=("near_text",)).detect(con, actions).edges
    con.execute(f"COPY ({edges.sql_query()}) TO '{spec['edges_file']}'")
    marks.append(time.perf_counter())
    cpu = time.process_time() - cpu
    con.execute(
        f"COPY (SELECT post_id, cluster_id, similarity FROM {clusters.table}) "
        f"TO '{spec['clusters_file']}'"
    )
    counts = con.execute(
        f"SELECT (SELECT count(*) FROM {actions}), "
        f"(SELECT count(*) FROM read_parquet('{spec['edges_file']}'))"
    ).fetchone()
    assert counts is not None
    return {
        "load_seconds": loaded,
        "clusters_seconds": marks[1] - marks[0],
        "actions_seconds": marks[2] - marks[1],
        "coaction_seconds": marks[3] - marks[2],
        "seconds": marks[3] - marks[0],
        "cpu_seconds": cpu,
        "stages": clusters.notes["seconds"],
        "notes": {k: v for k, v in clusters.notes.items() if k != "seconds"},
        "near_text_actions": int(counts[0]),
        "edges": int(counts[1]),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_concerted(file: Path, work: Path, window: int, memory_limit: str) -> Any:
    spec = {
        "file": str(file),
        "memory_limit": memory_limit,
        "window": window,
        "edges_file": str(work / "edges.parquet"),
        "clusters_file": str(work / "clusters.parquet"),
    }
    run = run_measured([sys.executable, "-m", "benchmarks.near_text", "--child", json.dumps(spec)])
    if run.code != 0:
        sys.stderr.write(run.stderr[-4000:])
        raise SystemExit(f"concerted failed (exit status {run.code})")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    result["process_seconds"] = run.seconds
    result["process_peak_rss_mib"] = run.peak_rss_mib
    return result


# -- scoring ------------------------------------------------------------------------------


@dataclass
class Score:
    planted_pairs: int
    pairs_at_goal: int
    recall_at_goal: float
    pairs_at_threshold: int
    recall_at_threshold: float
    reported_pairs: int
    precision: float
    clustered_posts: int
    clustered_organic_posts: int
    similarity_quantiles: dict[str, float] = field(default_factory=dict)


def score(file: Path, clusters: Path, threshold: float) -> Score:
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE t AS SELECT p.post_id, p.text, p.grp, c.cluster_id
            FROM read_parquet('{file}') p LEFT JOIN read_parquet('{clusters}') c
            USING (post_id) WHERE p.grp >= 0 ORDER BY p.grp, p.post_id"""
    )
    rows = con.execute("SELECT text, grp, cluster_id FROM t").fetchall()
    normal = normalize_array([r[0] for r in rows]).to_pylist()
    shingles = [
        {t[i : i + SHINGLE] for i in range(len(t) - SHINGLE + 1)} for t in normal if t is not None
    ]
    similarities: list[float] = []
    found: list[bool] = []
    start = 0
    while start < len(rows):
        stop = start
        while stop < len(rows) and rows[stop][1] == rows[start][1]:
            stop += 1
        for i in range(start, stop):
            for j in range(i + 1, stop):
                a, b = shingles[i], shingles[j]
                union = len(a | b)
                similarities.append(len(a & b) / union if union else 1.0)
                found.append(rows[i][2] is not None and rows[i][2] == rows[j][2])
        start = stop
    sims, hits = np.array(similarities), np.array(found, dtype=np.bool_)
    goal, at_threshold = sims >= GOAL_SIMILARITY, sims >= threshold
    reported = con.execute(
        f"""WITH c AS (SELECT cluster_id, count(*) AS n FROM read_parquet('{clusters}')
                       GROUP BY ALL),
                 g AS (SELECT cluster_id, grp, count(*) AS n FROM read_parquet('{clusters}')
                       JOIN read_parquet('{file}') USING (post_id)
                       WHERE grp >= 0 GROUP BY ALL)
            SELECT (SELECT sum(n * (n - 1) // 2) FROM c), (SELECT sum(n * (n - 1) // 2) FROM g),
                   (SELECT sum(n) FROM c),
                   (SELECT count(*) FROM read_parquet('{clusters}')
                    JOIN read_parquet('{file}') USING (post_id) WHERE grp < 0)"""
    ).fetchone()
    assert reported is not None
    total, right, clustered, organic = (int(v or 0) for v in reported)
    return Score(
        planted_pairs=len(sims),
        pairs_at_goal=int(goal.sum()),
        recall_at_goal=float(hits[goal].mean()) if goal.any() else 1.0,
        pairs_at_threshold=int(at_threshold.sum()),
        recall_at_threshold=float(hits[at_threshold].mean()) if at_threshold.any() else 1.0,
        reported_pairs=total,
        precision=right / total if total else 1.0,
        clustered_posts=clustered,
        clustered_organic_posts=organic,
        similarity_quantiles={
            f"q{int(q * 100)}": float(np.quantile(sims, q)) for q in (0.1, 0.25, 0.5, 0.75)
        }
        if len(sims)
        else {},
    )


# -- the MinHash libraries ----------------------------------------------------------------


def compare_libraries(file: Path, n: int) -> dict[str, Any]:
    """datasketch and rensa on the same shingles of the first ``n`` texts."""
    import datasketch
    import rensa

    from concerted.detectors.near_text import (
        SEED,
        _band_keys,
        _bucket_pairs,
        shingle_hashes,
    )
    from concerted.textnorm import normalized_codepoints

    num_perm, bands = 120, 20
    texts = pq.read_table(file, columns=["text"]).column("text").slice(0, n)
    normal = [t for t in normalize_array(texts).to_pylist() if t and len(t) >= 30]
    tokens = [[t[i : i + SHINGLE] for i in range(len(t) - SHINGLE + 1)] for t in normal]
    out: dict[str, Any] = {"texts": len(tokens), "num_perm": num_perm, "bands": bands}

    def timed(fn: Any) -> tuple[float, Any]:
        started = time.process_time()
        value = fn()
        return time.process_time() - started, value

    # datasketch: its bulk constructor (SHA-1 of each token) and its LSH index.
    encoded = [[s.encode() for s in doc] for doc in tokens]
    sketch, hashes = timed(lambda: datasketch.MinHash.bulk(encoded, num_perm=num_perm, seed=1))

    def datasketch_lsh() -> int:
        index = datasketch.MinHashLSH(num_perm=num_perm, params=(bands, num_perm // bands))
        with index.insertion_session() as session:
            for i, m in enumerate(hashes):
                session.insert(i, m)
        return sum(len(index.query(m)) - 1 for m in hashes) // 2

    lsh, pairs = timed(datasketch_lsh)
    out["datasketch"] = {"sketch": sketch, "lsh": lsh, "total": sketch + lsh, "pairs": pairs}

    # rensa, as its documentation shows: string tokens, objects, its LSH index.
    sketch, objects = timed(
        lambda: rensa.RMinHash.from_token_sets(tokens, num_perm=num_perm, seed=SEED)
    )

    def rensa_lsh() -> int:
        index = rensa.RMinHashLSH(0.7, num_perm, bands)
        index.insert_many(objects, 0)
        return sum(len(c) - 1 for c in index.query_all(objects)) // 2

    lsh, pairs = timed(rensa_lsh)
    out["rensa"] = {"sketch": sketch, "lsh": lsh, "total": sketch + lsh, "pairs": pairs}

    # rensa as concerted calls it: the same shingles, hashed to 64 bits in numpy (not
    # timed), sketched from one buffer, digests to numpy, bands bucketed in numpy.
    cps, offsets = normalized_codepoints(texts)
    keep = np.diff(offsets) >= 30
    cps = cps[np.repeat(keep, np.diff(offsets))]
    offsets = np.concatenate([[0], np.cumsum(np.diff(offsets)[keep])]).astype(np.int64)
    flat, rows = shingle_hashes(cps, offsets, SHINGLE)

    def concerted_path() -> int:
        keys = _band_keys(flat, rows, num_perm=num_perm, bands=bands)
        found: set[tuple[int, int]] = set()
        for j in range(bands):
            a, b = _bucket_pairs(keys[:, j])
            found.update(zip(a.tolist(), b.tolist(), strict=True))
        return len(found)

    total, pairs = timed(concerted_path)
    out["rensa_matrix"] = {"total": total, "pairs": pairs}
    out["ratio"] = out["datasketch"]["total"] / out["rensa"]["total"]
    return out


# -- the toolkit --------------------------------------------------------------------------

_TOOLKIT_CLI = "import sys; from coordination_network_toolkit.__main__ import main; main()"
_TOOLKIT_EXPORT = (
    "import sys; from coordination_network_toolkit.output import output_gephi_csv; "
    "output_gephi_csv(sys.argv[1], 'co_similar_tweet', sys.argv[2], loops=False)"
)


def make_sample(file: Path, size: int, work: Path, seed: int) -> Path:
    """Whole planted groups (about a third of the posts) and organic posts, from the
    benchmark's file, as Parquet and as the toolkit's CSV."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE p AS SELECT * FROM read_parquet('{file}')")
    con.execute(
        f"""CREATE TABLE planted AS
            WITH g AS (SELECT grp, count(*) AS n FROM p WHERE grp >= 0 GROUP BY grp),
                 chosen AS (SELECT grp FROM (SELECT grp, sum(n) OVER (ORDER BY hash(grp, {seed}),
                            grp ROWS UNBOUNDED PRECEDING) AS upto FROM g) WHERE upto <= {size // 3})
            SELECT * FROM p WHERE grp IN (SELECT grp FROM chosen)"""
    )
    row = con.execute("SELECT count(*) FROM planted").fetchone()
    organic = size - (int(row[0]) if row else 0)
    con.execute(
        f"""CREATE TABLE s AS SELECT * FROM planted UNION ALL
            (SELECT * FROM p WHERE grp < 0 ORDER BY hash(post_id, {seed}), post_id
             LIMIT {organic})"""
    )
    sample = work / "sample.parquet"
    con.execute(f"COPY (SELECT * FROM s ORDER BY post_id) TO '{sample}'")
    table = con.execute(
        """SELECT post_id AS message_id, account_id AS user_id, account_id AS username,
                  '' AS repost_id, '' AS reply_id, text AS message,
                  CAST(epoch(ts) AS BIGINT) AS timestamp, '' AS urls
           FROM s ORDER BY post_id"""
    ).to_arrow_table()
    pcsv.write_csv(table, work / "sample.csv")
    return sample


def run_toolkit(work: Path, window: int, threshold: float) -> tuple[list[Measured], Path]:
    db, edges = work / "toolkit.db", work / "toolkit-edges.csv"
    base = [sys.executable, "-c", _TOOLKIT_CLI, str(db)]
    commands = [
        [*base, "preprocess", "--format", "csv", str(work / "sample.csv")],
        [*base, "compute", "co_similar_tweet", "--time_window", str(window)]
        + ["--similarity_threshold", str(threshold), "--min_edge_weight", "1"],
        [sys.executable, "-c", _TOOLKIT_EXPORT, str(db), str(edges)],
    ]
    runs = []
    for command in commands:
        run = run_measured(command)
        if run.code != 0:
            sys.stderr.write(run.stderr[-4000:])
            raise SystemExit(f"the toolkit failed (exit status {run.code}): {command[3:5]}")
        runs.append(run)
    return runs, edges


def compare_edges(ours: Path, theirs: Path) -> dict[str, int]:
    """Undirected account pairs each tool tied, and how many both did."""
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE a AS SELECT DISTINCT least(account_1, account_2) AS x,
            greatest(account_1, account_2) AS y FROM read_parquet('{ours}')"""
    )
    con.execute(
        f"""CREATE TABLE b AS SELECT DISTINCT least(source, target) AS x,
            greatest(source, target) AS y
            FROM read_csv('{theirs}', header = true, all_varchar = true) WHERE source <> target"""
    )
    row = con.execute(
        "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), "
        "(SELECT count(*) FROM (FROM a INTERSECT FROM b))"
    ).fetchone()
    assert row is not None
    return {"concerted": int(row[0]), "toolkit": int(row[1]), "both": int(row[2])}


# -- the command --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=50_000, help="planted sources")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=int, default=3600, help="seconds")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB's, in the child")
    parser.add_argument("--sample", type=int, default=20_000, help="posts for the toolkit")
    parser.add_argument("--library-sample", type=int, default=20_000)
    parser.add_argument("--no-peer", action="store_true", help="skip the toolkit")
    parser.add_argument("--no-libraries", action="store_true", help="skip datasketch/rensa")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "near_text")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from concerted.detectors.near_text import NearText

    threshold = NearText().threshold
    load_before = os.getloadavg()[0]
    out: Path = args.out.resolve()
    say(f"generating {args.posts:,} posts in {out} (reused when present) ...")
    data = generate(out, args.posts, args.accounts, args.groups, args.seed)
    work = out / f"run-n{args.posts}-s{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result: dict[str, Any] = {"workload": asdict(data) | {"file": str(data.file)}}
    try:
        say("concerted ...")
        ours = run_concerted(data.file, work, args.window, args.memory_limit)
        result["concerted"] = ours
        say("scoring ...")
        result["score"] = asdict(score(data.file, work / "clusters.parquet", threshold))
        if not args.no_libraries:
            say("datasketch and rensa ...")
            result["libraries"] = compare_libraries(data.file, args.library_sample)
        if not args.no_peer:
            say(f"the toolkit's co_similar_tweet on {args.sample:,} posts ...")
            peer_work = work / "peer"
            peer_work.mkdir()
            sample = make_sample(data.file, args.sample, peer_work, args.seed)
            mine = run_concerted(sample, peer_work, args.window, args.memory_limit)
            runs, edges = run_toolkit(peer_work, args.window, threshold)
            toolkit_seconds = sum(r.seconds for r in runs)
            result["peer"] = {
                "posts": args.sample,
                "concerted_seconds": mine["process_seconds"],
                "concerted_peak_rss_mib": mine["process_peak_rss_mib"],
                "toolkit_seconds": toolkit_seconds,
                "toolkit_cpu_seconds": sum(r.cpu_seconds for r in runs),
                "toolkit_peak_rss_mib": max(r.peak_rss_mib for r in runs),
                "toolkit_stages": {
                    name: r.seconds
                    for name, r in zip(("preprocess", "compute", "export"), runs, strict=True)
                },
                "ratio": toolkit_seconds / mine["process_seconds"],
                "account_pairs": compare_edges(work / "peer" / "edges.parquet", edges),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine()
    for package in ("rensa", "datasketch", "coordination-network-toolkit"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    result |= {
        "machine": info,
        "command": " ".join(["python -m benchmarks.near_text", *(argv or sys.argv[1:])]),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print(result, data, threshold)
    return 0


def _print(result: dict[str, Any], data: Workload, threshold: float) -> None:
    info, ours, s = result["machine"], result["concerted"], result["score"]
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; {info['os']}")
    print(
        f"Python {info['python']}, DuckDB {info['duckdb']}, concerted {info['concerted']}, "
        f"rensa {info['rensa']}, datasketch {info['datasketch']}, "
        f"coordination-network-toolkit {info['coordination-network-toolkit']}"
    )
    modified = " (src/ modified)" if info["src_modified"] else ""
    print(f"commit {info['commit']}{modified}; command: {result['command']}")
    load = result["load_average_1min"]
    print(f"load average (1 min) before {load['before']:.2f}, after {load['after']:.2f}")
    made = "reused" if data.reused else f"generated in {data.seconds:.1f} s"
    print(
        f"workload: {data.posts:,} posts by {data.accounts:,} accounts, {data.groups:,} "
        f"planted sources with {data.copies:,} edited copies ({made})"
    )
    print()
    notes = ours["notes"]
    print(
        f"concerted near_text: {ours['seconds']:.1f} s (CPU {ours['cpu_seconds']:.1f} s), "
        f"peak RSS {ours['peak_rss_mib']:,.0f} MiB; loading the posts into DuckDB first, "
        f"not counted: {ours['load_seconds']:.1f} s"
    )
    print(f"  clusters: {ours['clusters_seconds']:.1f} s")
    for name, seconds in ours["stages"].items():
        print(f"    {name}: {seconds:.1f} s")
    print(f"  near_text actions: {ours['actions_seconds']:.1f} s")
    print(f"  co-action on them: {ours['coaction_seconds']:.1f} s, {ours['edges']:,} edges")
    print(
        f"  texts {notes['texts']:,}; candidate pairs {notes['candidate_pairs']:,}; verified "
        f"{notes['verified_pairs']:,}; {notes['clustered_texts']:,} posts in "
        f"{notes['clusters']:,} clusters; {ours['near_text_actions']:,} near_text actions"
    )
    print(
        f"recall of planted pairs at Jaccard >= {GOAL_SIMILARITY}: {s['recall_at_goal']:.4f} "
        f"of {s['pairs_at_goal']:,}; at >= {threshold}: {s['recall_at_threshold']:.4f} of "
        f"{s['pairs_at_threshold']:,} ({s['planted_pairs']:,} planted pairs in all)"
    )
    print(
        f"precision of reported pairs (two posts in one cluster, against the planted "
        f"groups): {s['precision']:.4f} of {s['reported_pairs']:,}; organic posts in "
        f"clusters: {s['clustered_organic_posts']:,}"
    )
    if "libraries" in result:
        lib = result["libraries"]
        print()
        print(
            f"MinHash libraries on the same {lib['texts']:,} texts ({lib['num_perm']} values, "
            f"{lib['bands']} bands), CPU seconds:"
        )
        for name in ("datasketch", "rensa"):
            r = lib[name]
            print(
                f"  {name}: sketch {r['sketch']:.2f}, LSH {r['lsh']:.2f}, total "
                f"{r['total']:.2f}; candidate pairs {r['pairs']:,}"
            )
        r = lib["rensa_matrix"]
        print(
            f"  rensa as concerted calls it (pre-hashed shingles, digests to numpy, bands "
            f"in numpy): {r['total']:.2f}; candidate pairs {r['pairs']:,}"
        )
        print(f"  datasketch / rensa: {lib['ratio']:.1f}")
    if "peer" in result:
        p = result["peer"]
        pairs = p["account_pairs"]
        print()
        print(
            f"on {p['posts']:,} posts: concerted near_text (clusters + co-action) "
            f"{p['concerted_seconds']:.1f} s, peak RSS {p['concerted_peak_rss_mib']:,.0f} MiB; "
            f"toolkit co_similar_tweet {p['toolkit_seconds']:.1f} s (CPU "
            f"{p['toolkit_cpu_seconds']:.1f} s; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in p["toolkit_stages"].items())
            + f"), peak RSS {p['toolkit_peak_rss_mib']:,.0f} MiB"
        )
        print(
            f"account pairs: concerted {pairs['concerted']:,}, toolkit {pairs['toolkit']:,}, "
            f"both {pairs['both']:,}"
        )
        print(f"toolkit seconds / concerted seconds: {p['ratio']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
