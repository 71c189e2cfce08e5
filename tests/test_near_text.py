"""Near-duplicate text: clusters of edited copies, their actions and evidence."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import duckdb
import numpy as np
import pytest
import rensa
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.actions import SQL_MACROS, from_posts
from concerted.detectors import near_text
from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, SIGNAL_COLUMNS
from concerted.detectors.near_text import (
    ALL_PAIRS_BUCKET,
    SEED,
    NearText,
    _band_keys,
    _bucket_pairs,
    _Sets,
    near_text_actions,
    shingle_hashes,
)
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS
from concerted.simulation.text import edit_text, talking_points
from concerted.testing.planted import insert_rows
from concerted.textnorm import normalize, normalized_codepoints
from tests.budget import examples

START = datetime(2020, 6, 1, tzinfo=UTC)

# One message in each language, and copies of it as accounts paste them: another
# keyboard, case, emoji, a link or mention added, a word dropped or doubled.
MESSAGES: dict[str, list[str]] = {
    "en": [
        "Our brave soldiers guard us day and night, the critics you see online are paid agents",
        "OUR BRAVE SOLDIERS GUARD US DAY AND NIGHT!! the critics you see online are paid agents",
        "Our brave soldiers guard us day and night, critics you see online are paid agents 🇵🇰",
        "@watan Our brave soldiers guard us day & night, the critics you see online are paid "
        "agents https://t.co/x1",
    ],
    "ur": [
        "ہمارے بہادر جوان دن رات سرحدوں کی حفاظت کرتے ہیں، تنقید کرنے والے بیرونی ایجنٹ ہیں",
        "ہمارے بہادر جوان دن رات سرحدوں کی حفاظت کرتے ہیں۔ تنقید کرنے والے بیرونی ایجنٹ ہیں!!",
        "همارے بهادر جوان دن رات سرحدوں كي حفاظت كرتے هيں، تنقيد كرنے والے بيروني ايجنٹ هيں",
        "ہمارے بہادر جوان دن رات سرحدوں کی حِفاظت کرتے ہیں، تنقید کرنے والے بیرونی ایجنٹ ہیں ❤️",
    ],
    "hi": [
        "हमारे बहादुर जवान दिन रात सरहदों की हिफ़ाज़त करते हैं, आलोचक विदेशी एजेंट हैं",
        "हमारे बहादुर जवान दिन रात सरहदों की हिफाजत करते हैं। आलोचक विदेशी एजेंट हैं!!",
        "हमारे बहादुर जवान दिन रात सरहदों की हिफ़ाज़त करते हैं, आलोचक विदेशी एजेंट हैं 🙏",
    ],
    "ur-Latn": [
        "Hamare bahadur jawan din raat sarhadon ki hifazat karte hain, naqid foreign agent hain",
        "Hamare bahadur jawan din raat sarhadon ki hifazat karte hain!!! Naqid foreign agent hain",
        "hamare bahadur jawan din raat sarhadon ki hifazat karte hain naqid agent hain 💯",
    ],
}
ORGANIC = [
    "Lahore mein aaj bohat garmi hai, bijli bhi nahi hai aur pani bhi khatam",
    "Anyone watching the match tonight? Babar is in great form this series",
    "آج بازار میں آٹا اور چینی دونوں بہت مہنگے ہو گئے ہیں، کیا کریں",
    "आज ऑफिस में बहुत काम था, अब घर जाकर चाय पीनी है",
    "Eid Mubarak!",  # short: never compared
    "Eid Mubarak!!",
]


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '2GB'")
    return con


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = _connect()
    yield connection
    connection.close()


def _case(con: duckdb.DuckDBPyConnection, posts: Sequence[dict[str, Any]]) -> None:
    """``posts`` and the ``actions`` derived from them, in the contracts."""
    con.execute(SQL_MACROS)
    for name in ("posts", "actions"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(CONTRACTS[name].ddl())
    columns = ("post_id", "account_id", "platform", "ts", "text", "repost_of")
    rows = [tuple(p.get(c) for c in columns) for p in posts]
    insert_rows(con, "posts", columns, rows)
    con.execute(f"INSERT INTO actions {from_posts('posts')}")


def _posts(shuffle: int | None = None) -> list[dict[str, Any]]:
    """Every copy of each message by its own account, a minute apart, then organic
    posts (and a repost, which has no text action)."""
    posts: list[dict[str, Any]] = []
    for lang, copies in MESSAGES.items():
        for i, text in enumerate(copies):
            posts.append(
                {
                    "post_id": f"{lang}-{i}",
                    "account_id": f"{lang}-acct-{i}",
                    "platform": "facebook" if i % 2 == 0 else "instagram",
                    "ts": START + timedelta(minutes=i),
                    "text": text,
                }
            )
    for i, text in enumerate(ORGANIC):
        posts.append(
            {
                "post_id": f"o{i}",
                "account_id": f"person{i}",
                "platform": "facebook",
                "ts": START + timedelta(hours=i),
                "text": text,
            }
        )
    posts.append(
        {
            "post_id": "r1",
            "account_id": "person9",
            "platform": "facebook",
            "ts": START,
            "text": MESSAGES["en"][0],
            "repost_of": "en-0",
        }
    )
    if shuffle is not None:
        random.Random(shuffle).shuffle(posts)
    return posts


def _clusters(con: duckdb.DuckDBPyConnection, **settings: Any) -> list[tuple[Any, ...]]:
    found = NearText(**settings).clusters(con, "actions")
    return con.sql(
        f"SELECT platform, post_id, cluster_id, round(similarity, 9), representative, "
        f"cluster_posts, capped FROM {found.table} ORDER BY ALL"
    ).fetchall()


def test_copies_in_each_script_form_one_cluster(con: duckdb.DuckDBPyConnection) -> None:
    _case(con, _posts())
    rows = _clusters(con)
    clusters: dict[str, set[str]] = {}
    for _, post_id, cluster_id, *_ in rows:
        clusters.setdefault(cluster_id, set()).add(post_id)
    expected = {
        f"facebook:{lang}-0": {f"{lang}-{i}" for i in range(len(copies))}
        for lang, copies in MESSAGES.items()
    }
    assert clusters == expected
    # One representative per cluster, at similarity 1; the others at least near it.
    for cluster_id in clusters:
        members = [r for r in rows if r[2] == cluster_id]
        assert sum(r[4] for r in members) == 1
        assert all(r[3] == 1.0 for r in members if r[4])
        assert all(0.5 <= r[3] <= 1.0 for r in members)
        assert {r[5] for r in members} == {len(members)}


def test_actions_per_clustered_post_with_the_actors_given(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _case(con, _posts())
    # Relabel the actors, as a null model does: the new actions follow the relation.
    relabelled = (
        "(SELECT 'x-' || actor_id AS actor_id, platform, kind, object_id, ts, source_id "
        "FROM actions)"
    )
    table = near_text_actions(con, relabelled)
    rows = con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    assert [d[0] for d in con.sql(f"DESCRIBE {table}").fetchall()] == list(
        CONTRACTS["actions"].names
    )
    assert len(rows) == sum(len(c) for c in MESSAGES.values())
    expected = {
        (f"x-{lang}-acct-{i}", f"{lang}-{i}", f"facebook:{lang}-0")
        for lang, copies in MESSAGES.items()
        for i in range(len(copies))
    }
    assert {(r[0], r[5], r[3]) for r in rows} == expected
    assert {r[2] for r in rows} == {"near_text"}
    times = dict(con.sql("SELECT post_id, ts FROM posts").fetchall())
    assert all(r[4] == times[r[5]] for r in rows)


def test_row_order_and_repeated_runs_change_nothing() -> None:
    results = []
    for shuffle in (None, 1, 2):
        con = _connect()
        try:
            _case(con, _posts(shuffle))
            results.append(_clusters(con))
            results.append(_clusters(con))
        finally:
            con.close()
    assert all(r == results[0] for r in results)
    assert results[0]


def test_short_texts_and_single_posts_are_not_clustered(con: duckdb.DuckDBPyConnection) -> None:
    _case(con, _posts())
    clustered = {r[1] for r in _clusters(con)}
    assert not clustered & {f"o{i}" for i in range(len(ORGANIC))}
    # With a lower minimum length the two greetings are near duplicates.
    short = {r[1] for r in _clusters(con, min_length=8)}
    assert {"o4", "o5"} <= short


def test_large_clusters_are_capped_and_noted(con: duckdb.DuckDBPyConnection) -> None:
    _case(con, _posts())
    detector = NearText(max_cluster_posts=3)
    found = detector.clusters(con, "actions")
    capped = {c["cluster_id"]: c["posts"] for c in found.notes["capped_clusters"]}
    assert capped == {"facebook:en-0": 4, "facebook:ur-0": 4}
    table = detector.actions(con, "actions", found)
    objects = {r[0] for r in con.sql(f"SELECT DISTINCT object_id FROM {table}").fetchall()}
    assert objects == {"facebook:hi-0", "facebook:ur-Latn-0"}


def test_hashtags_stripped_or_kept(con: duckdb.DuckDBPyConnection) -> None:
    base = "The prices of flour and sugar went up again this week in every city"
    posts = [
        {
            "post_id": f"h{i}",
            "account_id": f"a{i}",
            "platform": "facebook",
            "ts": START,
            "text": f"{base} " + " ".join(f"#{tag}{i}" for tag in ("mehngai", "atta", "cheeni")),
        }
        for i in range(2)
    ]
    _case(con, posts)
    assert _clusters(con, threshold=0.95) == []
    assert len(_clusters(con, threshold=0.95, strip_hashtags=True)) == 2


def test_empty_in_empty_out(con: duckdb.DuckDBPyConnection) -> None:
    _case(con, [])
    detector = NearText()
    assert _clusters(con) == []
    evidence = detector.detect(con, "actions")
    for part in ("edges", "events", "signals"):
        assert getattr(evidence, part).fetchall() == []
    assert evidence.notes["candidate_pairs"] == 0


def test_detect_gives_near_text_evidence(con: duckdb.DuckDBPyConnection) -> None:
    _case(con, _posts())
    evidence = NearText(window=600).detect(con, "actions")
    assert evidence.edges.columns == list(EDGE_COLUMNS)
    assert evidence.events.columns == list(EVENT_COLUMNS)
    assert evidence.signals.columns == list(SIGNAL_COLUMNS)
    edges = evidence.edges.project("detector, layer, account_1, account_2, weight").fetchall()
    # Copies are a minute apart: every two accounts of one message, and no one else.
    expected = {
        frozenset((f"{lang}-acct-{i}", f"{lang}-acct-{j}"))
        for lang, copies in MESSAGES.items()
        for i in range(len(copies))
        for j in range(len(copies))
        if i < j
    }
    assert {frozenset((a, b)) for _, _, a, b, _ in edges} == expected
    assert len(edges) == len(expected)
    assert {(d, layer, w) for d, layer, _, _, w in edges} == {("near_text", "near_text", 1.0)}
    signals = evidence.signals.fetchall()
    assert len(signals) == sum(len(c) for c in MESSAGES.values())
    for detector, layer, entity, _, id_, score, value, related, first, last, detail in signals:
        assert (detector, layer, entity) == ("near_text", "near_text", "post")
        assert 0.0 <= score <= 1.0 and score == value
        assert related.split(":", 1)[1].split("-")[0] == id_.split("-")[0]
        assert first == last
        # Never the message itself.
        words = {w for c in MESSAGES.values() for t in c for w in normalize(t).split()}
        assert not {w for w in detail.lower().split() if len(w) > 3} & words
    evidence.release(con)


@pytest.mark.parametrize(
    "settings",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"shingle": 0},
        {"num_perm": 100, "bands": 30},
        {"bands": 0},
        {"min_length": 2, "shingle": 4},
        {"max_cluster_posts": 1},
        {"window": -1},
        {"min_weight": 0},
        {"batch_rows": 0},
        {"workers": 0},
    ],
)
def test_settings_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        NearText(**settings)


@pytest.mark.parametrize(("rate", "least"), [(0.08, 0.97), (0.2, 0.85)])
def test_simulated_edited_copies_reach_the_threshold(
    con: duckdb.DuckDBPyConnection, rate: float, least: float
) -> None:
    """Copies edited as the simulator's operators edit them (standard 0.08, hard 0.2 of
    tokens edited) land in their message's cluster; distinct messages do not merge."""
    rng = np.random.default_rng(11)
    posts: list[dict[str, Any]] = []
    for lang in ("en", "ur", "hi", "ur-Latn"):
        for m, message in enumerate(talking_points(rng, lang, 3)):
            for c in range(25):
                posts.append(
                    {
                        "post_id": f"{lang}-{m}-{c:02d}",
                        "account_id": f"{lang}-{c}",
                        "platform": "facebook",
                        "ts": START + timedelta(seconds=c),
                        "text": message if c == 0 else edit_text(rng, message, rate),
                    }
                )
    _case(con, posts)
    rows = _clusters(con)
    by_message: dict[str, dict[str, int]] = {}
    for _, post_id, cluster_id, *_ in rows:
        message = post_id.rsplit("-", 1)[0]
        counts = by_message.setdefault(message, {})
        counts[cluster_id] = counts.get(cluster_id, 0) + 1
    largest = sum(max(c.values()) for c in by_message.values())
    assert largest >= least * len(posts)
    owners = {cluster_id for c in by_message.values() for cluster_id in c}
    assert len(owners) == sum(len(c) for c in by_message.values())


@settings(max_examples=examples(60), deadline=None)
@given(keys=st.lists(st.integers(0, 6), min_size=0, max_size=2 * ALL_PAIRS_BUCKET + 10))
def test_buckets_pair_equal_keys_and_stay_connected(keys: list[int]) -> None:
    values = np.array(keys, dtype=np.uint64)
    a, b = _bucket_pairs(values)
    pairs = list(zip(a.tolist(), b.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    assert all(i < j and keys[i] == keys[j] for i, j in pairs)
    for key in set(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        mine = {(i, j) for i, j in pairs if keys[i] == key}
        if len(members) <= ALL_PAIRS_BUCKET:
            assert mine == {(i, j) for i in members for j in members if i < j}
        else:
            # Fewer pairs, but one connected bucket.
            assert len(mine) < 2 * len(members)
            reached = {members[0]}
            for _ in members:
                reached |= {j for i, j in mine if i in reached} | {
                    i for i, j in mine if j in reached
                }
            assert reached == set(members)


@settings(max_examples=examples(60), deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet="abcde fgایکहै", min_size=4, max_size=30).filter(
            lambda t: len(normalize(t)) >= 4
        ),
        min_size=2,
        max_size=8,
    )
)
def test_verification_is_the_exact_jaccard_of_shingles(texts: list[str]) -> None:
    cps, offsets = normalized_codepoints(texts)
    hashes, rows = shingle_hashes(cps, offsets, 3)
    sets = _Sets.build(hashes, rows)
    normal = [normalize(t) for t in texts]
    shingles = [{t[i : i + 3] for i in range(len(t) - 2)} for t in normal]
    n = len(texts)
    a = np.repeat(np.arange(n), n)
    b = np.tile(np.arange(n), n)
    got = sets.jaccard(a, b)
    expected = [
        len(shingles[i] & shingles[j]) / len(shingles[i] | shingles[j])
        for i, j in zip(a, b, strict=True)
    ]
    assert np.allclose(got, expected)
    # On threads, in steps of any size, the same values exactly.
    with ThreadPoolExecutor(3) as pool:
        assert np.array_equal(sets.jaccard(a, b, pool, step=3), got)


def test_shingles_need_the_length() -> None:
    cps, offsets = normalized_codepoints(["abcdef", "ab"])
    with pytest.raises(ValueError):
        shingle_hashes(cps, offsets, 3)


# Words of the four scripts, for copies that the threads must cluster as one thread does.
WORDS = [
    "pakistan",
    "zindabad",
    "فوج",
    "ہمارا",
    "फौज",
    "देश",
    "humari",
    "سلام",
    "🇵🇰",
    "JAI",
    "1,000",
    "@user",
    "https://t.co/x",
    "#tag",
    "Straße",
    "گ\u200cل",
    "baaad",
]


@st.composite
def _copied_posts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random messages, each pasted a few times with letters dropped, plus noise."""
    posts: list[dict[str, Any]] = []
    for m in range(draw(st.integers(1, 4))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=3, max_size=12))
        message = " ".join(words)
        for c in range(draw(st.integers(1, 5))):
            drop = draw(st.sets(st.integers(0, max(0, len(message) - 1)), max_size=3))
            text = "".join(ch for i, ch in enumerate(message) if i not in drop)
            posts.append({"post_id": f"m{m}-{c}", "text": text})
    for i, text in enumerate(draw(st.lists(st.text(max_size=40), max_size=6))):
        posts.append({"post_id": f"n{i}", "text": text})
    order = draw(st.permutations(range(len(posts))))
    return [
        {
            **posts[i],
            "account_id": f"acct{k % 5}",
            "platform": "facebook" if k % 3 else "instagram",
            "ts": START + timedelta(minutes=k),
        }
        for k, i in enumerate(order)
    ]


def _everything(con: duckdb.DuckDBPyConnection, near: NearText) -> tuple[Any, ...]:
    found = near.clusters(con, "actions")
    rows = con.sql(f"SELECT * FROM {found.table} ORDER BY ALL").fetchall()
    return rows, {k: v for k, v in found.notes.items() if k != "seconds"}


@settings(max_examples=examples(40), deadline=None)
@given(
    posts=_copied_posts(),
    batch_rows=st.integers(1, 9),
    pieces=st.integers(1, 4),
    sketch_rows=st.integers(1, 3),
    workers=st.integers(2, 4),
)
def test_threads_give_exactly_the_plain_result(
    posts: list[dict[str, Any]], batch_rows: int, pieces: int, sketch_rows: int, workers: int
) -> None:
    """Batches cut into pieces and prepared on threads, bands paired and candidates
    verified on threads: the same clusters, similarities and counts as one thread
    with whole batches."""
    con = _connect()
    try:
        _case(con, posts)
        results = []
        plain = NearText(min_length=8, shingle=3, workers=1)
        results.append(_everything(con, plain))
        threaded = NearText(min_length=8, shingle=3, workers=workers, batch_rows=batch_rows)
        with (
            patch.object(near_text, "_PREPARE_ROWS", pieces),
            patch.object(near_text, "_SKETCH_ROWS", sketch_rows),
        ):
            results.append(_everything(con, threaded))
        assert results[0] == results[1]
    finally:
        con.close()


@settings(max_examples=examples(60), deadline=None)
@given(
    keys=st.lists(st.lists(st.integers(0, 3), min_size=10, max_size=10), max_size=80),
    workers=st.integers(1, 3),
)
def test_bands_paired_on_threads_as_in_one(keys: list[list[int]], workers: int) -> None:
    band_keys = np.array(keys, dtype=np.uint64).reshape(len(keys), 10)
    near = NearText(num_perm=10, bands=10)
    plain = near._candidates(band_keys)
    with ThreadPoolExecutor(workers) as pool:
        threaded = near._candidates(band_keys, pool)
    assert all(np.array_equal(p, t) for p, t in zip(plain, threaded, strict=True))


@settings(max_examples=examples(60), deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=30),
    sketch_rows=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_band_keys_in_small_steps_as_in_one(sizes: list[int], sketch_rows: int, seed: int) -> None:
    """Digests read a few rows at a time into an unsigned-int array give the keys of
    one call to the library for all rows, converted as plain nested lists."""
    hashes = np.random.default_rng(seed).integers(0, 2**64 - 1, sum(sizes), dtype=np.uint64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        hashes, offsets.astype(np.uint64), 12, SEED
    )
    digests = np.array(matrix.to_rows(), dtype=np.uint64).reshape(len(sizes), 3, 4)
    expected = (digests * near_text._POSITION[:4]).sum(axis=2, dtype=np.uint64)
    with patch.object(near_text, "_SKETCH_ROWS", sketch_rows):
        assert np.array_equal(_band_keys(hashes, offsets, num_perm=12, bands=3), expected)
