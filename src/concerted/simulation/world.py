"""The simulated platform: accounts and their hidden habits, ids, time, and the
writers that stream tables to Parquet."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from concerted.errors import ConfigError
from concerted.schema import CONTRACTS, INPUT_TABLES, TRUTH_CONTRACT, arrow_schema
from concerted.simulation import text as prose
from concerted.simulation.knobs import Scenario

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

US = 1_000_000
DAY = 86_400
PLATFORMS = ("facebook", "instagram")
FACEBOOK, INSTAGRAM = 0, 1
KINDS = ("user", "page", "group")
USER, PAGE, GROUP = 0, 1, 2
LANGS = prose.LANGUAGES

#: Relative activity by local hour: quiet before dawn, busiest in the evening.
HOURS = np.array(
    [2, 1.2, 0.7, 0.5, 0.4, 0.6, 1.2, 2.4, 3.4, 3.9, 4, 4.2]
    + [4.5, 4.3, 4, 4, 4.3, 4.8, 5.5, 6.4, 7, 6.6, 5.1, 3.5]
)
HOURS = HOURS / HOURS.sum()

#: UTC offsets (seconds) by language, with weights: Pakistan, India, the diaspora.
ZONES: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "en": ((5, 5.5, 0, 1, -5, -8, 4), (0.3, 0.2, 0.15, 0.1, 0.12, 0.05, 0.08)),
    "ur": ((5, 4, 0, 3), (0.82, 0.1, 0.05, 0.03)),
    "hi": ((5.5, 4, -5), (0.9, 0.06, 0.04)),
    "ur-Latn": ((5, 4, 0, -5), (0.8, 0.1, 0.06, 0.04)),
}

BROWSERS = (
    "Mozilla/5.0 (Linux; Android 10; SM-A505F) AppleWebKit/537.36 Chrome/83.0.4103.106",
    "Mozilla/5.0 (Linux; Android 9; Redmi Note 7) AppleWebKit/537.36 Chrome/83.0.4103.101",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/83.0.4103.97",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:77.0) Gecko/20100101 Firefox/77.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 13_5 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 8.1.0; vivo 1811) AppleWebKit/537.36 Chrome/81.0.4044.138",
    "Mozilla/5.0 (Linux; Android 10; Infinix X657) AppleWebKit/537.36 Chrome/83.0.4103.96",
)
APPS = ("FB4A/275.0.0.49.127", "FBIOS/275.0.0.44.120", "Instagram 146.0.0.27.125 Android")
#: What the bulk-reporting extension adds to a browser's agent string, when it shows.
EXTENSION_MARK = "AutoReporter/1.3"

PAGE_WORDS = (
    ("Karachi", "Lahore", "Islamabad", "Pakistan", "Desi", "Punjab", "Sindh", "Peshawar"),
    ("Foodies", "Cricket Updates", "Jobs", "Memes", "News", "Traders", "Students", "Poetry"),
)
OPERATION_PAGE_WORDS = (
    ("Pak", "Defenders of", "Voice of", "Sons of", "Proud", "Guardians of", "Team", "Shaheen"),
    ("Army Lovers", "Pakistan", "the Nation", "Green Crescent", "Soldiers", "Watch", "Force"),
)
REASON_WEIGHTS = {
    "spam": 0.3,
    "harassment": 0.12,
    "hate_speech": 0.1,
    "false_information": 0.1,
    "nudity": 0.08,
    "violence": 0.08,
    "fake_account": 0.07,
    "impersonation": 0.05,
    "terrorism": 0.02,
    "blasphemy": 0.03,
    "other": 0.05,
}
VIOLATIONS = ("violence", "nudity", "hate_speech", "false_information")


def profile_link(platform: str, account_id: str, handle: str) -> str:
    """The link a target list gives for a profile.

    >>> profile_link("facebook", "1234", "ali.khan")
    'https://www.facebook.com/profile.php?id=1234'
    >>> profile_link("instagram", "1234", "ali.khan")
    'https://www.instagram.com/ali.khan/'
    """
    if platform == "instagram":
        return f"https://www.instagram.com/{handle}/"
    return f"https://www.facebook.com/profile.php?id={account_id}"


def report_link(platform: str, account_id: str) -> str:
    """A direct link into the platform's report flow for a profile, as lists carry them.

    >>> report_link("facebook", "1234")
    'https://www.facebook.com/report/profile/?id=1234'
    """
    host = "www.instagram.com" if platform == "instagram" else "www.facebook.com"
    return f"https://{host}/report/profile/?id={account_id}"


#: The truth table's layout.
TRUTH_SCHEMA = arrow_schema(TRUTH_CONTRACT)


class Sink:
    """One Parquet writer per table; chunks are written as they are made.

    By default each table is one file, ``TABLE.parquet``. With ``rows_per_file``, each
    input table is a directory of files instead (``TABLE/part-00000.parquet``, ...), a
    new file begun once the last holds that many rows, as a data lake keeps a table
    (Spark reads the directory; :func:`concerted.engines.spark_tables.read_tables`).
    The truth stays one file.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> sink = Sink(out, rows_per_file=2)
    >>> for n in (3, 1):
    ...     sink.write("roles", {"account_id": ["a"] * n, "venue_id": ["v"] * n,
    ...                          "role": ["member"] * n, "platform": ["x"] * n})
    >>> sink.close()
    >>> sorted(p.name for p in (out / "roles").iterdir()), sink.rows["roles"]
    (['part-00000.parquet', 'part-00001.parquet'], 4)
    """

    def __init__(
        self,
        out: Path,
        row_group: int = 1 << 20,
        resolution: float = 0.0,
        rows_per_file: int | None = None,
    ) -> None:
        if rows_per_file is not None and rows_per_file < 1:
            raise ValueError(f"rows_per_file must be positive, got {rows_per_file}")
        self.out = out
        self.row_group = row_group
        self.rows_per_file = rows_per_file
        # Times of posts and reports are written at this resolution (seconds), as
        # archives that keep only the minute write them.
        self.resolution_us = max(int(round(resolution * 1_000_000)), 1)
        self.rows: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._in_file: dict[str, int] = {}
        self._files: dict[str, int] = {}
        self._schemas = {t: arrow_schema(CONTRACTS[t]) for t in INPUT_TABLES}
        self._schemas["truth"] = TRUTH_SCHEMA
        for table in self._schemas:
            self.rows[table] = 0
            self._files[table] = 0
            if not self._split(table):
                self._open(table)

    def _split(self, table: str) -> bool:
        return self.rows_per_file is not None and table != "truth"

    def _open(self, table: str) -> None:
        if self._split(table):
            folder = self.out / table
            folder.mkdir(exist_ok=True)
            path = folder / f"part-{self._files[table]:05d}.parquet"
        else:
            path = self.out / f"{table}.parquet"
        self._writers[table] = pq.ParquetWriter(path, self._schemas[table], compression="zstd")
        self._files[table] += 1
        self._in_file[table] = 0

    def write(self, table: str, columns: Mapping[str, Any]) -> None:
        """Write one chunk; a contract column the chunk lacks is written as nulls."""
        n = len(next(v for v in columns.values() if v is not None))
        if n == 0:
            return
        schema = self._schemas[table]
        if (
            self.resolution_us > 1
            and table in ("posts", "reports")
            and columns.get("ts") is not None
        ):
            ts = np.asarray(columns["ts"], dtype=np.int64)
            columns = {**columns, "ts": ts - ts % self.resolution_us}
        arrays = [
            pa.nulls(n, f.type)
            if columns.get(f.name) is None
            else pa.array(columns[f.name], f.type)
            for f in schema
        ]
        chunk = pa.Table.from_arrays(arrays, schema=schema)
        self.rows[table] += n
        if not self._split(table):
            self._writers[table].write_table(chunk, row_group_size=self.row_group)
            return
        assert self.rows_per_file is not None
        at = 0
        while at < n:
            if table not in self._writers:
                self._open(table)
            room = self.rows_per_file - self._in_file[table]
            part = chunk.slice(at, room)
            self._writers[table].write_table(
                part, row_group_size=min(self.row_group, self.rows_per_file)
            )
            self._in_file[table] += part.num_rows
            at += part.num_rows
            if self._in_file[table] >= self.rows_per_file:
                self._writers.pop(table).close()

    def close(self) -> None:
        for table, writer in list(self._writers.items()):
            writer.close()
            del self._writers[table]
        for table in self._schemas:
            if self._split(table) and not self._files[table]:
                # A table with no rows is still a directory, of one empty file.
                self._open(table)
                self._writers.pop(table).close()


class Ids:
    """Identifiers that look alike for every account: a seeded bijection on 40 bits.

    Network accounts are numbered after organic ones internally; their ids must not
    show it.
    """

    _MASK = np.uint64((1 << 40) - 1)

    def __init__(self, seed: int, namespace: int) -> None:
        mixed = np.random.default_rng([seed, 7_000 + namespace]).integers(1, 1 << 39, size=3)
        self._xor = np.uint64(mixed[0])
        self._m1 = np.uint64(mixed[1] | 1)
        self._m2 = np.uint64(mixed[2] | 1)
        self._base = 10**12 if namespace == 0 else 10**15 + namespace * 10**13

    def __call__(self, index: npt.ArrayLike) -> list[str]:
        x = np.asarray(index, dtype=np.uint64) ^ self._xor
        x = (x * self._m1) & self._MASK
        x ^= x >> np.uint64(17)
        x = (x * self._m2) & self._MASK
        x ^= x >> np.uint64(13)
        return (x.astype(np.int64) + self._base).astype(str).tolist()  # type: ignore[no-any-return]

    def one(self, index: int) -> str:
        """One id, in plain integers (the same bijection, without numpy's per-call cost).

        >>> ids = Ids(3, 0)
        >>> ids.one(41) == ids([41])[0]
        True
        """
        mask = (1 << 40) - 1
        x = (int(index) ^ int(self._xor)) * int(self._m1) & mask
        x ^= x >> 17
        x = x * int(self._m2) & mask
        x ^= x >> 13
        return str(x + self._base)


@dataclass
class Accounts:
    """Every account's hidden traits, by index; ids come from :class:`Ids`."""

    platform: npt.NDArray[np.int8]
    kind: npt.NDArray[np.int8]
    lang: npt.NDArray[np.int8]
    tz: IntArray
    rate: FloatArray
    followers: IntArray
    created: IntArray
    home: IntArray
    digits: FloatArray
    agent: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def empty(cls) -> Accounts:
        small = np.zeros(0, dtype=np.int8)
        whole = np.zeros(0, dtype=np.int64)
        real = np.zeros(0, dtype=np.float64)
        return cls(
            platform=small,
            kind=small,
            lang=small,
            tz=whole,
            rate=real,
            followers=whole,
            created=whole,
            home=whole,
            digits=real,
            agent=small,
        )

    def extend(self, other: Accounts) -> range:
        start = len(self)
        for f in dataclasses.fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))
        return range(start, len(self))


@dataclass
class Pool:
    """The posts that collect reposts and replies, with power-law weights."""

    index: IntArray
    ts: IntArray
    cdf: FloatArray
    author: IntArray


@dataclass
class Operation:
    id: str
    kind: str
    venues: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: Pairs of account indices run by one operator on two platforms.
    twins: list[tuple[int, int]] = field(default_factory=list)


class World:
    def __init__(self, sc: Scenario, seed: int, sink: Sink) -> None:
        self.sc = sc
        self.seed = seed
        self.sink = sink
        pop = sc.population
        try:
            start = datetime.fromisoformat(pop.start)
        except ValueError as exc:
            raise ConfigError(f"population.start: {pop.start!r} is not a date") from exc
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if pop.days < 2:
            raise ConfigError("population.days must be at least 2")
        self.start = int(start.timestamp())
        self.span = pop.days * DAY
        self.account_id = Ids(seed, 0)
        self.post_id = Ids(seed, 1)
        self.report_id = Ids(seed, 2)
        self.posts = 0
        self.reports = 0
        self.truth: list[tuple[str, str, str, str, str, str | None]] = []
        self.operations: list[Operation] = []
        self.decoys: dict[str, list[dict[str, Any]]] = {
            "cascades": [],
            "report_spikes": [],
            "callouts": [],
        }
        self.handles: dict[int, str] = {}
        #: Names and handles decided before the accounts are written (twins).
        self.names: dict[int, tuple[str, str]] = {}
        self.acc = Accounts.empty()
        self.organic = 0
        self.fb_users: IntArray = np.zeros(0, dtype=np.int64)
        self.operation_venues: set[int] = set()
        #: Brigade targets so far: not picked twice, and their handles kept for boasts.
        self.targets: IntArray = np.zeros(0, dtype=np.int64)

    def extend(self, more: Accounts) -> range:
        return self.acc.extend(more)

    def rng(self, *stage: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stage])

    # -- time

    def times(self, rng: np.random.Generator, tz: IntArray) -> IntArray:
        """Times in the daily rhythm of each account's zone, within the period (µs)."""
        n = len(tz)
        days = rng.integers(0, self.sc.population.days, n)
        hour = rng.choice(24, n, p=HOURS)
        local = days * DAY + hour * 3600 + rng.random(n) * 3600
        return self.at(np.mod(local - tz, self.span))

    def at(self, offset: npt.NDArray[Any]) -> IntArray:
        """Seconds into the period as UTC microseconds."""
        return np.round((self.start + np.asarray(offset, dtype=np.float64)) * US).astype(np.int64)

    def after(self, rng: np.random.Generator, base: IntArray, delay_s: FloatArray) -> IntArray:
        """``base`` plus a delay, kept inside the period: where the delay would run past
        its end, a uniform one within what is left (never a pile-up at the edge)."""
        end = (self.start + self.span) * US - 1
        t = base + np.round(delay_s * US).astype(np.int64)
        over = t > end
        if over.any():
            room = np.maximum(end - base[over], 1)
            t[over] = base[over] + (rng.random(int(over.sum())) * room).astype(np.int64)
        return t

    # -- accounts

    def population(self, rng: np.random.Generator, n: int, weights: Sequence[float]) -> Accounts:
        pop = self.sc.population
        p = np.asarray(weights, dtype=np.float64)
        lang = rng.choice(len(LANGS), n, p=p / p.sum()).astype(np.int8)
        tz = np.zeros(n, dtype=np.int64)
        for code, name in enumerate(LANGS):
            sel = lang == code
            offsets, w = ZONES[name]
            wa = np.asarray(w) / np.sum(w)
            tz[sel] = (
                np.asarray(offsets)[rng.choice(len(offsets), int(sel.sum()), p=wa)] * 3600
            ).astype(np.int64)
        sigma = pop.activity_sigma
        rate = pop.posts_per_day * rng.lognormal(-(sigma**2) / 2, sigma, n)
        created = self.at(-rng.uniform(30 * DAY, 12 * 365 * DAY, n))
        return Accounts(
            platform=np.zeros(n, dtype=np.int8),
            kind=np.zeros(n, dtype=np.int8),
            lang=lang,
            tz=tz,
            rate=rate,
            # A power law (Pareto, exponent 1.5): most have dozens, a few have thousands.
            followers=np.round(30 * (1 - rng.random(n)) ** (-1 / 1.5)).astype(np.int64),
            created=created,
            home=np.full(n, -1, dtype=np.int64),
            digits=np.where(rng.random(n) < 0.25, rng.integers(2, 5, n), 0).astype(np.float64),
            agent=rng.integers(0, len(BROWSERS), n).astype(np.int8),
        )

    def id(self, index: int) -> str:
        return self.account_id.one(index)

    def platform(self, index: int) -> str:
        return PLATFORMS[int(self.acc.platform[index])]

    def label(
        self, op: str, entity: str, ident: str, platform: str, role: str, detail: str | None = None
    ) -> None:
        self.truth.append((op, entity, ident, platform, role, detail))
        if len(self.truth) >= 250_000:
            self.flush_truth()

    def flush_truth(self) -> None:
        """Write the labels gathered so far (they stream like the tables do)."""
        rows = self.truth
        if rows:
            columns = {name: [r[i] for r in rows] for i, name in enumerate(TRUTH_SCHEMA.names)}
            self.sink.write("truth", columns)
        self.truth = []


def bursts(
    w: World, rng: np.random.Generator, n: int, bursts: int, hours: float, share: float
) -> IntArray:
    """Creation times: ``share`` of them in ``bursts`` bursts of ``hours``."""
    centres = rng.uniform(45 * DAY, 2 * 365 * DAY, max(bursts, 1))
    in_burst = rng.random(n) < share
    offsets = rng.uniform(30 * DAY, 6 * 365 * DAY, n)
    pick = centres[rng.integers(0, len(centres), n)]
    offsets = np.where(in_burst, pick - rng.random(n) * hours * 3600, offsets)
    return w.at(-offsets)


class PostColumns:
    """Posts made one at a time (network items, mobilisation), written in chunks."""

    def __init__(self) -> None:
        names = CONTRACTS["posts"].names
        self.rows: dict[str, list[Any]] = {n: [] for n in names if n != "extra"}

    def __len__(self) -> int:
        return len(self.rows["post_id"])

    def add(
        self,
        w: World,
        *,
        index: int,
        ts: int,
        text: str | None = None,
        urls: list[str] | None = None,
        hashtags: list[str] | None = None,
        mentions: list[str] | None = None,
        images: list[str] | None = None,
        venue: int | None = None,
        repost_of: int | None = None,
        lang: str | None = None,
    ) -> None:
        r = self.rows
        r["post_id"].append(w.post_id.one(w.posts))
        w.posts += 1
        r["account_id"].append(w.id(index))
        r["platform"].append(w.platform(index))
        r["ts"].append(ts)
        r["venue_id"].append(w.id(venue) if venue is not None else None)
        r["text"].append(text)
        r["lang"].append(lang if lang else (None if text is None else LANGS[w.acc.lang[index]]))
        r["urls"].append(urls or [])
        r["hashtags"].append(hashtags or [])
        r["mentions"].append(mentions or [])
        r["reply_to"].append(None)
        r["repost_of"].append(w.post_id.one(repost_of) if repost_of is not None else None)
        r["image_hashes"].append(images or [])

    def flush(self, w: World) -> None:
        if len(self):
            w.sink.write("posts", self.rows)
        for v in self.rows.values():
            v.clear()


class ReportColumns:
    """Reports, gathered in bulk and written in chunks."""

    def __init__(self) -> None:
        names = CONTRACTS["reports"].names
        self.rows: dict[str, list[Any]] = {n: [] for n in names if n != "extra"}

    def __len__(self) -> int:
        return len(self.rows["report_id"])

    def extend(self, w: World, reporters: IntArray, **columns: Any) -> list[str]:
        n = len(reporters)
        first = w.reports
        w.reports += n
        ids = w.report_id(np.arange(first, first + n))
        self.rows["report_id"].extend(ids)
        self.rows["reporter_id"].extend(w.account_id(reporters))
        for key in ("target_id", "target_kind", "reason", "ts", "channel", "client", "text"):
            value = columns.get(key)
            self.rows[key].extend(value if value is not None else [None] * n)
        outcome = columns.get("outcome")
        self.rows["outcome"].extend(outcome if outcome is not None else [None] * n)
        self.rows["platform"].extend(PLATFORMS[c] for c in w.acc.platform[reporters])
        return ids

    def flush(self, w: World) -> None:
        if len(self):
            w.sink.write("reports", self.rows)
        for v in self.rows.values():
            v.clear()


def clients(
    w: World, rng: np.random.Generator, reporters: IntArray, channel: list[str]
) -> list[str]:
    agent = w.acc.agent[reporters]
    app = rng.integers(0, 2, len(reporters))
    return [
        APPS[int(k)] if c == "app" else BROWSERS[int(a)]
        for c, a, k in zip(channel, agent, app, strict=True)
    ]


def weighted_reason(rng: np.random.Generator) -> str:
    names = tuple(REASON_WEIGHTS)
    p = np.asarray(tuple(REASON_WEIGHTS.values()))
    return names[int(rng.choice(len(names), p=p / p.sum()))]
