"""The live state: the online scorer and what each target looks like now.

Every acknowledged report is learnt once, in log order, by one
:class:`~concerted.scoring.OnlineScorer`; its result (score, recommendation,
signals) also updates the target's :class:`TargetView`. On restart the state is the
last snapshot plus a replay of the log after the snapshot's offset, which learns the
same reports in the same order and so scores the next report exactly as a server that
never stopped would.

**What bounds it.** The target views are evicted once their latest report is older
than the longest window of the scoring settings (the report stream's own clock, the
latest ``ts`` learnt, is "now"). The scorer itself offers no eviction: its per-target
and per-reporter deques are trimmed to their windows as it learns, but the maps that
hold them, the reporter pairs' shared targets, the client counts and the reporters'
outcome counts are kept for ever, because the batch scorer counts them over the whole
history; evicting them would change the scores. They grow with distinct reporters,
targets, co-reporting pairs and clients, not with reports.

Snapshots are pickles written by this process into its own state directory; a
snapshot is trusted exactly as far as that directory is.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concerted.scoring import FEATURES, OnlineScorer, ScoreSettings

__all__ = ["GuardState", "TargetView", "scorer_report"]

log = logging.getLogger(__name__)

_US = 1_000_000
#: A feature this strong is named in a report's ``signals`` (as in the batch scores).
SHOWN = 0.5
#: At most this many co-reporters are kept per target.
MAX_CO_REPORTERS = 100
#: At most this many of a target's latest reports are kept for its timeline.
TIMELINE = 200
_SNAPSHOT_VERSION = 3


def _micros(iso: str) -> int:
    delta = datetime.fromisoformat(iso) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / _US, UTC).isoformat().replace("+00:00", "Z")


def scorer_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The stored (JSON) report as the scorer takes it: times as microseconds."""
    created = report.get("reporter_created_at")
    return {
        "report_id": report["report_id"],
        "platform": report["platform"],
        "reporter_id": report["reporter_id"],
        "target_id": report["target_id"],
        "ts": _micros(report["ts"]),
        "channel": report.get("channel"),
        "client": report.get("client"),
        "outcome": report.get("outcome"),
        "reporter_created_at": _micros(created) if created else None,
    }


@dataclass(slots=True)
class TargetView:
    """What the reports so far say about one target."""

    first_us: int
    latest_us: int
    reports: int = 0
    recommendations: Counter[str] = field(default_factory=Counter)
    flagged_us: int | None = None
    co_reporters: set[str] = field(default_factory=set)
    signals: Counter[str] = field(default_factory=Counter)
    #: The latest reports' times and recommendations (the page draws them).
    timeline: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=TIMELINE))

    def add(self, t: int, reporter: str, recommendation: str, signals: Iterable[str]) -> None:
        self.timeline.append((t, recommendation))
        self.first_us = min(self.first_us, t)
        self.latest_us = max(self.latest_us, t)
        self.reports += 1
        self.recommendations[recommendation] += 1
        if recommendation != "count":
            self.flagged_us = t if self.flagged_us is None else max(self.flagged_us, t)
            if len(self.co_reporters) < MAX_CO_REPORTERS:
                self.co_reporters.add(reporter)
            self.signals.update(signals)

    def as_dict(
        self, platform: str, target_id: str, now_us: int, hold_us: int, timeline: bool = False
    ) -> dict[str, Any]:
        review = self.flagged_us is not None and now_us - self.flagged_us <= hold_us
        more = {"timeline": [[_iso(t), r] for t, r in self.timeline]} if timeline else {}
        return {
            "platform": platform,
            "target_id": target_id,
            "state": "review" if review else "normal",
            "reports": self.reports,
            "first_report": _iso(self.first_us),
            "latest_report": _iso(self.latest_us),
            "last_flagged": None if self.flagged_us is None else _iso(self.flagged_us),
            "recommendations": {
                r: self.recommendations[r] for r in ("count", "review", "discount")
            },
            "co_reporters": sorted(self.co_reporters),
            "signals": dict(sorted(self.signals.items())),
            **more,
        }


class GuardState:
    """The online scorer, the target views and the log offset they reflect."""

    def __init__(self, settings: ScoreSettings) -> None:
        self.settings = settings
        self.scorer = OnlineScorer(settings)
        self.targets: dict[tuple[str, str], TargetView] = {}
        self.offset = 0
        self.clock_us = 0
        s = settings
        self.horizon_us = round(
            max(s.window, s.pace_window, s.baseline_window, s.hold, s.decision_lag) * _US
        )
        self.hold_us = round(s.hold * _US)
        self._since_eviction = 0
        #: The outcome each decided report has now (posted to ``/v1/outcomes``).
        self.decided: dict[tuple[str, str], str] = {}
        #: The number of the last decision learnt (the log's decision sequence).
        self.decision = 0

    def score_and_learn(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """Score ``report`` (stored form) against what came before, then learn it."""
        x = scorer_report(report)
        values = self.scorer.features_one(x)
        score = self.scorer.score_one(x)
        # As scoring.recommend decides (recommend_one would score the report again).
        s = self.settings
        if score >= s.discount:
            recommendation = "discount"
        elif score >= s.review or self.scorer.held(x):
            recommendation = "review"
        else:
            recommendation = "count"
        self.scorer.learn_one(x)
        signals = [f for f in FEATURES if values[f] >= SHOWN]
        view = self._update(x, recommendation, signals)
        return {
            "report_id": x["report_id"],
            "platform": x["platform"],
            "target_id": x["target_id"],
            "score": score,
            "recommendation": recommendation,
            "signals": signals,
            "features": values,
            "target": view,
        }

    def replay(self, report: Mapping[str, Any], result: Mapping[str, Any], offset: int) -> None:
        """Learn a report from the log again, with the result it was answered with."""
        x = scorer_report(report)
        self.scorer.learn_one(x)
        self._update(x, str(result["recommendation"]), result.get("signals", ()), view=False)
        self.offset = offset

    def decide(self, report: Mapping[str, Any], outcome: str) -> None:
        """A moderator's decision on ``report`` (stored form, learnt earlier): the
        reporter's reputation counts it from then on, as the batch scorer counts a
        report's ``outcome`` (from ``decision_lag`` after the report's time)."""
        key = (str(report["platform"]), str(report["report_id"]))
        previous = self.decided.get(key, report.get("outcome"))
        self.scorer.learn_outcome(scorer_report(report), outcome, previous)
        self.decided[key] = outcome

    def _update(
        self, x: Mapping[str, Any], recommendation: str, signals: Iterable[str], view: bool = True
    ) -> dict[str, Any]:
        t = int(x["ts"])
        self.clock_us = max(self.clock_us, t)
        key = (str(x["platform"]), str(x["target_id"]))
        target = self.targets.get(key)
        if target is None:
            target = self.targets[key] = TargetView(first_us=t, latest_us=t)
        target.add(t, str(x["reporter_id"]), recommendation, signals)
        self._since_eviction += 1
        if self._since_eviction >= 10_000:
            self.evict()
        # Replay needs no answer: the target's dict is only built for a live report.
        return target.as_dict(*key, self.clock_us, self.hold_us) if view else {}

    def evict(self) -> int:
        """Drop the target views whose latest report is older than the longest window."""
        self._since_eviction = 0
        cutoff = self.clock_us - self.horizon_us
        old = [k for k, v in self.targets.items() if v.latest_us < cutoff]
        for k in old:
            del self.targets[k]
        return len(old)

    def target(self, platform: str, target_id: str) -> dict[str, Any] | None:
        view = self.targets.get((platform, target_id))
        if view is None:
            return None
        return view.as_dict(platform, target_id, self.clock_us, self.hold_us, timeline=True)

    def under_review(self, limit: int) -> list[dict[str, Any]]:
        """The targets in review now, the most recently flagged first."""
        flagged = [
            (v.flagged_us, k)
            for k, v in self.targets.items()
            if v.flagged_us is not None and self.clock_us - v.flagged_us <= self.hold_us
        ]
        flagged.sort(reverse=True)
        return [
            self.targets[k].as_dict(*k, self.clock_us, self.hold_us, timeline=True)
            for _, k in flagged[:limit]
        ]

    # Snapshots ---------------------------------------------------------------------

    def dump(self) -> bytes:
        """The state as bytes for :meth:`write_snapshot` (taken between two groups)."""
        return pickle.dumps(
            {
                "version": _SNAPSHOT_VERSION,
                "settings": asdict(self.settings),
                "offset": self.offset,
                "clock_us": self.clock_us,
                "scorer": self.scorer,
                "targets": self.targets,
                "decided": self.decided,
                "decision": self.decision,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @staticmethod
    def write_snapshot(path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename)."""
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: Path, settings: ScoreSettings) -> GuardState:
        """The state in snapshot ``path``, or an empty one when there is none or it was
        taken under other scoring settings (then the whole log is replayed)."""
        state = cls(settings)
        if not path.exists():
            return state
        try:
            data = pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            log.warning("the snapshot cannot be read; replaying the whole log")
            return state
        if (
            not isinstance(data, dict)
            or data.get("version") != _SNAPSHOT_VERSION
            or data.get("settings") != asdict(settings)
        ):
            return state
        state.scorer = data["scorer"]
        state.targets = data["targets"]
        state.decided = data["decided"]
        state.decision = int(data["decision"])
        state.offset = int(data["offset"])
        state.clock_us = int(data["clock_us"])
        return state
