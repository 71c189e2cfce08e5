"""Near-duplicate text: copies of one message, edited by hand, across accounts.

Operators paste one message from many accounts with small edits (a word dropped or
swapped, a letter doubled, an emoji added), in several scripts. Exact-text co-action
misses these copies, and comparing every two posts of a time window (as the QUT
toolkit's ``co_similar_tweet`` does) does not scale. This detector finds them in four
steps (the figures behind the defaults are in ``docs/near_text.md``):

1. **Normalise** each post's text (:mod:`concerted.textnorm`: NFKC, case, invisible
   characters, Arabic-script diacritics and letter variants, digits, links, mentions,
   punctuation and emoji), and drop texts shorter than ``min_length`` characters.
2. **Shingle and sketch**: the set of ``shingle``-character substrings of the text
   (characters, not words, so Urdu, Hindi and romanised Urdu need no word segmenter),
   sketched by MinHash (``num_perm`` values, from the ``rensa`` library).
3. **Candidates** by locality-sensitive hashing: the sketch is cut into ``bands``;
   two texts that agree on all values of one band are candidates. Texts whose sketches
   agree everywhere (the same text posted many times) are paired with the first of
   them only, and a band bucket with more than 64 texts pairs each with the bucket's
   first and next text, so that a viral text costs pairs in proportion to its copies,
   not to their square.
4. **Verify** each candidate pair by the exact Jaccard similarity of the two shingle
   sets (30-bit fingerprints of the shingles), keep those at or above ``threshold``,
   and group the posts into **clusters**: connected components of verified pairs.

A cluster is named by its smallest member (``platform:post_id``, the first in
(platform, post_id) order), so the result does not depend on row order. Its
**representative** is the member with the most verified neighbours (exact copies
count), the smallest on ties; each member's similarity is its exact Jaccard with the
representative.

:meth:`NearText.actions` turns every post of a cluster of two or more posts into a
``near_text`` action on the cluster (actor from the actions given, so a null model
that relabels actors relabels these too); :meth:`NearText.detect` runs co-action on
them. Clusters of more than ``max_cluster_posts`` posts are left out of the actions
and the signals (a viral text, not an operation) and listed in the notes.

Steps 1 and 2 run on pieces of a few thousand texts, and with ``workers`` above 1 the
pieces, the bands of step 3 and the pairs of step 4 are shared among threads; the
result is the same for any number of them (see ``docs/near_text.md``).
"""

from __future__ import annotations

import array
import functools
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import rensa
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from concerted.clock import Clock
from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, Evidence
from concerted.detectors.coaction import CoAction
from concerted.detectors.columnar import arrow_table
from concerted.errors import ConfigError
from concerted.schema import sql_literal
from concerted.textnorm import normalized_codepoints

__all__ = ["NearText", "NearTextClusters", "NearTextLayer", "near_text_actions"]

_ids = itertools.count()

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

#: The MinHash seed: fixed, so that a run is the same on every machine.
SEED = 20_200_601
# Multipliers of the shingle hash, one per position in the shingle (odd, 64-bit).
_POSITION = np.random.default_rng(SEED).integers(1 << 62, 1 << 63, 64, dtype=np.uint64) | 1
_MIX = np.uint64(0x9E3779B97F4A7C15)
#: A band bucket larger than this pairs each text with the first and the next only.
ALL_PAIRS_BUCKET = 64
# Texts sketched per call to the MinHash library. Its digests come back as lists of
# Python ints; a few hundred rows at a time stay in the CPU's cache, half the time of
# 16,384 at a time on the demo's texts.
_SKETCH_ROWS = 512
# Texts normalised and shingled per task: the flat arrays of a few thousand texts stay
# in cache (shingling 100,000 texts at once took several times as long), and the tasks
# spread evenly over the threads.
_PREPARE_ROWS = 8_192
# Candidate pairs verified per step.
_VERIFY_PAIRS = 100_000
# Bits of the shingle fingerprints compared exactly: two distinct shingles of a pair of
# texts share one with probability 2**-30, so a pair of 100-shingle texts is off by one
# shingle about once in 100,000 pairs.
_FINGERPRINT = 30

_T = TypeVar("_T")


def _now(fn: Callable[..., _T], *args: Any) -> Future[_T]:
    """``fn(*args)`` run at once, as a finished future (the path with one worker)."""
    future: Future[_T] = Future()
    future.set_result(fn(*args))
    return future


def _map(pool: Executor | None, fn: Callable[[Any], _T], items: Sequence[Any]) -> list[_T]:
    """``fn`` over ``items`` on ``pool`` (in this thread when none), results in order."""
    return [fn(item) for item in items] if pool is None else list(pool.map(fn, items))


def _mix(h: U64) -> U64:
    """Scramble 64-bit values in place (xor-shift-multiply), for well-spread bits."""
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return h


def shingle_hashes(cps: npt.NDArray[np.uint32], offsets: I64, k: int) -> tuple[U64, I64]:
    """64-bit hashes of every ``k``-character substring of each text, flat, and the
    offsets of each text's hashes. Every text must hold at least ``k`` characters.

    >>> from concerted.textnorm import normalized_codepoints
    >>> h, o = shingle_hashes(*normalized_codepoints(["abcd", "abcde"]), 3)
    >>> o.tolist(), bool(h[0] == h[2]), bool(h[1] == h[3])
    ([0, 2, 5], True, True)
    """
    n = len(cps)
    count = len(offsets) - 1
    if count == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(1, dtype=np.int64)
    lengths = np.diff(offsets)
    if lengths.min() < k:
        raise ValueError(f"every text needs at least {k} characters")
    m = n - k + 1
    c = cps.astype(np.uint64)
    h = c[:m] * _POSITION[0]
    for j in range(1, k):
        h += c[j : j + m] * _POSITION[j]
    valid = np.ones(m, dtype=np.bool_)
    ends = offsets[1:]
    for j in range(1, k):
        at = ends - j
        valid[at[at < m]] = False
    h = _mix(h[valid])
    return h, (offsets - np.arange(count + 1, dtype=np.int64) * (k - 1)).astype(np.int64)


def _band_keys(hashes: U64, offsets: I64, *, num_perm: int, bands: int) -> npt.NDArray[np.uint64]:
    """One key per band and text: a hash of the band's MinHash values."""
    count = len(offsets) - 1
    keys = np.empty((count, bands), dtype=np.uint64)
    rows = num_perm // bands
    weights = _POSITION[:rows].reshape(1, 1, rows)
    for start in range(0, count, _SKETCH_ROWS):
        stop = min(count, start + _SKETCH_ROWS)
        part = offsets[start : stop + 1]
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            hashes[part[0] : part[-1]], (part - part[0]).astype(np.uint64), num_perm, SEED
        )
        # The library gives its digests (32-bit values) as lists only; a flat list into
        # an unsigned-int array is the fastest way we found from them to numpy.
        flat = array.array("I", list(itertools.chain.from_iterable(matrix.to_rows())))
        digests = np.frombuffer(flat, dtype=np.uintc).reshape(stop - start, bands, rows)
        keys[start:stop] = (digests * weights).sum(axis=2, dtype=np.uint64)
    return keys


def _distinct(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The sorted distinct values (``np.unique`` is many times slower on numpy 2.4)."""
    s = np.sort(values)
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def _triangle(sizes: I64) -> tuple[I64, I64]:
    """Every pair (p, q), p < q, of positions 0..size-1 within each run, run by run."""
    counts = sizes * (sizes - 1) // 2
    total = int(counts.sum())
    first = np.repeat(np.cumsum(counts) - counts, counts)
    t = np.arange(total, dtype=np.int64) - first
    q = ((1 + np.sqrt(1 + 8 * t.astype(np.float64))) // 2).astype(np.int64)
    # Floating point may land one off for large t; correct it.
    q -= (q * (q - 1) // 2) > t
    q += ((q + 1) * q // 2) <= t
    p = t - q * (q - 1) // 2
    return p, q


def _bucket_pairs(keys: U64) -> tuple[I64, I64]:
    """Pairs of positions (i < j) whose keys are equal: all pairs in a bucket of at most
    :data:`ALL_PAIRS_BUCKET`, else each with the bucket's first and the next."""
    if len(keys) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    sizes = np.diff(np.concatenate([starts, [len(keys)]]))
    small = (sizes >= 2) & (sizes <= ALL_PAIRS_BUCKET)
    p, q = _triangle(sizes[small])
    base = np.repeat(starts[small], sizes[small] * (sizes[small] - 1) // 2)
    left = [base + p]
    right = [base + q]
    large = sizes > ALL_PAIRS_BUCKET
    if large.any():
        big_starts, big_sizes = starts[large], sizes[large] - 1
        bucket = np.repeat(np.arange(len(big_starts)), big_sizes)
        head = big_starts[bucket]
        member = (
            head
            + 1
            + np.arange(len(bucket))
            - np.repeat(np.cumsum(big_sizes) - big_sizes, big_sizes)
        )
        same = bucket[1:] == bucket[:-1]
        left += [head, member[:-1][same]]
        right += [member, member[1:][same]]
    a, b = order[np.concatenate(left)], order[np.concatenate(right)]
    return np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)


@dataclass
class _Sets:
    """Sorted, distinct 30-bit shingle fingerprints of some texts, as a sparse matrix
    with one row per text, for exact Jaccard similarities."""

    matrix: scipy.sparse.csr_matrix
    sizes: I64

    @classmethod
    def build(cls, hashes: U64, offsets: I64) -> _Sets:
        count = len(offsets) - 1
        index = np.int32 if len(hashes) < 2**31 else np.int64
        # 30-bit fingerprints keep the indices in 32 bits, several times faster.
        cols = (hashes >> np.uint64(64 - _FINGERPRINT)).astype(index)
        data = np.ones(len(cols), dtype=np.float32)
        matrix = scipy.sparse.csr_matrix(
            (data, cols, offsets.astype(index)), shape=(count, 1 << _FINGERPRINT)
        )
        # Sorts each row and merges repeated shingles (a row sort, not a global one).
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return cls(matrix, np.diff(matrix.indptr).astype(np.int64))

    def jaccard(
        self, a: I64, b: I64, pool: Executor | None = None, step: int = _VERIFY_PAIRS
    ) -> npt.NDArray[np.float64]:
        """Exact Jaccard similarity of rows ``a[i]`` and ``b[i]``, ``step`` pairs at a
        time, on ``pool``'s threads when given (scipy's sparse products release the GIL;
        each step writes its own slice, so the result does not depend on their order)."""
        out = np.empty(len(a), dtype=np.float64)

        def pairs(start: int) -> None:
            x, y = a[start : start + step], b[start : start + step]
            common = np.asarray(self.matrix[x].multiply(self.matrix[y]).sum(axis=1)).ravel()
            union = self.sizes[x] + self.sizes[y] - common
            out[start : start + len(x)] = np.where(union > 0, common / np.maximum(union, 1), 1.0)

        _map(pool, pairs, range(0, len(a), step))
        return out


@dataclass(frozen=True)
class _Piece:
    """A piece of a batch of texts, prepared: which were long enough to compare
    (``keep``), their shingle hashes and the offsets of each text's, their band keys
    when asked, and the seconds each step took."""

    keep: npt.NDArray[np.bool_]
    hashes: U64
    offsets: I64
    keys: U64
    seconds: dict[str, float]


def _prepare(
    texts: pa.Array[Any],
    *,
    strip_hashtags: bool,
    min_length: int,
    shingle: int,
    sketch: tuple[int, int] | None,
) -> _Piece:
    """Normalise, filter and shingle ``texts`` and, with ``sketch`` (``num_perm,
    bands``), compute their band keys; the hashes are dropped once the keys are made.
    A pure function of its arguments (each text's result depends on that text alone),
    so pieces can be prepared in any order, on any thread."""
    seconds: dict[str, float] = {}
    none = np.zeros((0, 0), dtype=np.uint64)
    empty = none.ravel()
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        seconds[name] = now - start
        start = now

    cps, offsets = normalized_codepoints(texts, strip_hashtags=strip_hashtags)
    lengths = np.diff(offsets)
    keep = lengths >= min_length
    if not keep.any():
        lap("normalise")
        return _Piece(keep, empty, np.zeros(1, np.int64), none, seconds)
    if not keep.all():
        cps = cps[np.repeat(keep, lengths)]
        offsets = np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)
    lap("normalise")
    hashes, hash_offsets = shingle_hashes(cps, offsets, shingle)
    lap("shingle")
    if sketch is None:
        return _Piece(keep, hashes, hash_offsets, none, seconds)
    num_perm, bands = sketch
    keys = _band_keys(hashes, hash_offsets, num_perm=num_perm, bands=bands)
    lap("minhash")
    return _Piece(keep, empty, np.zeros(1, np.int64), keys, seconds)


@dataclass(frozen=True)
class NearTextLayer:
    """Near-duplicate texts as one more co-action layer (:meth:`NearText.layer`):
    ``actions``, a temporary table of ``near_text`` actions in the actions contract, to
    pair with the others within ``window``; ``signals`` on the posts of its clusters;
    ``notes``; and ``temporary``, the tables to drop after."""

    actions: str
    signals: duckdb.DuckDBPyRelation
    window: float
    notes: dict[str, Any]
    temporary: tuple[str, ...]


@dataclass(frozen=True)
class NearTextClusters:
    """Where :meth:`NearText.clusters` left its result, on the same connection.

    ``table`` holds one row per post in a cluster of two or more posts: ``platform,
    post_id, cluster_id, similarity`` (exact Jaccard with the representative),
    ``representative`` (whether it is the one), ``cluster_posts`` and ``capped`` (the
    cluster has more than ``max_cluster_posts`` posts and is left out of actions and
    signals). ``notes`` counts what was done; ``temporary`` lists the tables to drop.
    """

    table: str
    notes: dict[str, Any] = field(default_factory=dict)
    temporary: tuple[str, ...] = ()


_CLUSTER_FIELDS: list[pa.Field[Any]] = [
    pa.field("doc", pa.int64()),
    pa.field("cluster_doc", pa.int64()),
    pa.field("similarity", pa.float64()),
    pa.field("representative", pa.bool_()),
    pa.field("cluster_posts", pa.int64()),
]
_CLUSTER_SCHEMA = pa.schema(_CLUSTER_FIELDS)


@dataclass(frozen=True, kw_only=True)
class NearText:
    """Accounts posting near-duplicate texts within ``window`` seconds of each other.

    ``threshold``: the exact Jaccard similarity of two texts' shingle sets at which
    they are near duplicates; ``shingle``: characters per shingle; ``num_perm`` and
    ``bands``: MinHash values and LSH bands (``num_perm`` a multiple of ``bands``);
    ``min_length``: texts shorter than this many characters after normalisation are
    not compared; ``strip_hashtags``: remove hashtags with their words (else only the
    ``#``); ``max_cluster_posts``: clusters larger than this are left out of actions
    and signals (``None``: no cap); ``window``, ``min_weight`` and ``max_object_pairs``
    are the co-action settings (see :class:`~concerted.detectors.coaction.CoAction`);
    ``batch_rows``: texts per batch read from DuckDB; ``workers``: threads that prepare
    texts, pair bands and verify candidates (``None``: the machine's cores, at most
    4; 1: all in the calling thread). The result does not depend on ``workers``.

    >>> NearText().name, NearText(threshold=0.7).threshold
    ('near_text', 0.7)
    """

    name: ClassVar[str] = "near_text"
    family: ClassVar[str] = "network"
    reads: ClassVar[tuple[str, ...]] = ("posts",)
    window: float = 3600.0
    threshold: float = 0.7
    shingle: int = 4
    num_perm: int = 120
    bands: int = 20
    min_length: int = 30
    strip_hashtags: bool = False
    max_cluster_posts: int | None = 10_000
    min_weight: int = 1
    max_object_pairs: int | None = 2_000_000
    batch_rows: int = 100_000
    workers: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", float(self.window))
        object.__setattr__(self, "threshold", float(self.threshold))
        if self.window < 0:
            raise ConfigError(f"near_text: window must not be negative, got {self.window}")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"near_text: threshold must be in (0, 1], got {self.threshold}")
        if not 1 <= self.shingle <= len(_POSITION):
            raise ConfigError(f"near_text: shingle must be 1 to {len(_POSITION)} characters")
        if self.bands < 1 or self.num_perm < self.bands or self.num_perm % self.bands:
            raise ConfigError(
                f"near_text: num_perm ({self.num_perm}) must be a positive multiple of "
                f"bands ({self.bands})"
            )
        if self.num_perm // self.bands > len(_POSITION):
            raise ConfigError(f"near_text: at most {len(_POSITION)} MinHash values per band")
        if self.min_length < self.shingle:
            raise ConfigError("near_text: min_length must be at least the shingle size")
        if self.max_cluster_posts is not None and self.max_cluster_posts < 2:
            raise ConfigError("near_text: max_cluster_posts must be at least 2 (or None)")
        if self.min_weight < 1:
            raise ConfigError("near_text: min_weight must be at least 1")
        if self.max_object_pairs is not None and self.max_object_pairs < 1:
            raise ConfigError("near_text: max_object_pairs must be at least 1 (or None)")
        if self.batch_rows < 1:
            raise ConfigError("near_text: batch_rows must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise ConfigError("near_text: workers must be at least 1 (or None)")

    # -- the clusters -----------------------------------------------------------------

    def _threads(self) -> int:
        return self.workers if self.workers is not None else min(4, os.cpu_count() or 1)

    def _texts(
        self,
        con: duckdb.DuckDBPyConnection,
        query: str,
        clock: Clock,
        pool: Executor | None,
        sketch: bool,
    ) -> Iterator[tuple[I64, _Piece]]:
        """Per piece of :data:`_PREPARE_ROWS` texts of ``query`` (``doc, text`` in doc
        order), in order: the docs long enough to compare and their :class:`_Piece`
        (band keys with ``sketch``, else shingle hashes). The pieces are prepared on
        ``pool`` while the main thread reads on; a few per thread are in flight at most,
        so memory stays bounded."""
        with clock.stage("read"):
            result = con.execute(query)
            # duckdb 1.5 renamed fetch_record_batch.
            read = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
            reader = iter(read(self.batch_rows))
        submit = pool.submit if pool is not None else _now
        depth = 2 * self._threads() if pool is not None else 1
        pending: deque[tuple[I64, Future[_Piece]]] = deque()
        prepare = functools.partial(
            _prepare,
            strip_hashtags=self.strip_hashtags,
            min_length=self.min_length,
            shingle=self.shingle,
            sketch=(self.num_perm, self.bands) if sketch else None,
        )
        more = True
        while more or pending:
            if more:
                with clock.stage("read"):
                    batch = next(reader, None)
                more = batch is not None
                if batch is not None:
                    docs = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
                    for start in range(0, len(docs), _PREPARE_ROWS):
                        texts = batch.column(1).slice(start, _PREPARE_ROWS)
                        piece = docs[start : start + _PREPARE_ROWS]
                        pending.append((piece, submit(prepare, texts)))
            while pending and (not more or len(pending) >= depth or pending[0][1].done()):
                docs, future = pending.popleft()
                with clock.stage("wait"):
                    prepared = future.result()
                for name, spent in prepared.seconds.items():
                    key = clock.prefix + name
                    clock.seconds[key] = round(clock.seconds.get(key, 0.0) + spent, 3)
                if prepared.keep.any():
                    yield docs[prepared.keep], prepared

    def clusters(self, con: duckdb.DuckDBPyConnection, actions: str) -> NearTextClusters:
        """The near-duplicate clusters of the posts behind the ``text`` actions in
        ``actions`` (see the module's notes), as a temporary table."""
        clock = Clock()
        n = next(_ids)
        docs, text, out = (f"_near_text_{k}_{n}" for k in ("docs", "text", "clusters"))
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {docs} AS
                SELECT (row_number() OVER (ORDER BY platform, post_id) - 1)::BIGINT AS doc,
                       platform, post_id
                FROM (SELECT DISTINCT p.platform, p.post_id
                      FROM posts p
                      SEMI JOIN (SELECT platform, source_id FROM {actions}
                                 WHERE kind = 'text') a
                        ON a.platform = p.platform AND a.source_id = p.post_id
                      WHERE p.text IS NOT NULL)"""
        )
        source = (
            f"SELECT d.doc, min(p.text) AS text FROM {docs} d JOIN posts p "
            f"ON p.platform = d.platform AND p.post_id = d.post_id {{where}} "
            f"GROUP BY d.doc ORDER BY d.doc"
        )
        row = con.execute(f"SELECT count(*) FROM {docs}").fetchone()
        total = int(row[0]) if row else 0

        threads = self._threads()
        pool = ThreadPoolExecutor(threads, "near_text") if threads > 1 else None
        try:
            # Pass 1: band keys of every text long enough.
            kept: list[I64] = []
            keys: list[npt.NDArray[np.uint64]] = []
            for batch_docs, batch in self._texts(
                con, source.format(where=""), clock, pool, sketch=True
            ):
                kept.append(batch_docs)
                keys.append(batch.keys)
            compared = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
            band_keys = np.concatenate(keys) if keys else np.zeros((0, self.bands), dtype=np.uint64)
            del kept, keys
            with clock.stage("candidates"):
                left, right = self._candidates(band_keys, pool)
            del band_keys
            left, right = compared[left], compared[right]
            del compared
            notes: dict[str, Any] = {
                "threshold": self.threshold,
                "shingle": self.shingle,
                "num_perm": self.num_perm,
                "bands": self.bands,
                "min_length": self.min_length,
                "strip_hashtags": self.strip_hashtags,
                "max_cluster_posts": self.max_cluster_posts,
                "texts": total,
                "candidate_pairs": len(left),
                "seconds": clock.seconds,
            }

            # Pass 2: exact Jaccard of the candidates, then connected components.
            clock.prefix = "verify: "
            table = self._verify(con, source, text, left, right, notes, clock, pool)
            clock.prefix = ""
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {out} AS
                SELECT d.platform, d.post_id,
                       c.platform || ':' || c.post_id AS cluster_id,
                       t.similarity, t.representative, t.cluster_posts,
                       {self._capped("t.cluster_posts")} AS capped
                FROM {table} t
                JOIN {docs} d ON d.doc = t.doc
                JOIN {docs} c ON c.doc = t.cluster_doc"""
        )
        capped = con.execute(
            f"""SELECT cluster_id, any_value(cluster_posts) AS posts FROM {out}
                WHERE capped GROUP BY cluster_id ORDER BY posts DESC, cluster_id"""
        ).fetchall()
        notes["capped_clusters"] = [{"cluster_id": c, "posts": int(p)} for c, p in capped]
        for name in (table, docs):
            con.execute(f"DROP TABLE IF EXISTS {name}")
        return NearTextClusters(table=out, notes=notes, temporary=(out,))

    def _capped(self, column: str) -> str:
        if self.max_cluster_posts is None:
            return "false"
        return f"({column} > {int(self.max_cluster_posts)})"

    def _candidates(
        self, band_keys: npt.NDArray[np.uint64], pool: Executor | None = None
    ) -> tuple[I64, I64]:
        """Candidate pairs of rows of ``band_keys`` (i < j), each once; the bands are
        bucketed four at a time on ``pool``'s threads when given."""
        count = len(band_keys)
        if count < 2:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        # Texts whose sketches agree everywhere: the same text, posted again. Only the
        # first of each such group takes part in banding; the rest pair with it.
        whole = band_keys[:, 0].copy()
        for j in range(1, self.bands):
            whole = _mix(whole * _MIX + band_keys[:, j])
        order = np.argsort(whole, kind="stable")
        new = np.concatenate([[True], whole[order][1:] != whole[order][:-1]])
        head = np.empty(count, dtype=np.int64)
        head[order] = order[new][np.cumsum(new) - 1]
        repeats = np.flatnonzero(head != np.arange(count))
        unique = np.flatnonzero(head == np.arange(count))

        def banded(bands: range) -> U64:
            """The pairs (packed in 64 bits) of some bands, sorted and distinct."""
            found: list[U64] = []
            for j in bands:
                a, b = _bucket_pairs(band_keys[unique, j])
                found.append(
                    (unique[a].astype(np.uint64) << np.uint64(32)) | unique[b].astype(np.uint64)
                )
            return _distinct(np.concatenate(found))

        # The union of sorted distinct sets does not depend on the order they finish in.
        groups = [range(j, min(j + 4, self.bands)) for j in range(0, self.bands, 4)]
        found = [(head[repeats].astype(np.uint64) << np.uint64(32)) | repeats.astype(np.uint64)]
        pairs = _distinct(np.concatenate(found + _map(pool, banded, groups)))
        return (pairs >> np.uint64(32)).astype(np.int64), (pairs & np.uint64(0xFFFFFFFF)).astype(
            np.int64
        )

    def _verify(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        name: str,
        left: I64,
        right: I64,
        notes: dict[str, Any],
        clock: Clock,
        pool: Executor | None = None,
    ) -> str:
        """Verify candidate pairs of docs, cluster them; a table of (doc, cluster_doc,
        similarity, representative, cluster_posts) named ``name``."""
        members = _distinct(np.concatenate([left, right]))
        count = len(members)
        result = _CLUSTER_SCHEMA.empty_table()
        notes["verified_pairs"] = notes["clustered_texts"] = notes["clusters"] = 0
        if count:
            con.register(f"{name}_members", pa.table({"doc": members}))
            where = f"SEMI JOIN {name}_members m ON m.doc = d.doc"
            query = source.format(where=where)
            found = list(self._texts(con, query, clock, pool, sketch=False))
            con.unregister(f"{name}_members")
            with clock.stage("jaccard"):
                docs = np.concatenate([f[0] for f in found])
                if not np.array_equal(docs, members):
                    raise AssertionError("near_text: the candidates' texts changed")
                shifts = np.cumsum([0] + [len(f[1].hashes) for f in found])
                sets = _Sets.build(
                    np.concatenate([f[1].hashes for f in found]),
                    np.concatenate(
                        [np.zeros(1, dtype=np.int64)]
                        + [f[1].offsets[1:] + shifts[i] for i, f in enumerate(found)]
                    ),
                )
                del found
                a, b = np.searchsorted(members, left), np.searchsorted(members, right)
                # Threads share the memory of one serial step.
                step = max(1, _VERIFY_PAIRS // self._threads())
                ok = sets.jaccard(a, b, pool, step) >= self.threshold
                a, b = a[ok], b[ok]
            with clock.stage("cluster"):
                result = self._cluster(members, a, b, sets, notes, pool)
        arrow_table(con, result, name)
        return name

    def _cluster(
        self,
        members: I64,
        a: I64,
        b: I64,
        sets: _Sets,
        notes: dict[str, Any],
        pool: Executor | None = None,
    ) -> pa.Table:
        """Connected components of the verified pairs (a, b) of rows of ``members``."""
        count = len(members)
        notes["verified_pairs"] = len(a)
        graph = scipy.sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), (count, count))
        _, label = connected_components(graph, directed=False)
        sizes = np.bincount(label)
        rows = np.flatnonzero(sizes[label] >= 2)
        # In each cluster, the representative first (most verified neighbours, then the
        # smallest doc); the smallest doc names the cluster.
        degree = np.bincount(np.concatenate([a, b]), minlength=count)
        ranked = rows[np.lexsort((rows, -degree[rows], label[rows]))]
        head = np.ones(len(ranked), dtype=np.bool_)
        head[1:] = label[ranked][1:] != label[ranked][:-1]
        representative = np.zeros(len(sizes), dtype=np.int64)
        representative[label[ranked[head]]] = ranked[head]
        smallest = np.full(len(sizes), count, dtype=np.int64)
        np.minimum.at(smallest, label[rows], rows)
        rep = representative[label[rows]]
        similarity = sets.jaccard(rows, rep, pool, max(1, _VERIFY_PAIRS // self._threads()))
        similarity[rows == rep] = 1.0
        notes["clustered_texts"] = len(rows)
        notes["clusters"] = int(head.sum())
        return pa.table(
            {
                "doc": members[rows],
                "cluster_doc": members[smallest[label[rows]]],
                "similarity": similarity,
                "representative": rows == rep,
                "cluster_posts": sizes[label[rows]].astype(np.int64),
            },
            schema=_CLUSTER_SCHEMA,
        )

    # -- actions and evidence ---------------------------------------------------------

    def actions(
        self, con: duckdb.DuckDBPyConnection, actions: str, clusters: NearTextClusters | None = None
    ) -> str:
        """A temporary table of ``near_text`` actions in the actions contract: one per
        ``text`` action whose post is in a cluster of two or more posts (not capped),
        on the cluster's id, with the actor, platform, time and source of the ``text``
        action."""
        found = clusters or self.clusters(con, actions)
        name = f"_near_text_actions_{next(_ids)}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {name} AS
                SELECT a.actor_id, a.platform, 'near_text' AS kind, c.cluster_id AS object_id,
                       a.ts, a.source_id
                FROM (SELECT * FROM {actions} WHERE kind = 'text') a
                JOIN {found.table} c ON c.platform = a.platform AND c.post_id = a.source_id
                WHERE NOT c.capped"""
        )
        if clusters is None:
            for table in found.temporary:
                con.execute(f"DROP TABLE IF EXISTS {table}")
        return name

    def signals(
        self, con: duckdb.DuckDBPyConnection, table: str, found: NearTextClusters
    ) -> duckdb.DuckDBPyRelation:
        """One signal per post of a cluster that two or more accounts posted: its
        similarity to the cluster's representative; ``table`` is what
        :meth:`actions` made from ``found``."""
        name = sql_literal(self.name)
        return con.sql(
            f"""
            WITH stats AS (
                SELECT c.cluster_id, count(DISTINCT (a.platform, a.actor_id)) AS accounts
                FROM {found.table} c JOIN {table} a
                  ON a.platform = c.platform AND a.source_id = c.post_id
                GROUP BY c.cluster_id)
            SELECT {name} AS detector, 'near_text' AS layer, 'post' AS entity,
                   c.platform, c.post_id AS id, c.similarity AS score,
                   c.similarity AS value, c.cluster_id AS related_id,
                   p.ts AS first_ts, p.ts AS last_ts,
                   'one of ' || c.cluster_posts || ' near-duplicate posts by ' || s.accounts
                   || ' accounts; Jaccard ' || printf('%.2f', c.similarity)
                   || ' of {self.shingle}-character shingles with the cluster''s '
                   || 'representative post' AS detail
            FROM {found.table} c
            JOIN stats s USING (cluster_id)
            JOIN posts p ON p.platform = c.platform AND p.post_id = c.post_id
            WHERE NOT c.capped AND s.accounts >= 2
            """
        )

    def layer(self, con: duckdb.DuckDBPyConnection, actions: str) -> NearTextLayer:
        """The clusters of the posts behind the ``text`` actions in ``actions``, as a
        co-action layer for the analysis to pair with the other kinds."""
        found = self.clusters(con, actions)
        table = self.actions(con, actions, found)
        return NearTextLayer(
            actions=table,
            signals=self.signals(con, table, found),
            window=self.window,
            notes=found.notes,
            temporary=(table, *found.temporary),
        )

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        found = self.clusters(con, actions)
        table = self.actions(con, actions, found)
        coaction = CoAction(
            window=self.window,
            kinds=("near_text",),
            min_weight=self.min_weight,
            max_object_pairs=self.max_object_pairs,
        ).detect(con, table)
        name = sql_literal(self.name)

        def renamed(relation: duckdb.DuckDBPyRelation, columns: tuple[str, ...]) -> Any:
            return relation.project(
                ", ".join(f"{name} AS detector" if c == "detector" else c for c in columns)
            )

        signals = self.signals(con, table, found)
        notes = {**found.notes, "coaction": coaction.notes}
        return Evidence(
            edges=renamed(coaction.edges, EDGE_COLUMNS),
            events=renamed(coaction.events, EVENT_COLUMNS),
            signals=signals,
            notes=notes,
            temporary=(*coaction.temporary, table, *found.temporary),
        )


def near_text_actions(con: duckdb.DuckDBPyConnection, actions: str, **settings: Any) -> str:
    """``near_text`` actions for the posts behind the ``text`` actions in ``actions``,
    as a temporary table in the actions contract, to append to the actions before the
    co-action pass; ``settings`` are :class:`NearText`'s.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE posts (post_id VARCHAR, platform VARCHAR, "
    ...     "text VARCHAR, ts TIMESTAMPTZ)")
    >>> _ = con.execute("CREATE TABLE actions (actor_id VARCHAR, platform VARCHAR, "
    ...     "kind VARCHAR, object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)")
    >>> message = "Our brave soldiers guard us day and night, stand with them"
    >>> for i, text in enumerate([message, message.upper() + "!!", "unrelated words here " * 3]):
    ...     _ = con.execute("INSERT INTO posts VALUES (?, 'x', ?, '2020-01-01')", [f"p{i}", text])
    ...     _ = con.execute("INSERT INTO actions VALUES (?, 'x', 'text', 'h', "
    ...                     "'2020-01-01', ?)", [f"u{i}", f"p{i}"])
    >>> table = near_text_actions(con, "actions")
    >>> con.sql(f"SELECT actor_id, kind, object_id FROM {table} ORDER BY ALL").fetchall()
    [('u0', 'near_text', 'x:p0'), ('u1', 'near_text', 'x:p0')]
    """
    return NearText(**settings).actions(con, actions)
