"""The compiled loops of :class:`concerted.service.arrayscore.ArrayScorer`.

Each is a plain function over numpy arrays, compiled by numba (``cache=True``: the
machine code is kept beside this file, so only the first start of a new install pays
for compiling). The long ones (:func:`learn`, :func:`hold`, :func:`rehash`) release the
GIL, so the service's other threads run while a batch is learnt. They never allocate:
the caller makes room before each call, and a loop that runs short of room stops and
says where, so the caller grows the arrays and calls again from there.

**Queues.** Every per-reporter and per-target queue of times lives in a *pool*: chunks
of :data:`CHUNK` values, each queue a linked list of chunks (``keys[k]`` is its head
chunk, the offset of its first value in that chunk, its tail chunk and its length;
``nxt[c]`` the chunk after ``c``), freed chunks kept on a free list. A pool is the
tuple ``(keys, vals, aux, nxt, meta)``; ``aux`` holds a second value beside each one
(the recent reporters' numbers) or is one row when unused; ``meta`` is the free list's
head, its length, and the first chunk never used.

**Pairs.** A reporter pair is one int64 key (the lower number in the high 32 bits) in
an open-addressing table with linear probing, ``(keys, count, targets, meta)``: the
number of distinct targets the pair has co-reported while under ``min_shared``, and
those targets, or ``-1`` once qualified; ``meta`` is the live count. Two tables are
the two generations of ``pair_memory``; only the previous one ever loses a key (a pair
met again moves to the current one), and leaves a tombstone.

A pool of four chunks holding one queue:

>>> keys = np.array([[-1, 0, -1, 0]])
>>> vals, nxt, meta = np.zeros((4, CHUNK), np.int64), np.full(4, -1), np.array([-1, 0, 0])
>>> for v in range(10):
...     push(keys, vals, vals[:1], nxt, meta, 0, v, 0)
>>> pop_front(keys, nxt, meta, 0)
>>> read(keys, vals, nxt, 0).tolist(), pool_room(meta, 4)
([1, 2, 3, 4, 5, 6, 7, 8, 9], 2)
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Values a chunk of a pool holds.
CHUNK = 8
#: ``created`` of a report whose reporter's creation time is unknown.
NO_TIME = np.iinfo(np.int64).min
#: An empty slot of a pair table, and one whose pair moved to the current table.
EMPTY = -1
TOMBSTONE = -2
#: Indices into the parameters array ``prm`` of :func:`learn`.
P_WINDOW, P_PACE, P_KEEP, P_BURST, P_BASE, P_LAG, P_GAPS, P_MIN_SHARED, P_RECENT, P_MEMORY = range(
    10
)
#: A pool or a pair table, as the loops take it.
Arrays = tuple[np.ndarray, ...]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(32)


# Pools ---------------------------------------------------------------------------------


@numba.njit(cache=True)
def pool_room(meta: np.ndarray, chunks: int) -> int:
    """Chunks still free in a pool of ``chunks``."""
    return int(meta[1] + chunks - meta[2])


@numba.njit(cache=True)
def _alloc(nxt: np.ndarray, meta: np.ndarray) -> int:
    c = meta[0]
    if c >= 0:
        meta[0] = nxt[c]
        meta[1] -= 1
    else:
        c = meta[2]
        meta[2] += 1
    nxt[c] = -1
    return c  # type: ignore[no-any-return]


@numba.njit(cache=True)
def _free(nxt: np.ndarray, meta: np.ndarray, c: int) -> None:
    nxt[c] = meta[0]
    meta[0] = c
    meta[1] += 1


@numba.njit(cache=True)
def push(
    keys: np.ndarray,
    vals: np.ndarray,
    aux: np.ndarray,
    nxt: np.ndarray,
    meta: np.ndarray,
    k: int,
    v: int,
    a: int,
) -> None:
    """Append ``v`` (and ``a`` beside it, where the pool keeps ``aux``) to queue ``k``."""
    size = keys[k, 3]
    if size == 0:
        c = _alloc(nxt, meta)
        keys[k, 0] = c
        keys[k, 1] = 0
        keys[k, 2] = c
        o = 0
    else:
        pos = keys[k, 1] + size
        o = pos % CHUNK
        if o == 0:
            c = _alloc(nxt, meta)
            nxt[keys[k, 2]] = c
            keys[k, 2] = c
        else:
            c = keys[k, 2]
    vals[c, o] = v
    if aux.shape[0] == vals.shape[0]:
        aux[c, o] = a
    keys[k, 3] = size + 1


@numba.njit(cache=True)
def pop_front(keys: np.ndarray, nxt: np.ndarray, meta: np.ndarray, k: int) -> None:
    """Drop the first value of queue ``k`` (which has one)."""
    c = keys[k, 0]
    off = keys[k, 1] + 1
    size = keys[k, 3] - 1
    if size == 0:
        _free(nxt, meta, c)
        keys[k, 0] = -1
        keys[k, 1] = 0
        keys[k, 2] = -1
    elif off == CHUNK:
        keys[k, 0] = nxt[c]
        keys[k, 1] = 0
        _free(nxt, meta, c)
    else:
        keys[k, 1] = off
    keys[k, 3] = size


@numba.njit(cache=True)
def read(keys: np.ndarray, vals: np.ndarray, nxt: np.ndarray, k: int) -> np.ndarray:
    """Queue ``k``'s values, first to last."""
    size = keys[k, 3]
    out = np.empty(size, np.int64)
    c = keys[k, 0]
    o = keys[k, 1]
    for j in range(size):
        out[j] = vals[c, o]
        o += 1
        if o == CHUNK:
            o = 0
            c = nxt[c]
    return out


@numba.njit(cache=True)
def clear(keys: np.ndarray, nxt: np.ndarray, meta: np.ndarray, k: int) -> None:
    """Empty queue ``k``."""
    while keys[k, 3] > 0:
        pop_front(keys, nxt, meta, k)


# Pair tables ------------------------------------------------------------------------


@numba.njit(cache=True)
def _slot(pk: np.ndarray, key: int) -> int:
    """The slot holding ``key``, else the empty slot where it would go."""
    mask = pk.shape[0] - 1
    h = np.int64((np.uint64(key) * _GOLDEN) >> _SHIFT) & mask
    while True:
        k = pk[h]
        if k == key or k == EMPTY:
            return h  # type: ignore[no-any-return]
        h = (h + 1) & mask


@numba.njit(cache=True, nogil=True)
def rehash(
    pk: np.ndarray,
    pn: np.ndarray,
    pv: np.ndarray,
    nk: np.ndarray,
    nn: np.ndarray,
    nv: np.ndarray,
) -> None:
    """Move every live pair of one table into another (empty, larger) one."""
    for i in range(pk.shape[0]):
        key = pk[i]
        if key >= 0:
            h = _slot(nk, key)
            nk[h] = key
            nn[h] = pn[i]
            nv[h, :] = pv[i, :]


# The recurrence ---------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def learn(  # noqa: PLR0912, PLR0913, PLR0915
    start: int,
    seen: int,
    rep: np.ndarray,
    tgt: np.ndarray,
    cli: np.ndarray,
    ts: np.ndarray,
    oc: np.ndarray,
    recent: Arrays,
    ttimes: Arrays,
    rtimes: Arrays,
    pending: Arrays,
    outcomes: np.ndarray,
    clients: np.ndarray,
    mark: np.ndarray,
    t0: Arrays,
    t1: Arrays,
    rot: np.ndarray,
    prm: np.ndarray,
    created: np.ndarray,
    direct: np.ndarray,
    fast_gap: float,
    young_days: float,
    features: np.ndarray,
    counts: np.ndarray,
    others: np.ndarray,
) -> int:
    """Evaluate, then learn, reports ``start`` onwards in order: their features go
    to ``features`` (``FEATURES`` order) but for ``burst``, whose inputs (the
    target's reports in the burst window, and before it in the baseline) go to
    ``counts``. Returns the index of the first report not done: ``len(rep)``, or
    earlier when a pool or the current pair table needs room first.

    ``rot`` is ``[current table, next rotation, rotation set]``; ``created`` is
    ``NO_TIME`` where unknown.
    """
    window = prm[P_WINDOW]
    pace_w = prm[P_PACE]
    keep = prm[P_KEEP]
    burst = prm[P_BURST]
    base = prm[P_BASE]
    lag = prm[P_LAG]
    gaps = prm[P_GAPS]
    min_shared = prm[P_MIN_SHARED]
    most = prm[P_RECENT]
    memory = prm[P_MEMORY]
    rk, rv, ra, rn, rm = recent
    tk, tv, ta, tn, tm = ttimes
    qk, qv, qa, qn, qm = rtimes
    pk_, pv_, pa_, pn_, pm_ = pending
    n = rep.shape[0]
    for i in range(start, n):
        if (
            pool_room(rm, rn.shape[0]) < 2
            or pool_room(tm, tn.shape[0]) < 2
            or pool_room(qm, qn.shape[0]) < 2
            or pool_room(pm_, pn_.shape[0]) < 2
        ):
            return i
        cur, old = (t0, t1) if rot[0] == 0 else (t1, t0)
        if (cur[3][0] + most) * 10 > cur[0].shape[0] * 7:
            return i
        r = rep[i]
        g = tgt[i]
        t = ts[i]
        stamp = seen + i
        # The target's recent reporters (but this one), each once.
        n_others = 0
        size = rk[g, 3]
        if size > 0:
            since = t - window
            c = rk[g, 0]
            o = rk[g, 1]
            for _ in range(size):
                q = ra[c, o]
                if rv[c, o] >= since and q != r and mark[q] != stamp:
                    mark[q] = stamp
                    others[n_others] = q
                    n_others += 1
                o += 1
                if o == CHUNK:
                    o = 0
                    c = rn[c]
        co = 0
        ck, cn, cv, cm = cur
        ok, on, ov, om = old
        for j in range(n_others):
            q = others[j]
            key = (r << 32) | q if r < q else (q << 32) | r
            h = _slot(ck, key)
            if ck[h] == key:
                v = cn[h]
            elif om[0] > 0:
                h = _slot(ok, key)
                if ok[h] != key:
                    continue
                v = on[h]
            else:
                continue
            if v == -1 or v >= min_shared:
                co += 1
        # The reporter's gaps and pace.
        gap_count = 0
        gap_max = 0
        pace = 0
        size = qk[r, 3]
        if size > 0:
            first = size - gaps if size > gaps else 0
            gap_count = size - first
            # The gaps between the last ``gaps`` times and ``t`` (their maximum is
            # the same in any order), from the gap to ``t`` on.
            gap_max = t - qv[qk[r, 2], (qk[r, 1] + size - 1) % CHUNK]
            c = qk[r, 0]
            o = qk[r, 1]
            prev = 0
            pace_from = t - pace_w
            for j in range(size):
                x = qv[c, o]
                if x >= pace_from:
                    pace += 1
                if j > first and x - prev > gap_max:
                    gap_max = x - prev
                prev = x
                o += 1
                if o == CHUNK:
                    o = 0
                    c = qn[c]
        # The target's reports in the burst window and before it in the baseline.
        n_recent = 0
        n_base = 0
        size = tk[g, 3]
        if size > 0:
            burst_from = t - burst
            base_from = t - base
            c = tk[g, 0]
            o = tk[g, 1]
            for _ in range(size):
                x = tv[c, o]
                if x >= burst_from:
                    n_recent += 1
                elif x >= base_from:
                    n_base += 1
                o += 1
                if o == CHUNK:
                    o = 0
                    c = tn[c]
        # The reporter's decided reports, those pending counted once old enough.
        upheld = outcomes[r, 0]
        rejected = outcomes[r, 1]
        size = pk_[r, 3]
        if size > 0:
            before = t - lag
            c = pk_[r, 0]
            o = pk_[r, 1]
            for _ in range(size):
                x = pv_[c, o]
                if (x >> 1) < before:
                    if x & 1:
                        rejected += 1
                    else:
                        upheld += 1
                o += 1
                if o == CHUNK:
                    o = 0
                    c = pn_[c]
        # As FastScorer.evaluate computes them.
        features[i, 0] = 1.0 - math.exp(-co / 2.0)
        if gap_count >= 2:
            features[i, 1] = 1.0 / (1.0 + (gap_max / 1e6 / fast_gap) ** 4)
        else:
            features[i, 1] = 0.0
        features[i, 2] = 1.0 - math.exp(-pace / 10.0)
        features[i, 3] = 0.0
        counts[i, 0] = n_recent
        counts[i, 1] = n_base
        if created[i] != NO_TIME and t - created[i] >= 0:
            features[i, 4] = math.exp(-((t - created[i]) / 86_400e6) / young_days)
        else:
            features[i, 4] = 0.0
        features[i, 5] = 1.0 if direct[i] else 0.0
        features[i, 6] = math.exp(-clients[cli[i]] / 50.0) if cli[i] >= 0 else 0.0
        features[i, 7] = rejected / (upheld + rejected + 2.0)

        # Learn it.
        if memory >= 0:
            if rot[2] == 0:
                rot[1] = t + memory
                rot[2] = 1
            elif t >= rot[1]:
                # The current generation becomes the previous; the previous is dropped.
                rot[0] = 1 - rot[0]
                old = cur
                cur = t0 if rot[0] == 0 else t1
                cur[0][:] = EMPTY
                cur[3][0] = 0
                rot[1] = t + memory
                ck, cn, cv, cm = cur
                ok, on, ov, om = old
        for j in range(n_others):
            q = others[j]
            key = (r << 32) | q if r < q else (q << 32) | r
            h = _slot(ck, key)
            if ck[h] != key:
                found = False
                if om[0] > 0:
                    h2 = _slot(ok, key)
                    if ok[h2] == key:
                        found = True
                        ck[h] = key
                        cn[h] = on[h2]
                        cv[h, :] = ov[h2, :]
                        cm[0] += 1
                        ok[h2] = TOMBSTONE
                        om[0] -= 1
                if not found:
                    ck[h] = key
                    cm[0] += 1
                    if min_shared <= 1:
                        cn[h] = -1
                    else:
                        cn[h] = 1
                        cv[h, 0] = g
                    continue
            v = cn[h]
            if v == -1:
                continue
            had = False
            for m in range(v):
                if cv[h, m] == g:
                    had = True
                    break
            if had:
                continue
            if v + 1 >= min_shared:
                cn[h] = -1
            else:
                cv[h, v] = g
                cn[h] = v + 1
        push(rk, rv, ra, rn, rm, g, t, r)
        while rk[g, 3] > most:
            pop_front(rk, rn, rm, g)
        push(tk, tv, ta, tn, tm, g, t, 0)
        base_from = t - base
        while tk[g, 3] > 0 and tv[tk[g, 0], tk[g, 1]] < base_from:
            pop_front(tk, tn, tm, g)
        push(qk, qv, qa, qn, qm, r, t, 0)
        keep_from = t - keep
        while qk[r, 3] > gaps and qv[qk[r, 0], qk[r, 1]] < keep_from:
            pop_front(qk, qn, qm, r)
        if cli[i] >= 0:
            clients[cli[i]] += 1
        if oc[i] >= 0:
            push(pk_, pv_, pa_, pn_, pm_, r, 2 * t + oc[i], 0)
        before = t - lag
        while pk_[r, 3] > 0 and (pv_[pk_[r, 0], pk_[r, 1]] >> 1) < before:
            outcomes[r, pv_[pk_[r, 0], pk_[r, 1]] & 1] += 1
            pop_front(pk_, pn_, pm_, r)
    return n  # type: ignore[no-any-return]


@numba.njit(cache=True, nogil=True)
def hold(
    start: int,
    tgt: np.ndarray,
    ts: np.ndarray,
    features: np.ndarray,
    weights: np.ndarray,
    discount: float,
    hold_us: int,
    disc: Arrays,
    scores: np.ndarray,
    held: np.ndarray,
) -> int:
    """For reports ``start`` onwards in order: the score (the features' noisy-or),
    whether the target is held (a report on it was discounted within ``hold_us``),
    then the report's own discount learnt. Returns the first report not done, as
    :func:`learn`."""
    dk, dv, da, dn, dm = disc
    n = tgt.shape[0]
    for i in range(start, n):
        if pool_room(dm, dn.shape[0]) < 2:
            return i
        keep = 1.0
        for j in range(weights.shape[0]):
            keep = keep * (1.0 - weights[j] * features[i, j])
        score = min(max(1.0 - keep, 0.0), 1.0)
        scores[i] = score
        g = tgt[i]
        t = ts[i]
        size = dk[g, 3]
        found = False
        if size > 0:
            c = dk[g, 0]
            o = dk[g, 1]
            for _ in range(size):
                if t - dv[c, o] <= hold_us:
                    found = True
                    break
                o += 1
                if o == CHUNK:
                    o = 0
                    c = dn[c]
        held[i] = found
        if score >= discount:
            push(dk, dv, da, dn, dm, g, t, 0)
            hold_from = t - hold_us
            while dk[g, 3] > 0 and dv[dk[g, 0], dk[g, 1]] < hold_from:
                pop_front(dk, dn, dm, g)
    return n  # type: ignore[no-any-return]
