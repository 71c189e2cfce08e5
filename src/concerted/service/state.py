"""The live state: the online scorer and what each target looks like now.

Every acknowledged report is learnt once, in log order, by one
:class:`~concerted.service.arrayscore.ArrayScorer` (the scores of
:class:`~concerted.scoring.OnlineScorer`, its state in arrays, a batch at a time);
its result (score, recommendation, signals) also updates the target's
:class:`TargetView`. On restart the state is the last snapshot plus a replay of the
log after the snapshot's offset, which learns the same reports in the same order and
so scores the next report exactly as a server that never stopped would. Replay queues
the reports and the scorer learns them in batches (:data:`REPLAY_BATCH`), before
anything reads it.

**What bounds it.** The target views are evicted once their latest report is older
than the longest window of the scoring settings (the report stream's own clock, the
latest ``ts`` learnt, is "now"). The scorer's per-target and per-reporter deques are
trimmed to their windows as it learns; the reporter pairs, its bulk, are kept compact
(integer keys, only whether a pair has shared ``min_shared`` targets yet) and, by
default, for ever, because the batch scorer counts them over the whole history; with
``pair_memory`` (``[service] pair_memory``) pairs that stop co-reporting are forgotten
after one to two of it (see :mod:`concerted.service.fastscore`). The client counts and
the reporters' outcome counts are kept for ever; they grow with distinct clients and
reporters, not with reports.

**Snapshots** are one file: a magic line, a pickled header (version, settings, offset,
the target views, the decisions, the hindsight marks, the scorer's interned ids and a
directory of its arrays), then the scorer's arrays as raw bytes, mapped copy-on-write
when loaded (:data:`MAP_SNAPSHOT`) or each read into a fresh array. A snapshot is
written by this process into its own state directory and trusted exactly as far as
that directory is; one of another format or version (the pickles of earlier releases)
is refused, and the whole log replayed.
"""

from __future__ import annotations

import functools
import gc
import itertools
import logging
import operator
import os
import pickle
import threading
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np

from concerted.scoring import FEATURES, ScoreSettings
from concerted.service.arrayscore import ArrayScorer, Batch, Scored
from concerted.service.base import Answered, Learnt, StoredReport

__all__ = ["GuardState", "Group", "Results", "Snapshot", "TargetView", "scorer_report"]

log = logging.getLogger(__name__)

_US = 1_000_000
_encode = msgspec.json.Encoder().encode
#: A feature this strong is named in a report's ``signals`` (as in the batch scores).
SHOWN = 0.5
#: At most this many co-reporters are kept per target.
MAX_CO_REPORTERS = 100
#: Reports learnt between two evictions of old target views (:meth:`GuardState.evict`).
_EVICT_EVERY = 10_000
#: At most this many of a target's latest reports are kept for its timeline.
TIMELINE = 200
_SNAPSHOT_VERSION = 7
#: The first bytes of a snapshot file.
_MAGIC = b"concerted-state\n"
#: Arrays start at multiples of this in a snapshot file.
_ALIGN = 64
#: Whether a snapshot's arrays are mapped copy-on-write (read as the scorer touches
#: them) rather than read in full when it is loaded: at 1.09 million reports (1.2 GB
#: of arrays) loading took 0.5 s of CPU mapped, 3.5 s read (BENCHMARKS.md, "Service").
#: The file a process mapped stays on disk, unlinked, until the process ends or has
#: replaced every array it mapped (a later snapshot replaces the file, never changes
#: it in place).
MAP_SNAPSHOT = True
#: Replay queues this many reports before the scorer learns them in one batch.
REPLAY_BATCH = 8192


_PLATFORM, _REPORTER, _TARGET, _TS, _REPORT_ID = map(
    operator.itemgetter, ("platform", "reporter_id", "target_id", "ts", "report_id")
)


@functools.lru_cache(maxsize=1 << 16)
def _micros(iso: str) -> int:
    delta = datetime.fromisoformat(iso) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


@functools.lru_cache(maxsize=1 << 16)
def _iso(us: int) -> str:
    # Cached: a target's first, latest and last flagged times repeat from report to
    # report, and reports come many to a second.
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


@functools.lru_cache(maxsize=1 << 16)
def _iso_json(us: int) -> bytes:
    # An ISO time's text holds nothing JSON escapes.
    return b'"%b"' % _iso(us).encode()


#: A target's view as JSON (:meth:`TargetView.as_json`), and its state and sources.
_VIEW = (
    b'{"platform":%b,"target_id":%b,%b,"hindsight":%b,"reports":%d,"first_report":%b,'
    b'"latest_report":%b,"last_flagged":%b,"recommendations":{"count":%d,"review":%d,'
    b'"discount":%d},"co_reporters":%b,"signals":%b}'
)
_ONLINE = b'"state":"review","sources":["online"]'
_NO_SOURCE = b'"state":"normal","sources":[]'
_BOTH = b'"state":"review","sources":["online","hindsight"]'
_HINDSIGHT = b'"state":"review","sources":["hindsight"]'

#: A recommendation's code in a target's timeline (``time * 4 + code``).
_CODES = {"count": 0, "review": 1, "discount": 2}
_NAMES = ("count", "review", "discount")


@dataclass(slots=True, eq=False)
class TargetView:
    """What the reports so far say about one target.

    Compact, because a live state holds one per target reported within the longest
    window (hundreds of thousands): plain integers for the counts, the co-reporters and
    signals only once the target is flagged, and the timeline as one array of
    integers (``time * 4 + code``), which the cyclic garbage collector need not walk.
    Snapshots hold the views as columns (:func:`pack_views`).

    >>> view = TargetView(first_us=5, latest_us=5)
    >>> view.add(5, "u1", "count", [])
    >>> view.add(9, "u2", "review", ["coreport"])
    >>> view.reports, view.recommendations, sorted(view.co_reporters or ())
    (2, {'count': 1, 'review': 1, 'discount': 0}, ['u2'])
    >>> list(view.timeline)
    [(5, 'count'), (9, 'review')]
    """

    first_us: int
    latest_us: int
    reports: int = 0
    counted: int = 0
    reviewed: int = 0
    discounted: int = 0
    flagged_us: int | None = None
    co_reporters: set[str] | None = None
    signals: dict[str, int] | None = None
    #: The latest reports' times and recommendations (the page draws them), packed;
    #: trimmed to the latest :data:`TIMELINE` when twice as long.
    times: array[int] = field(default_factory=lambda: array("q"))
    # What every answer shows of ``co_reporters`` and ``signals``, built again only
    # when they change: a busy target is answered thousands of times a second, and
    # sorting its co-reporters for each answer cost more than scoring the report.
    # Never changed in place once built, so answers may share them.
    _co_shown: list[str] | None = None
    _signals_shown: dict[str, int] | None = None
    # The same two as JSON (:meth:`as_json`), made when first asked for after a change.
    _co_json: bytes | None = None
    _signals_json: bytes | None = None

    @property
    def recommendations(self) -> dict[str, int]:
        """The reports by recommendation."""
        return {"count": self.counted, "review": self.reviewed, "discount": self.discounted}

    @property
    def timeline(self) -> Iterator[tuple[int, str]]:
        """The latest (at most :data:`TIMELINE`) reports' times and recommendations."""
        for packed in self.times[-TIMELINE:]:
            t, code = divmod(packed, 4)
            yield t, _NAMES[code]

    def add(self, t: int, reporter: str, recommendation: str, signals: Iterable[str]) -> None:
        times = self.times
        times.append(t * 4 + _CODES[recommendation])
        if len(times) >= 2 * TIMELINE:
            del times[:-TIMELINE]
        if t < self.first_us:
            self.first_us = t
        if t > self.latest_us:
            self.latest_us = t
        self.reports += 1
        if recommendation == "count":
            self.counted += 1
            return
        if recommendation == "review":
            self.reviewed += 1
        else:
            self.discounted += 1
        self.flagged_us = t if self.flagged_us is None else max(self.flagged_us, t)
        co = self.co_reporters
        if co is None:
            co = self.co_reporters = set()
        if len(co) < MAX_CO_REPORTERS and reporter not in co:
            co.add(reporter)
            self._co_shown = self._co_json = None
        shown = self.signals
        for name in signals:
            if shown is None:
                shown = self.signals = {}
            shown[name] = shown.get(name, 0) + 1
            self._signals_shown = self._signals_json = None

    def as_dict(
        self,
        platform: str,
        target_id: str,
        now_us: int,
        hold_us: int,
        timeline: bool = False,
        hindsight: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The target as the API shows it. ``sources`` says what holds it in review:
        ``online`` (its reports' scores, the ``signals``), ``hindsight`` (a brigade the
        batch stage found, under ``hindsight``), or both.

        >>> view = TargetView(first_us=0, latest_us=0)
        >>> view.add(0, "u1", "review", ["coreport"])
        >>> d = view.as_dict("x", "t", 0, 10, hindsight={"source": "hindsight"})
        >>> d["state"], d["sources"], d["signals"]
        ('review', ['online', 'hindsight'], {'coreport': 1})
        """
        flagged = self.flagged_us
        online = flagged is not None and now_us - flagged <= hold_us
        if hindsight is None:
            sources = ["online"] if online else []
        else:
            sources = ["online", "hindsight"] if online else ["hindsight"]
        view: dict[str, Any] = {
            "platform": platform,
            "target_id": target_id,
            "state": "review" if sources else "normal",
            "sources": sources,
            "hindsight": None if hindsight is None else dict(hindsight),
            "reports": self.reports,
            "first_report": _iso(self.first_us),
            "latest_report": _iso(self.latest_us),
            "last_flagged": None if flagged is None else _iso(flagged),
            "recommendations": {
                "count": self.counted,
                "review": self.reviewed,
                "discount": self.discounted,
            },
            "co_reporters": self._co(),
            "signals": self._shown_signals(),
        }
        if timeline:
            view["timeline"] = [[_iso(t), r] for t, r in self.timeline]
        return view

    def as_json(
        self,
        platform: str,
        target_id: str,
        now_us: int,
        hold_us: int,
        hindsight: Mapping[str, Any] | None = None,
    ) -> bytes:
        """:meth:`as_dict` (without the timeline) as JSON: the bytes msgspec gives the
        dict, made without it (a batch's answer shows thousands of views).

        >>> view = TargetView(first_us=0, latest_us=0)
        >>> view.add(0, "u1", "review", ["coreport"])
        >>> view.as_json("x", "t", 0, 10) == _encode(view.as_dict("x", "t", 0, 10))
        True
        """
        flagged = self.flagged_us
        online = flagged is not None and now_us - flagged <= hold_us
        if hindsight is None:
            state_sources = _ONLINE if online else _NO_SOURCE
            marked = b"null"
        else:
            state_sources = _BOTH if online else _HINDSIGHT
            marked = _encode(dict(hindsight))
        co = self._co_json
        if co is None:
            co = self._co_json = _encode(self._co())
        signals = self._signals_json
        if signals is None:
            signals = self._signals_json = _encode(self._shown_signals())
        return _VIEW % (
            _encode(platform),
            _encode(target_id),
            state_sources,
            marked,
            self.reports,
            _iso_json(self.first_us),
            _iso_json(self.latest_us),
            b"null" if flagged is None else _iso_json(flagged),
            self.counted,
            self.reviewed,
            self.discounted,
            co,
            signals,
        )

    def _co(self) -> list[str]:
        if self._co_shown is None:
            self._co_shown = sorted(self.co_reporters or ())
        return self._co_shown

    def _shown_signals(self) -> dict[str, int]:
        if self._signals_shown is None:
            self._signals_shown = dict(sorted((self.signals or {}).items()))
        return self._signals_shown


_decode_result = msgspec.json.Decoder(dict[str, Any]).decode
#: Bit ``k`` of a report's signal mask: its feature ``k`` is shown (at least SHOWN).
_BITS = np.array([1 << k for k in range(len(FEATURES))], np.int64)
#: A signal mask's names (FEATURES order) and the same as JSON.
_SIGNALS: list[tuple[list[str], bytes]] = [
    (names, _encode(names))
    for names in (
        [f for k, f in enumerate(FEATURES) if mask >> k & 1] for mask in range(1 << len(FEATURES))
    )
]
#: Each signal mask's names as JSON (:data:`_SIGNALS`), by mask.
_SIGNALS_JSON = tuple(encoded for _, encoded in _SIGNALS)


#: A result as msgspec encodes it from structs (:func:`_encode_results`): the fields
#: of the dict ``{report_id, platform, target_id, score, recommendation, signals,
#: features}`` in its order, the signals as JSON already. Never tracked by the garbage
#: collector: they hold text and numbers only.
_Features = msgspec.defstruct("_Features", [(f, float) for f in FEATURES], gc=False)
_Result = msgspec.defstruct(
    "_Result",
    [
        ("report_id", str),
        ("platform", str),
        ("target_id", str),
        ("score", float),
        ("recommendation", str),
        ("signals", msgspec.Raw),
        ("features", _Features),
    ],
    gc=False,
)
_SIGNALS_RAW = tuple(msgspec.Raw(encoded) for encoded in _SIGNALS_JSON)


def _encode_results(
    report_id: Sequence[str],
    platform: Sequence[str],
    target: Sequence[str],
    scored: Any,
    codes: Sequence[int],
    masks: Sequence[int],
) -> list[bytes]:
    """Each result's JSON (without its view): the bytes ``_encode`` gives the dict
    ``{report_id, platform, target_id, score, recommendation, signals, features}``.
    Encoded from structs made from columns zipped in C: no Python runs a report (a
    quarter less than filling a template of bytes)."""
    return list(
        map(
            _encode,
            map(
                _Result,
                report_id,
                platform,
                target,
                scored.scores.tolist(),
                map(_NAMES.__getitem__, codes),
                map(_SIGNALS_RAW.__getitem__, masks),
                map(_Features, *scored.features.T.tolist()),
            ),
        )
    )


class Group(NamedTuple):
    """A group of reports on its way through the scorer (:meth:`GuardState.begin_group`):
    its columns, times in microseconds, and the scorer's arrays of it."""

    report_id: list[str]
    platform: list[str]
    reporter: list[str]
    target: list[str]
    ts: list[int]
    batch: Batch


class Results:
    """A group's results, a column each: every result's JSON without its target's view
    (``encoded``, what the log stores) and its recommendation. A result as a dict is
    decoded from its JSON only where one is read (a repeat's answer, a test): a
    batch's results are stored and answered as bytes.

    >>> r = Results([b'{"score":0.5,"recommendation":"count"}'], ["count"])
    >>> len(r), r[0]["score"], [x["recommendation"] for x in r]
    (1, 0.5, ['count'])
    """

    __slots__ = ("encoded", "recommendations")

    def __init__(self, encoded: list[bytes], recommendations: list[str] | None = None) -> None:
        self.encoded = encoded
        self.recommendations: list[str] = [] if recommendations is None else recommendations

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return _decode_result(self.encoded[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (_decode_result(e) for e in self.encoded)


def pack_views(views: Mapping[tuple[str, str], TargetView]) -> tuple[Any, ...]:
    """``views`` as a snapshot's header holds them: columns of plain values (a list
    per field, the timelines as one array), which pickle and unpickle far faster than
    hundreds of thousands of objects. :func:`unpack_views` gives them back.

    >>> a = TargetView(first_us=1, latest_us=1)
    >>> a.add(1, "u1", "discount", ["pace"])
    >>> b = TargetView(first_us=2, latest_us=2)
    >>> b.add(2, "u2", "count", [])
    >>> back = unpack_views(pack_views({("x", "a"): a, ("x", "b"): b}))
    >>> [(k, v.reports, v.recommendations["discount"], v.signals, list(v.timeline))
    ...  for k, v in back.items()]  # doctest: +NORMALIZE_WHITESPACE
    [(('x', 'a'), 1, 1, {'pace': 1}, [(1, 'discount')]),
     (('x', 'b'), 1, 0, None, [(2, 'count')])]
    """
    vals = list(views.values())
    columns = [
        [v.first_us for v in vals],
        [v.latest_us for v in vals],
        [v.reports for v in vals],
        [v.counted for v in vals],
        [v.reviewed for v in vals],
        [v.discounted for v in vals],
        [v.flagged_us for v in vals],
    ]
    # Only flagged targets have co-reporters or signals.
    flagged = [
        (i, v.co_reporters, v.signals)
        for i, v in enumerate(vals)
        if v.co_reporters is not None or v.signals is not None
    ]
    lengths = array("q", [len(v.times) for v in vals])
    times = b"".join([v.times.tobytes() for v in vals])
    return (list(views), columns, flagged, lengths, times)


def unpack_views(packed: tuple[Any, ...]) -> dict[tuple[str, str], TargetView]:
    """The views :func:`pack_views` packed."""
    keys, columns, flagged, lengths, blob = packed
    times: array[int] = array("q")
    times.frombytes(blob)
    vals: list[TargetView] = []
    at = 0
    for first, latest, reports, counted, reviewed, discounted, flagged_us, n in zip(
        *columns, lengths, strict=True
    ):
        vals.append(
            TargetView(
                first,
                latest,
                reports,
                counted,
                reviewed,
                discounted,
                flagged_us,
                None,
                None,
                times[at : at + n],
            )
        )
        at += n
    for i, co, signals in flagged:
        vals[i].co_reporters = co
        vals[i].signals = signals
    return dict(zip(keys, vals, strict=True))


def _marked_only(key: tuple[str, str], mark: Mapping[str, Any]) -> dict[str, Any]:
    """A target hindsight marked whose live view was evicted (its reports are older
    than the longest window): what the mark says of it."""
    return {
        "platform": key[0],
        "target_id": key[1],
        "state": "review",
        "sources": ["hindsight"],
        "hindsight": dict(mark),
        "reports": 0,
        "first_report": mark.get("first_report"),
        "latest_report": mark.get("latest_report"),
        "last_flagged": None,
        "recommendations": {"count": 0, "review": 0, "discount": 0},
        "co_reporters": [],
        "signals": {},
        "timeline": [],
    }


@dataclass(frozen=True)
class Snapshot:
    """The state as :meth:`GuardState.write_snapshot` writes it: the pickled header
    and the scorer's arrays (views of the live arrays: the state must not change until
    it is written)."""

    header: bytes
    arrays: dict[str, np.ndarray[Any, Any]]

    @property
    def nbytes(self) -> int:
        return len(self.header) + sum(a.nbytes for a in self.arrays.values())


class GuardState:
    """The online scorer, the target views and the log offset they reflect."""

    def __init__(self, settings: ScoreSettings, pair_memory: float | None = None) -> None:
        self.settings = settings
        self.pair_memory = pair_memory
        self._scorer = ArrayScorer(settings, pair_memory)
        # Reports replayed but not learnt yet (scorer form), and what guards them: the
        # metrics may read the scorer from another thread while replay runs.
        self._queued: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._warm = False
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
        #: The targets the last hindsight run marked, each with its evidence
        #: (:meth:`concerted.service.hindsight.Mark.as_dict`); replaced by every run.
        self.hindsight: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def scorer(self) -> ArrayScorer:
        """The scorer, every report replayed so far learnt."""
        self.learn_replayed()
        return self._scorer

    def learn_replayed(self) -> None:
        """Learn the reports replay queued (it does so itself before the scorer is
        read; call it when replay ends, so that no batch is left for the first request)."""
        with self._lock:
            queued, self._queued = self._queued, []
            if queued or not self._warm:
                # An empty batch still loads (or compiles) the scorer's kernels: done
                # once when replay ends, the first request does not wait for them.
                self._scorer.learn_many(self._scorer.encode(queued))
                self._warm = True

    def score_and_learn(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """Score ``report`` (stored form) against what came before, then learn it."""
        return self.score_and_learn_many([report])[0]

    def score_and_learn_many(self, reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`score_and_learn` on each report in order (the same answers), the
        scoring done in one call of the scorer."""
        results, views = self.score_and_learn_group(reports)
        out = list(results)
        for result, view in zip(out, views, strict=True):
            result["target"] = None if view is None else _decode_result(view)
        return out

    def score_and_learn_group(
        self, reports: Sequence[Mapping[str, Any]], views: Sequence[bool] | None = None
    ) -> tuple[Results, list[bytes | None]]:
        """:meth:`score_and_learn_many` as the guard takes it: each result without its
        ``target`` (:class:`Results`: as JSON, as the log stores it), and beside it the
        target's view as it stood right after that report was learnt (as JSON), made
        only where ``views`` asks for it (all when None; None where not asked).

        The group is taken a column at a time: the scorer's arrays, the
        recommendations, and the results' JSON from the arrays' text (every number
        encoded in one call), with no dict a result.

        >>> state = GuardState(ScoreSettings())
        >>> r = {"report_id": "r1", "platform": "x", "reporter_id": "a",
        ...      "target_id": "t", "ts": "2026-05-28T00:00:00Z"}
        >>> results, views = state.score_and_learn_group([r, {**r, "report_id": "r2"}],
        ...                                              [False, True])
        >>> "target" in results[0], views[0], _decode_result(views[1])["reports"]
        (False, None, 2)
        >>> results.recommendations
        ['count', 'count']
        """
        group = self.begin_group(reports)
        return self.end_group(group, self.scorer.learn_many(group.batch), views)

    def begin_group(self, reports: Sequence[Mapping[str, Any]]) -> Group:
        """:meth:`score_and_learn_group` in three steps, so that the guard learns a large
        group off its event loop: this one (the reports as columns, their ids
        numbered), then ``scorer.learn_many(group.batch)`` (compiled loops that release
        the GIL, touching only the scorer's arrays), then :meth:`end_group` (the
        results and the target views, which the service's readers read)."""
        # Each column taken by a getter mapped in C (no Python runs a report).
        platform = list(map(_PLATFORM, reports))
        reporter = list(map(_REPORTER, reports))
        target = list(map(_TARGET, reports))
        ts = list(map(_micros, map(_TS, reports)))
        created = [_micros(c) if (c := r.get("reporter_created_at")) else None for r in reports]
        batch = self.scorer.encode_columns(
            platform,
            reporter,
            target,
            [r.get("client") for r in reports],
            ts,
            created,
            [r.get("channel") for r in reports],
            [r.get("outcome") for r in reports],
        )
        return Group(list(map(_REPORT_ID, reports)), platform, reporter, target, ts, batch)

    def end_group(
        self, group: Group, scored: Scored, views: Sequence[bool] | None = None
    ) -> tuple[Results, list[bytes | None]]:
        """The results and the views of ``group``, once ``scored`` (see
        :meth:`begin_group`)."""
        platform, target, reporter, ts = group.platform, group.target, group.reporter, group.ts
        s = self.settings
        # As scoring.recommend decides.
        codes = np.where(
            scored.scores >= s.discount,
            2,
            np.where((scored.scores >= s.review) | scored.held, 1, 0),
        ).tolist()
        masks = ((scored.features >= SHOWN) @ _BITS).tolist()
        results = Results(_encode_results(group.report_id, platform, target, scored, codes, masks))
        recommendations = results.recommendations
        recommendations.extend(map(_NAMES.__getitem__, codes))
        # _learn_view a report, inlined: the loop runs for every report of every batch.
        shown: list[bytes | None] = []
        targets, marks, hold, clock = self.targets, self.hindsight, self.hold_us, self.clock_us
        since = self._since_eviction
        for t, key, who, recommendation, mask, want in zip(
            ts,
            zip(platform, target, strict=True),
            reporter,
            recommendations,
            masks,
            itertools.repeat(True) if views is None else views,
            strict=views is not None,
        ):
            if t > clock:
                clock = t
            view = targets.get(key)
            if view is None:
                view = targets[key] = TargetView(first_us=t, latest_us=t)
            view.add(t, who, recommendation, _SIGNALS[mask][0])
            since += 1
            if since >= _EVICT_EVERY:
                self.clock_us = clock
                self.evict()
                since = 0
            shown.append(
                view.as_json(key[0], key[1], clock, hold, marks.get(key)) if want else None
            )
        self.clock_us, self._since_eviction = clock, since
        return results, shown

    def _replay_one(self, x: dict[str, Any], recommendation: str, signals: Iterable[str]) -> None:
        with self._lock:
            self._queued.append(x)
            full = len(self._queued) >= REPLAY_BATCH
        self._update(x, recommendation, signals, view=False)
        if full:
            self.learn_replayed()

    def replay(self, report: Mapping[str, Any], result: Mapping[str, Any], offset: int) -> None:
        """Learn a report from the log again, with the result it was answered with."""
        self._replay_one(
            scorer_report(report), str(result["recommendation"]), result.get("signals", ())
        )
        self.offset = offset

    def replay_stored(self, report: StoredReport, answered: Answered, offset: int) -> None:
        """:meth:`replay` from the log's structs (what :meth:`SqliteLog.read_learnt
        <concerted.service.sqlite.SqliteLog.read_learnt>` gives): the same learning."""
        created = report.reporter_created_at
        x = {
            "report_id": report.report_id,
            "platform": report.platform,
            "reporter_id": report.reporter_id,
            "target_id": report.target_id,
            "ts": _micros(report.ts),
            "channel": report.channel,
            "client": report.client,
            "outcome": report.outcome,
            "reporter_created_at": _micros(created) if created else None,
        }
        self._replay_one(x, answered.recommendation, answered.signals)
        self.offset = offset

    def replay_many(self, entries: Iterable[Learnt]) -> int:
        """:meth:`replay_stored` on each of ``entries`` (offset, report, answer) in
        order, all of them learnt on return; how many there were."""
        n = 0
        for offset, report, answered in entries:
            self.replay_stored(report, answered, offset)
            n += 1
        self.learn_replayed()
        return n

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
        key = (x["platform"], x["target_id"])
        target = self._learn_view(x["ts"], key, x["reporter_id"], recommendation, signals)
        # Replay needs no answer: the target's dict is only built for a live report.
        if not view:
            return {}
        return target.as_dict(*key, self.clock_us, self.hold_us, hindsight=self.hindsight.get(key))

    def _learn_view(
        self,
        t: int,
        key: tuple[str, str],
        reporter: str,
        recommendation: str,
        signals: Iterable[str],
    ) -> TargetView:
        """One report learnt by its target's view, which is returned."""
        if t > self.clock_us:
            self.clock_us = t
        target = self.targets.get(key)
        if target is None:
            target = self.targets[key] = TargetView(first_us=t, latest_us=t)
        target.add(t, reporter, recommendation, signals)
        self._since_eviction += 1
        if self._since_eviction >= _EVICT_EVERY:
            self.evict()
        return target

    def evict(self) -> int:
        """Drop the target views whose latest report is older than the longest window."""
        self._since_eviction = 0
        cutoff = self.clock_us - self.horizon_us
        old = [k for k, v in self.targets.items() if v.latest_us < cutoff]
        for k in old:
            del self.targets[k]
        return len(old)

    def view(self, platform: str, target_id: str) -> dict[str, Any] | None:
        """The target as a result shows it now (:meth:`target` without the timeline),
        or None when nothing is known of it: what a repeat's answer and a stored
        report's result show (the log keeps results without the view)."""
        key = (platform, target_id)
        view = self.targets.get(key)
        mark = self.hindsight.get(key)
        if view is None:
            if mark is None:
                return None
            shown = _marked_only(key, mark)
            del shown["timeline"]
            return shown
        return view.as_dict(*key, self.clock_us, self.hold_us, hindsight=mark)

    def target(self, platform: str, target_id: str) -> dict[str, Any] | None:
        key = (platform, target_id)
        view = self.targets.get(key)
        mark = self.hindsight.get(key)
        if view is None:
            return None if mark is None else _marked_only(key, mark)
        return view.as_dict(*key, self.clock_us, self.hold_us, timeline=True, hindsight=mark)

    def under_review(self, limit: int) -> list[dict[str, Any]]:
        """The targets in review now: the most recently flagged online first, then
        those only hindsight holds (the latest of its reports first)."""
        flagged = [
            (v.flagged_us, k)
            for k, v in self.targets.items()
            if v.flagged_us is not None and self.clock_us - v.flagged_us <= self.hold_us
        ]
        flagged.sort(reverse=True)
        online = {k for _, k in flagged}
        hindsight_only = sorted(
            (k for k in self.hindsight if k not in online),
            key=lambda k: (self.targets[k].latest_us if k in self.targets else 0, k),
            reverse=True,
        )
        keys = [k for _, k in flagged] + hindsight_only
        return [t for t in (self.target(*k) for k in keys[:limit]) if t is not None]

    # Snapshots ---------------------------------------------------------------------

    def dump(self) -> Snapshot:
        """The state for :meth:`write_snapshot` (taken between two groups)."""
        scorer = self.scorer
        arrays = scorer.arrays()
        header = pickle.dumps(
            {
                "version": _SNAPSHOT_VERSION,
                "settings": asdict(self.settings),
                "pair_memory": self.pair_memory,
                "offset": self.offset,
                "clock_us": self.clock_us,
                "scorer": scorer.header(),
                "arrays": [(k, a.dtype.str, a.shape) for k, a in arrays.items()],
                "targets": pack_views(self.targets),
                "decided": self.decided,
                "decision": self.decision,
                "hindsight": self.hindsight,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        return Snapshot(header, arrays)

    @staticmethod
    def write_snapshot(path: Path, data: Snapshot) -> None:
        """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename):
        the magic line, the header's length and the header, then each array's bytes
        from a multiple of :data:`_ALIGN`."""
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            f.write(len(data.header).to_bytes(8, "little"))
            f.write(data.header)
            at = len(_MAGIC) + 8 + len(data.header)
            for a in data.arrays.values():
                pad = -at % _ALIGN
                f.write(b"\0" * pad)
                f.write(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
                at += pad + a.nbytes
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(
        cls, path: Path, settings: ScoreSettings, pair_memory: float | None = None
    ) -> GuardState:
        """The state in snapshot ``path``, or an empty one when there is none, it is of
        another format, or it was taken under other scoring settings (then the whole
        log is replayed)."""
        state = cls(settings, pair_memory)
        if not path.exists():
            return state
        # Unpickling and unpacking the target views builds many small objects and no
        # cycles: the cyclic collector is off meanwhile, as during replay.
        enabled = gc.isenabled()
        gc.disable()
        try:
            with open(path, "rb") as f:
                if f.read(len(_MAGIC)) != _MAGIC:
                    log.warning("the snapshot is of another format; replaying the whole log")
                    return state
                size = int.from_bytes(f.read(8), "little")
                data = pickle.loads(f.read(size))
                if (
                    not isinstance(data, dict)
                    or data.get("version") != _SNAPSHOT_VERSION
                    or data.get("settings") != asdict(settings)
                    or data.get("pair_memory") != pair_memory
                ):
                    return state
                arrays = _read_arrays(f, len(_MAGIC) + 8 + size, data["arrays"], MAP_SNAPSHOT)
                targets = unpack_views(data["targets"])
                scorer = ArrayScorer.restore(settings, pair_memory, data["scorer"], arrays)
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
        ):
            # A header of the right version that does not unpack (damaged, or written
            # by a build whose layout differs) is no worse than no snapshot.
            log.warning("the snapshot cannot be read; replaying the whole log")
            return state
        finally:
            if enabled:
                gc.enable()
        state._scorer = scorer
        state.targets = targets
        state.decided = data["decided"]
        state.decision = int(data["decision"])
        # The last hindsight run's marks stand until the next run replaces them.
        state.hindsight = dict(data.get("hindsight", {}))
        state.offset = int(data["offset"])
        state.clock_us = int(data["clock_us"])
        return state


def _read_arrays(
    f: Any, at: int, directory: Sequence[tuple[str, str, tuple[int, ...]]], mapped: bool
) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of a snapshot file from offset ``at``: read in full, or mapped
    copy-on-write (pages read when first touched, written pages private to this
    process; the file is only ever replaced, never changed in place)."""
    end = os.fstat(f.fileno()).st_size
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name, dtype, shape in directory:
        kind = np.dtype(dtype)
        at += -at % _ALIGN
        nbytes = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
        if at + nbytes > end:
            raise EOFError(f"the snapshot ends inside {name}")
        a: np.ndarray[Any, Any]
        if mapped and nbytes:
            a = np.memmap(f, dtype=kind, mode="c", offset=at, shape=shape)
        else:
            a = np.empty(shape, kind)
            f.seek(at)
            if f.readinto(a.reshape(-1).view(np.uint8).data) != nbytes:
                raise EOFError(f"the snapshot ends inside {name}")
        arrays[name] = a
        at += nbytes
    return arrays
