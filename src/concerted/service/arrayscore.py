"""The service's scorer over arrays: :class:`~concerted.service.fastscore.FastScorer`'s
definitions, its state in numpy arrays and its per-report recurrence compiled
(:mod:`concerted.service.kernels`).

One call scores and learns a whole batch in order: the reports' ids are interned to
integers in Python (the one per-report Python step left, :meth:`ArrayScorer.encode`),
a compiled loop evaluates each report against what came before it and learns it, the
features and scores are numpy expressions over the batch (the Poisson term is scipy's
``pdtr``, as ``FastScorer`` and the batch scores call it), and a second compiled loop
decides which targets are held, in order, from those scores. A property test holds
the results to ``FastScorer``'s reports processed one by one, to 1e-12.

**State.** Per target: its recent reporters (the last ``recent`` reports, with their
times), its times within ``baseline_window``, its discounted times within ``hold``;
per reporter: its times (at least ``gaps``, and those within ``pace_window``), its
decided reports still within ``decision_lag`` (time and outcome in one integer) and
its upheld and rejected counts; per client: its reports. The queues live in chunked
pools, the reporter pairs in open-addressing tables (:mod:`~concerted.service.kernels`
describes both); every array grows by doubling, in Python, between compiled calls.
``pair_memory`` keeps the pairs in two tables, the current and the previous
generation, as ``FastScorer`` keeps two dicts.

**Snapshots.** :meth:`ArrayScorer.arrays` gives the state as named arrays (only their
used parts) and :meth:`ArrayScorer.header` the rest (counters and the interned ids);
:meth:`ArrayScorer.restore` builds the scorer again from both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from concerted.config import FEATURES, ScoreSettings
from concerted.service import kernels
from concerted.service.fastscore import _pdtr

__all__ = ["ArrayScorer", "Batch", "Scored"]

_US = 1_000_000
NO_TIME = kernels.NO_TIME
_CODES = {"upheld": 0, "rejected": 1}
_POOLS = ("recent", "target_times", "reporter_times", "pending", "discounted")
# Pools keyed by target; the others by reporter.
_BY_TARGET = frozenset({"recent", "target_times", "discounted"})

Int64s = NDArray[np.int64]


class Batch(NamedTuple):
    """Reports as the compiled loops take them, one array a field."""

    reporter: Int64s
    target: Int64s
    #: The client's number, ``-1`` when the report names none.
    client: Int64s
    ts: Int64s
    #: The reporter's creation time, :data:`NO_TIME` when unknown.
    created: Int64s
    direct: NDArray[np.bool_]
    #: ``0`` upheld, ``1`` rejected, ``-1`` undecided.
    outcome: Int64s


class Scored(NamedTuple):
    """A batch's features (one row a report, :data:`~concerted.config.FEATURES`
    order), scores, and whether each report's target was held."""

    features: NDArray[np.float64]
    scores: NDArray[np.float64]
    held: NDArray[np.bool_]


def _pool(aux: bool) -> list[np.ndarray[Any, Any]]:
    keys = np.empty((0, 4), np.int64)
    chunks = 64
    vals = np.zeros((chunks, kernels.CHUNK), np.int64)
    second = np.zeros((chunks if aux else 1, kernels.CHUNK), np.int64)
    nxt = np.full(chunks, -1, np.int64)
    meta = np.array([-1, 0, 0], np.int64)
    return [keys, vals, second, nxt, meta]


def _table(capacity: int, width: int) -> list[np.ndarray[Any, Any]]:
    return [
        np.full(capacity, kernels.EMPTY, np.int64),
        np.zeros(capacity, np.int16),
        np.zeros((capacity, width), np.int32),
        np.zeros(1, np.int64),
    ]


def _grown(a: np.ndarray[Any, Any], rows: int, fill: Any) -> np.ndarray[Any, Any]:
    """``a`` with at least ``rows`` rows, doubling; new rows set to ``fill``."""
    have = a.shape[0]
    if have >= rows:
        return a
    size = max(have, 64)
    while size < rows:
        size *= 2
    out = np.empty((size, *a.shape[1:]), a.dtype)
    out[:have] = a
    out[have:] = fill
    return out


def _own(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``a`` as a plain writable array: itself, or a view of a map (numba takes no
    ``np.memmap``), or a copy of a read-only one."""
    a = a.view(np.ndarray)
    return a if a.flags.writeable and a.flags.c_contiguous else np.array(a)


class ArrayScorer:
    """Scores and learns batches of reports as
    :class:`~concerted.service.fastscore.FastScorer` does one by one.

    >>> s = ArrayScorer(ScoreSettings())
    >>> reports = [{"platform": "x", "reporter_id": u, "target_id": "t", "ts": i}
    ...            for i, u in enumerate(["a", "b", "a"])]
    >>> scored = s.learn_many(s.encode(reports))
    >>> scored.scores.round(3).tolist(), scored.held.tolist(), s.seen
    ([0.0, 0.099, 0.126], [False, False, False], 3)
    """

    def __init__(
        self, settings: ScoreSettings | None = None, pair_memory: float | None = None
    ) -> None:
        self.settings = s = settings or ScoreSettings()
        if s.min_shared > np.iinfo(np.int16).max:
            raise ValueError(f"min_shared {s.min_shared} is beyond what a pair counts")
        self.pair_memory = pair_memory
        self.seen = 0
        memory = -1 if pair_memory is None else round(pair_memory * _US)
        pace = round(s.pace_window * _US)
        self._prm = np.array(
            [
                round(s.window * _US),
                pace,
                max(pace, 1),
                round(s.burst_window * _US),
                round(s.baseline_window * _US),
                round(s.decision_lag * _US),
                s.gaps,
                s.min_shared,
                s.recent,
                memory,
            ],
            np.int64,
        )
        self._hold = round(s.hold * _US)
        self._scale = s.burst_window / (s.baseline_window - s.burst_window)
        self._weights = np.array([s.weights[f] for f in FEATURES], np.float64)
        self._direct = frozenset(s.direct_channels)
        self._reporter_ids: dict[tuple[str, str], int] = {}
        self._target_ids: dict[tuple[str, str], int] = {}
        self._client_ids: dict[tuple[str, str], int] = {}
        self._pools = {name: _pool(name == "recent") for name in _POOLS}
        self._outcomes = np.zeros((0, 2), np.int64)
        self._mark = np.empty(0, np.int64)
        self._clients = np.empty(0, np.int64)
        self._width = max(s.min_shared - 1, 1)
        # A table always has room for one report's pairs (``recent``) at 70% full.
        self._min_capacity = 1 << max(10, (2 * s.recent + 16).bit_length())
        self._tables = [_table(self._min_capacity, self._width) for _ in range(2)]
        #: The current table, the stream time of the next rotation, whether it is set.
        self._rot = np.zeros(3, np.int64)
        self._others = np.empty(s.recent, np.int64)

    # Ids ---------------------------------------------------------------------------

    def encode(self, reports: Sequence[Mapping[str, Any]]) -> Batch:
        """Reports (times in microseconds, as :func:`concerted.service.state.scorer_report`
        gives them) as arrays, their reporters, targets and clients numbered."""
        return self.encode_columns(
            [str(x["platform"]) for x in reports],
            [str(x["reporter_id"]) for x in reports],
            [str(x["target_id"]) for x in reports],
            [x.get("client") for x in reports],
            [int(x["ts"]) for x in reports],
            [x.get("reporter_created_at") for x in reports],
            [x.get("channel") for x in reports],
            [x.get("outcome") for x in reports],
        )

    def encode_columns(
        self,
        platform: Sequence[str],
        reporter: Sequence[str],
        target: Sequence[str],
        client: Sequence[Any],
        ts: Sequence[int],
        created: Sequence[int | None],
        channel: Sequence[str | None],
        outcome: Sequence[str | None],
    ) -> Batch:
        """:meth:`encode` of reports given one list a field (the same numbering).

        >>> s = ArrayScorer(ScoreSettings())
        >>> b = s.encode_columns(["x", "x"], ["a", "b"], ["t", "t"], [None, "c"], [1, 2],
        ...                      [None, 0], ["web", None], [None, "upheld"])
        >>> b.reporter.tolist(), b.target.tolist(), b.client.tolist(), b.outcome.tolist()
        ([0, 1], [0, 0], [-1, 0], [-1, 0])
        """
        reporters, targets, clients = self._reporter_ids, self._target_ids, self._client_ids
        rep: list[int] = []
        tgt: list[int] = []
        cli: list[int] = []
        for p, r, t, c in zip(platform, reporter, target, client, strict=True):
            key = (p, r)
            n = reporters.get(key)
            if n is None:
                n = reporters[key] = len(reporters)
            rep.append(n)
            key = (p, t)
            n = targets.get(key)
            if n is None:
                n = targets[key] = len(targets)
            tgt.append(n)
            if c is None:
                cli.append(-1)
            else:
                key = (p, str(c))
                n = clients.get(key)
                if n is None:
                    n = clients[key] = len(clients)
                cli.append(n)
        direct_channels = self._direct
        codes = _CODES
        return Batch(
            np.array(rep, np.int64),
            np.array(tgt, np.int64),
            np.array(cli, np.int64),
            np.array(ts, np.int64),
            np.array([NO_TIME if c is None else int(c) for c in created], np.int64),
            np.array([c in direct_channels for c in channel], np.bool_),
            np.array([codes.get(o, -1) for o in outcome], np.int64),  # type: ignore[arg-type]
        )

    def _fit(self) -> None:
        """Per-reporter, per-target and per-client arrays as long as the ids."""
        n_rep, n_tgt = len(self._reporter_ids), len(self._target_ids)
        for name, pool in self._pools.items():
            pool[0] = _grown(pool[0], n_tgt if name in _BY_TARGET else n_rep, (-1, 0, -1, 0))
        self._outcomes = _grown(self._outcomes, n_rep, 0)
        self._mark = _grown(self._mark, n_rep, -1)
        self._clients = _grown(self._clients, len(self._client_ids), 0)

    def _room(self, pool: list[np.ndarray[Any, Any]], chunks: int = 2) -> None:
        """Make at least ``chunks`` chunks free in ``pool``."""
        _, vals, aux, nxt, meta = pool
        while kernels.pool_room(meta, nxt.shape[0]) < chunks:
            size = max(nxt.shape[0] * 2, 64)
            pool[1] = vals = _grown(vals, size, 0)
            if aux.shape[0] > 1:
                pool[2] = aux = _grown(aux, size, 0)
            pool[3] = nxt = _grown(nxt, size, -1)

    def _grow_table(self) -> None:
        """Double the current pair table until one more report's pairs fit."""
        cur = int(self._rot[0])
        keys, counts, targets, live = self._tables[cur]
        size = keys.shape[0]
        need = int(live[0]) + self.settings.recent
        while need * 10 > size * 7:
            size *= 2
        if size == keys.shape[0]:
            return
        table = _table(size, self._width)
        kernels.rehash(keys, counts, targets, table[0], table[1], table[2])
        table[3][0] = live[0]
        self._tables[cur] = table

    # Scoring -----------------------------------------------------------------------

    def learn_many(self, batch: Batch) -> Scored:
        """Evaluate each report of ``batch`` against the reports learnt before it
        (those of earlier batches, then the batch's own earlier ones), then learn it."""
        n = batch.reporter.shape[0]
        if (
            len(self._reporter_ids) > self._mark.shape[0]
            or len(self._target_ids) > self._pools["recent"][0].shape[0]
            or len(self._client_ids) > self._clients.shape[0]
        ):
            self._fit()
        features = np.empty((n, len(FEATURES)), np.float64)
        counts = np.empty((n, 2), np.int64)
        pools = self._pools
        done = kernels.learn(*self._learn_args(0, batch, features, counts))
        while done < n:
            for name in ("recent", "target_times", "reporter_times", "pending"):
                self._room(pools[name])
            self._grow_table()
            done = kernels.learn(*self._learn_args(done, batch, features, counts))
        # The Poisson term is scipy's, called as FastScorer calls it (one report,
        # through its cache) or on the batch's arrays: the same function either way.
        if n == 1:
            if counts[0, 0] > 0:
                features[0, 3] = _pdtr(int(counts[0, 0]) - 1, (counts[0, 1] + 1.0) * self._scale)
        else:
            burst = counts[:, 0] > 0
            features[burst, 3] = special.pdtr(
                (counts[burst, 0] - 1).astype(np.float64), (counts[burst, 1] + 1.0) * self._scale
            )
        scores = np.empty(n, np.float64)
        held = np.empty(n, np.bool_)
        done = 0
        while True:
            done = kernels.hold(
                done,
                batch.target,
                batch.ts,
                features,
                self._weights,
                self.settings.discount,
                self._hold,
                tuple(pools["discounted"]),
                scores,
                held,
            )
            if done == n:
                break
            self._room(pools["discounted"])
        self.seen += n
        return Scored(features, scores, held)

    def _learn_args(
        self, start: int, batch: Batch, features: NDArray[np.float64], counts: Int64s
    ) -> tuple[Any, ...]:
        pools, tables = self._pools, self._tables
        return (
            start,
            self.seen,
            batch.reporter,
            batch.target,
            batch.client,
            batch.ts,
            batch.outcome,
            tuple(pools["recent"]),
            tuple(pools["target_times"]),
            tuple(pools["reporter_times"]),
            tuple(pools["pending"]),
            self._outcomes,
            self._clients,
            self._mark,
            tuple(tables[0]),
            tuple(tables[1]),
            self._rot,
            self._prm,
            batch.created,
            batch.direct,
            self.settings.fast_gap,
            self.settings.young_days,
            features,
            counts,
            self._others,
        )

    def learn_outcome(
        self, report: Mapping[str, Any], outcome: str | None, previous: str | None = None
    ) -> None:
        """A decision on a report learnt earlier (``FastScorer.learn_outcome``)."""
        if previous == outcome:
            return
        key = (str(report["platform"]), str(report["reporter_id"]))
        r = self._reporter_ids.get(key)
        if r is None:
            r = self._reporter_ids[key] = len(self._reporter_ids)
        self._fit()
        t = int(report["ts"])
        keys, vals, aux, nxt, meta = self._pools["pending"]
        pending = kernels.read(keys, vals, nxt, r).tolist()
        if previous in _CODES:
            code = _CODES[str(previous)]
            item = 2 * t + code
            if item in pending:
                pending.remove(item)
            elif self._outcomes[r, code] > 0:
                self._outcomes[r, code] -= 1
        if outcome in _CODES:
            at = len(pending)
            while at > 0 and pending[at - 1] >> 1 > t:
                at -= 1
            pending.insert(at, 2 * t + _CODES[str(outcome)])
        kernels.clear(keys, nxt, meta, r)
        self._room(self._pools["pending"], len(pending) // kernels.CHUNK + 2)
        keys, vals, aux, nxt, meta = self._pools["pending"]
        for v in pending:
            kernels.push(keys, vals, aux, nxt, meta, r, v, 0)

    @property
    def pairs(self) -> int:
        """Reporter pairs held now."""
        return int(self._tables[0][3][0] + self._tables[1][3][0])

    # Snapshots ---------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """What :meth:`restore` needs besides :meth:`arrays`: counters and the ids in
        the order of their numbers."""
        # Each kind's ids as two lists of strings (platforms, ids), which pickle and
        # unpickle several times faster than a list of millions of pairs.
        return {
            "seen": self.seen,
            "reporters": _columns(self._reporter_ids),
            "targets": _columns(self._target_ids),
            "clients": _columns(self._client_ids),
        }

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        """The state's arrays by name, cut to their used parts (views, not copies)."""
        out: dict[str, np.ndarray[Any, Any]] = {}
        n_rep, n_tgt = len(self._reporter_ids), len(self._target_ids)
        for name, (keys, vals, aux, nxt, meta) in self._pools.items():
            used = int(meta[2])
            out[f"{name}.keys"] = keys[: n_tgt if name in _BY_TARGET else n_rep]
            out[f"{name}.vals"] = vals[:used]
            out[f"{name}.aux"] = aux[:used] if aux.shape[0] > 1 else aux
            out[f"{name}.nxt"] = nxt[:used]
            out[f"{name}.meta"] = meta
        for i, (keys, counts, targets, live) in enumerate(self._tables):
            out[f"pairs{i}.keys"] = keys
            out[f"pairs{i}.counts"] = counts
            out[f"pairs{i}.targets"] = targets
            out[f"pairs{i}.live"] = live
        out["outcomes"] = self._outcomes[:n_rep]
        out["clients"] = self._clients[: len(self._client_ids)]
        out["rotation"] = self._rot
        return out

    @classmethod
    def restore(
        cls,
        settings: ScoreSettings,
        pair_memory: float | None,
        header: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray[Any, Any]],
    ) -> ArrayScorer:
        """The scorer :meth:`header` and :meth:`arrays` were taken from. It takes the
        arrays as they are, not copied (plain arrays, or copy-on-write maps of a
        snapshot file): nothing else may hold them."""
        s = cls(settings, pair_memory)
        s.seen = int(header["seen"])
        s._reporter_ids = _numbered(header["reporters"])
        s._target_ids = _numbered(header["targets"])
        s._client_ids = _numbered(header["clients"])
        for name in _POOLS:
            s._pools[name] = [
                _own(arrays[f"{name}.{part}"]) for part in ("keys", "vals", "aux", "nxt", "meta")
            ]
        for i in range(2):
            s._tables[i] = [
                _own(arrays[f"pairs{i}.{part}"]) for part in ("keys", "counts", "targets", "live")
            ]
        s._outcomes = _own(arrays["outcomes"])
        s._clients = _own(arrays["clients"])
        s._rot = _own(arrays["rotation"])
        s._mark = np.full(len(s._reporter_ids), -1, np.int64)
        return s


def _columns(ids: Mapping[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Interned ``(platform, id)`` keys, in the order of their numbers, as two lists.

    >>> _columns({("x", "a"): 0, ("y", "b"): 1})
    (['x', 'y'], ['a', 'b'])
    >>> _numbered(_columns({("x", "a"): 0, ("y", "b"): 1}))
    {('x', 'a'): 0, ('y', 'b'): 1}
    """
    return [k[0] for k in ids], [k[1] for k in ids]


def _numbered(columns: tuple[list[str], list[str]]) -> dict[tuple[str, str], int]:
    """The interned keys :func:`_columns` gave, numbered again in their order."""
    platforms, ids = columns
    return dict(zip(zip(platforms, ids, strict=True), range(len(ids)), strict=True))
