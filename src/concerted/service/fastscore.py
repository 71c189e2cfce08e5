"""The service's scorer: :class:`concerted.scoring.OnlineScorer` on plain Python
scalars, with compact state.

``OnlineScorer`` computes each report's features through the batch code (one-element
numpy arrays through :func:`concerted.scoring.features` and
:func:`~concerted.scoring.combine`), and ``learn_one`` scores the report again: about
150 µs a report. :class:`FastScorer` follows the same definitions step by step on
Python floats (``math.exp``; the Poisson distribution function is scipy's ``pdtr``
called on scalars, as the batch code calls it on arrays), evaluates each report once,
and gives the same features, scores and recommendations (a property test holds it to
``OnlineScorer`` on random streams, to 1e-12).

**State.** Reporters and targets are interned to integers once; a reporter pair is one
integer key (the two reporter numbers), and what the pair has co-reported is kept only
as far as the ``coreport`` feature reads it: whether the pair shares ``min_shared``
distinct targets yet. Until then the value is the targets seen (one integer, or a tuple
of fewer than ``min_shared``); after, ``-1``. ``OnlineScorer`` keeps a tuple of three
strings and a set of every shared target for each pair.

**Bounding the pairs.** The pairs are the state's bulk: they grow with co-reporting
pairs, not with reports, and the batch scorer counts them over the whole history, so
by default none is forgotten and the scores equal the batch scores exactly. With
``pair_memory`` (seconds of the stream's own clock) the pairs live in two generations:
every ``pair_memory`` the current one becomes the previous and the previous is
dropped, and a pair met again moves to the current one. A pair that has not
co-reported for between one and two ``pair_memory`` is forgotten; its later
co-reports count from zero, so scores then differ from the batch scores for pairs
that meet again after such a pause (longer than ``window``, the co-reporting window,
by design of the setting).
"""

from __future__ import annotations

import functools
import math
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from scipy import special

from concerted.config import FEATURES, ScoreSettings

__all__ = ["FastScorer"]

_US = 1_000_000
_DAY_US = 86_400 * _US
_QUALIFIED = -1
_SHIFT = 32


@functools.lru_cache(maxsize=1 << 16)
def _pdtr(k: int, expected: float) -> float:
    """scipy's Poisson distribution function on scalars, cached: its arguments are
    counts (a target's recent and baseline reports), which repeat from report to
    report, and one call costs more than the rest of the feature."""
    return float(special.pdtr(k, expected))


class FastScorer:
    """Scores reports one at a time as :class:`~concerted.scoring.OnlineScorer` does.

    Reports are mappings with times in microseconds (``ts``, and
    ``reporter_created_at`` or None), as :func:`concerted.service.state.scorer_report`
    gives them.

    >>> s = FastScorer(ScoreSettings())
    >>> r = {"report_id": "r1", "platform": "x", "reporter_id": "a", "target_id": "t",
    ...      "ts": 0}
    >>> values, score, held = s.evaluate(r)
    >>> score, held, s.seen
    (0.0, False, 0)
    >>> s.learn_one(r)
    >>> s.seen
    1
    """

    def __init__(
        self, settings: ScoreSettings | None = None, pair_memory: float | None = None
    ) -> None:
        self.settings = s = settings or ScoreSettings()
        self.seen = 0
        self.pair_memory_us = None if pair_memory is None else round(pair_memory * _US)
        self._window = round(s.window * _US)
        self._pace = round(s.pace_window * _US)
        self._keep = max(self._pace, 1)
        self._burst = round(s.burst_window * _US)
        self._base = round(s.baseline_window * _US)
        self._lag = round(s.decision_lag * _US)
        self._hold = round(s.hold * _US)
        self._scale = s.burst_window / (s.baseline_window - s.burst_window)
        self._weights = tuple(s.weights.items())
        self._direct = frozenset(s.direct_channels)
        # Interned ids: (platform, id) -> number, for reporters and targets apart.
        self._reporter_ids: dict[tuple[str, str], int] = {}
        self._target_ids: dict[tuple[str, str], int] = {}
        self._recent: dict[int, deque[tuple[int, int]]] = {}  # target: (t, reporter)
        self._target_times: dict[int, deque[int]] = {}
        self._reporter_times: dict[int, deque[int]] = {}
        self._pairs: dict[int, int | tuple[int, ...]] = {}
        self._old_pairs: dict[int, int | tuple[int, ...]] = {}
        self._rotate_at: int | None = None
        self._clients: Counter[tuple[str, str]] = Counter()
        self._outcomes: dict[int, list[int]] = {}
        self._pending: dict[int, deque[tuple[int, int]]] = {}
        self._discounted: dict[int, deque[int]] = {}
        # The last evaluation: (seen, report, others, score, reporter, target), reused
        # by learn_one.
        self._last: tuple[int, Mapping[str, Any], tuple[int, ...], float, int, int] | None = None

    # Ids -------------------------------------------------------------------------

    def _reporter(self, platform: str, reporter: str) -> int:
        key = (platform, reporter)
        n = self._reporter_ids.get(key)
        if n is None:
            n = self._reporter_ids[key] = len(self._reporter_ids)
        return n

    def _target(self, platform: str, target: str) -> int:
        key = (platform, target)
        n = self._target_ids.get(key)
        if n is None:
            n = self._target_ids[key] = len(self._target_ids)
        return n

    @property
    def pairs(self) -> int:
        """Reporter pairs held now."""
        return len(self._pairs) + len(self._old_pairs)

    def _qualified(self, v: int | tuple[int, ...]) -> bool:
        if v == _QUALIFIED:
            return True
        return (1 if isinstance(v, int) else len(v)) >= self.settings.min_shared

    # Scoring ---------------------------------------------------------------------

    def evaluate(self, report: Mapping[str, Any]) -> tuple[dict[str, float], float, bool]:
        """The report's features, score and whether its target is held, from the
        reports learnt so far (``OnlineScorer.features_one``, ``score_one``,
        ``held``)."""
        platform = str(report["platform"])
        r = self._reporter(platform, str(report["reporter_id"]))
        g = self._target(platform, str(report["target_id"]))
        t = int(report["ts"])
        s = self.settings
        recent_reports = self._recent.get(g)
        others: tuple[int, ...] = ()
        co = 0
        if recent_reports:
            since = t - self._window
            distinct = {q for ty, q in recent_reports if ty >= since}
            distinct.discard(r)
            others = tuple(distinct)
            pairs, old = self._pairs, self._old_pairs
            min_shared = s.min_shared
            for q in others:
                v = pairs.get((r << _SHIFT) | q if r < q else (q << _SHIFT) | r)
                if v is None:
                    if not old:
                        continue
                    v = old.get((r << _SHIFT) | q if r < q else (q << _SHIFT) | r)
                    if v is None:
                        continue
                # As _qualified: -1, or as many targets as min_shared.
                if v == _QUALIFIED or (1 if isinstance(v, int) else len(v)) >= min_shared:
                    co += 1
        times = self._reporter_times.get(r)
        gap_count = 0
        gap_max = 0
        pace = 0
        if times:
            # The gaps between the reporter's last ``gaps`` times and ``t``, latest
            # first (their maximum is the same in any order).
            gaps = s.gaps
            later = t
            gap_max = later - times[-1]
            for ty in reversed(times):
                if later - ty > gap_max:
                    gap_max = later - ty
                later = ty
                gap_count += 1
                if gap_count == gaps:
                    break
            pace_from = t - self._pace
            for ty in times:
                if ty >= pace_from:
                    pace += 1
        target_times = self._target_times.get(g)
        recent = baseline = 0
        if target_times:
            burst_from = t - self._burst
            base_from = t - self._base
            for ty in target_times:
                if ty >= burst_from:
                    recent += 1
                elif ty >= base_from:
                    baseline += 1
        created = report.get("reporter_created_at")
        client = report.get("client")
        known = self._outcomes.get(r)
        upheld, rejected = (known[0], known[1]) if known else (0, 0)
        pending = self._pending.get(r)
        if pending:
            before = t - self._lag
            for ty, code in pending:
                if ty < before:
                    if code:
                        rejected += 1
                    else:
                        upheld += 1
        if recent > 0:
            burst = _pdtr(max(recent - 1, 0), (baseline + 1.0) * self._scale)
        else:
            burst = 0.0
        if created is not None:
            age = t - int(created)
            young = math.exp(-(max(age, 0) / _DAY_US) / s.young_days) if age >= 0 else 0.0
        else:
            young = 0.0
        if client is not None:
            seen = self._clients[(platform, str(client))]
            rare = math.exp(-seen / 50.0)
        else:
            rare = 0.0
        values = {
            "coreport": 1.0 - math.exp(-co / 2.0),
            "automation": (
                1.0 / (1.0 + (gap_max / _US / s.fast_gap) ** 4) if gap_count >= 2 else 0.0
            ),
            "pace": 1.0 - math.exp(-pace / 10.0),
            "burst": burst,
            "young_account": young,
            "direct_channel": 1.0 if report.get("channel") in self._direct else 0.0,
            "rare_client": rare,
            "reputation": rejected / (upheld + rejected + 2.0),
        }
        keep = 1.0
        for name, weight in self._weights:
            keep = keep * (1.0 - weight * values[name])
        score = min(max(1.0 - keep, 0.0), 1.0)
        held = False
        discounted = self._discounted.get(g)
        if discounted:
            held = any(t - ty <= self._hold for ty in discounted)
        self._last = (self.seen, report, others, score, r, g)
        return values, score, held

    def score_one(self, report: Mapping[str, Any]) -> float:
        return self.evaluate(report)[1]

    def learn_one(self, report: Mapping[str, Any]) -> None:
        """Add the report to what later reports are scored against (it is evaluated
        first unless it was the last one evaluated)."""
        last = self._last
        if last is None or last[0] != self.seen or last[1] is not report:
            self.evaluate(report)
            last = self._last
        assert last is not None
        _, _, others, score, r, g = last
        s = self.settings
        platform = str(report["platform"])
        t = int(report["ts"])
        if self.pair_memory_us is not None:
            self._rotate(t)
        pairs = self._pairs
        min_shared = s.min_shared
        for q in others:
            key = (r << _SHIFT) | q if r < q else (q << _SHIFT) | r
            v = pairs.get(key)
            if v is None and self._old_pairs:
                v = self._old_pairs.pop(key, None)
            if v is None:
                pairs[key] = _QUALIFIED if min_shared <= 1 else g
            elif v == _QUALIFIED:
                pairs[key] = v
            elif isinstance(v, int):
                if v == g:
                    pairs[key] = v
                else:
                    pairs[key] = _QUALIFIED if min_shared <= 2 else (v, g)
            elif g in v:
                pairs[key] = v
            else:
                pairs[key] = _QUALIFIED if len(v) + 1 >= min_shared else (*v, g)
        recent = self._recent.get(g)
        if recent is None:
            recent = self._recent[g] = deque(maxlen=s.recent)
        recent.append((t, r))
        target_times = self._target_times.get(g)
        if target_times is None:
            target_times = self._target_times[g] = deque()
        target_times.append(t)
        base_from = t - self._base
        while target_times and target_times[0] < base_from:
            target_times.popleft()
        times = self._reporter_times.get(r)
        if times is None:
            times = self._reporter_times[r] = deque()
        times.append(t)
        keep_from = t - self._keep
        while len(times) > s.gaps and times[0] < keep_from:
            times.popleft()
        client = report.get("client")
        if client is not None:
            self._clients[(platform, str(client))] += 1
        outcome = report.get("outcome")
        pending = self._pending.get(r)
        if pending is None:
            pending = self._pending[r] = deque()
        if outcome == "upheld" or outcome == "rejected":
            pending.append((t, 0 if outcome == "upheld" else 1))
        before = t - self._lag
        while pending and pending[0][0] < before:
            _, code = pending.popleft()
            counts = self._outcomes.get(r)
            if counts is None:
                counts = self._outcomes[r] = [0, 0]
            counts[code] += 1
        if score >= s.discount:
            held = self._discounted.get(g)
            if held is None:
                held = self._discounted[g] = deque()
            held.append(t)
            hold_from = t - self._hold
            while held and held[0] < hold_from:
                held.popleft()
        self.seen += 1
        self._last = None

    def _rotate(self, t: int) -> None:
        assert self.pair_memory_us is not None
        if self._rotate_at is None:
            self._rotate_at = t + self.pair_memory_us
        elif t >= self._rotate_at:
            self._old_pairs = self._pairs
            self._pairs = {}
            self._rotate_at = t + self.pair_memory_us

    def learn_outcome(
        self, report: Mapping[str, Any], outcome: str | None, previous: str | None = None
    ) -> None:
        """A decision on a report learnt earlier (``OnlineScorer.learn_outcome``)."""
        codes = {"upheld": 0, "rejected": 1}
        if previous == outcome:
            return
        r = self._reporter(str(report["platform"]), str(report["reporter_id"]))
        t = int(report["ts"])
        if previous in codes:
            item = (t, codes[str(previous)])
            pending = self._pending.get(r)
            if pending is not None and item in pending:
                pending.remove(item)
            else:
                counts = self._outcomes.get(r)
                if counts is not None and counts[item[1]] > 0:
                    counts[item[1]] -= 1
        if outcome in codes:
            pending = self._pending.get(r)
            if pending is None:
                pending = self._pending[r] = deque()
            at = len(pending)
            while at > 0 and pending[at - 1][0] > t:
                at -= 1
            pending.insert(at, (t, codes[str(outcome)]))
        self._last = None


#: The features in the order the batch scores list them.
ORDER: tuple[str, ...] = FEATURES
