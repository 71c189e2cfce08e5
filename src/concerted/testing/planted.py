"""A small case with a planted network and a planted brigade: the conformance case.

:func:`planted_case` writes the contract tables (``accounts``, ``posts``, ``reports``,
``roles``) and the ``actions`` derived from them onto a DuckDB connection, and returns
what was planted. The organic population posts, reposts, shares and reports at random,
and holds the hard negatives: a viral post whose author draws an organic report spike
(many reporters, spread over hours, mixed reasons and channels) and an ordinary call-out.

The planted operation is suspicious on every facet a detector may look at, so that
each detector, whatever it measures, finds something of it:

- **network**: eight Facebook accounts created within three hours, with handles made of
  one stem and digits, two Instagram accounts carrying two of their names, two pages
  that share admins, all posting the same talking points within seconds (reposts,
  links, hashtags) and the same message with small edits in English, Urdu and Hindi;
- **brigade**: twelve reporters created in a burst days before, who after a
  mobilising post in a group (target profiles, report links, a call to act) report the
  listed targets in list order, seconds apart, through the direct report link, with one
  reason and one rare client; their reports are rejected; the organiser then boasts.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from concerted.actions import SQL_MACROS, from_posts, from_reports, from_roles
from concerted.schema import CONTRACTS, INPUT_TABLES

START = datetime(2020, 6, 1, tzinfo=UTC)
DAYS = 7

WORDS = (
    "cricket match today weather lahore karachi food tea family friends news prices "
    "market school exam rain traffic wedding music film phone internet electricity"
).split()
REASONS = ("spam", "harassment", "hate_speech", "nudity", "false_information", "violence")
CLIENTS = (
    "Mozilla/5.0 (Linux; Android 10; SM-A505F) Chrome/83.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/83.0",
    "FB4A/275.0.0.49.127",
    "FBIOS/275.0.0.44.120",
)
TEAM_MESSAGES = (
    "Our army stands with the nation, every citizen must support the armed forces today",
    "ہماری فوج قوم کے ساتھ کھڑی ہے، ہر شہری کو آج مسلح افواج کا ساتھ دینا چاہیے",
    "हमारी सेना राष्ट्र के साथ खड़ी है, हर नागरिक को आज सशस्त्र बलों का साथ देना चाहिए",
)


Row = tuple[str, str, str, str, datetime, str]

#: The columns of :data:`Row`, an action.
ACTION_COLUMNS = ("actor_id", "platform", "kind", "object_id", "ts", "source_id")

_ids = itertools.count()


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert ``rows`` (tuples of Python values in the order of ``columns``) into
    ``table``, in their order, as one statement over an Arrow table: what
    ``executemany`` does, without its cost per row.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE t (a VARCHAR, b BIGINT, c VARCHAR[])")
    >>> insert_rows(con, "t", ["a", "b", "c"], [("x", 1, ["u"]), ("y", None, None)])
    >>> con.sql("SELECT * FROM t").fetchall()
    [('x', 1, ['u']), ('y', None, None)]
    """
    if not rows:
        return
    data = pa.table({c: pa.array([r[i] for r in rows]) for i, c in enumerate(columns)})
    view = f"_insert_rows_{next(_ids)}"
    names = ", ".join(f'"{c}"' for c in columns)
    con.register(view, data)
    try:
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        con.unregister(view)


def actions_table(con: duckdb.DuckDBPyConnection, name: str, rows: list[Row]) -> str:
    con.execute(
        f"CREATE OR REPLACE TABLE {name} (actor_id VARCHAR, platform VARCHAR, kind VARCHAR, "
        "object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    insert_rows(con, name, ACTION_COLUMNS, rows)
    return name


def report_actions(
    con: duckdb.DuckDBPyConnection, reports: list[tuple[str, str, float]], name: str = "a"
) -> str:
    """Table ``name`` in the actions layout: one report per ``(reporter, target,
    seconds after START)``, on facebook, with report ids ``r0, r1, ...``."""
    rows = [
        (who, "facebook", "report", target, START + timedelta(seconds=at), f"r{i}")
        for i, (who, target, at) in enumerate(reports)
    ]
    return actions_table(con, name, rows)


def planted_actions(
    seed: int = 0, organic: int = 150, members: int = 8
) -> tuple[list[Row], set[str]]:
    """Organic accounts acting at random over a week, and ``members`` accounts acting
    on the same 20 objects within seconds of each other."""
    rnd = random.Random(seed)
    rows: list[Row] = []
    n = 0
    for i in range(organic):
        for _ in range(rnd.randint(1, 12)):
            n += 1
            at = START + timedelta(seconds=rnd.uniform(0, 7 * 86400))
            kind = rnd.choice(["repost", "hashtag", "share_url"])
            rows.append((f"o{i}", "facebook", kind, f"{kind}-{rnd.randint(0, 60)}", at, f"p{n}"))
    team = {f"m{i}" for i in range(members)}
    for item in range(20):
        at = START + timedelta(hours=6 * item + 1)
        kind = ("repost", "hashtag", "share_url")[item % 3]
        for m in sorted(team):
            n += 1
            lag = timedelta(seconds=rnd.uniform(0, 20))
            rows.append((m, "facebook", kind, f"talking-point-{item}", at + lag, f"p{n}"))
    return rows, team


@dataclass
class Planted:
    """What :func:`planted_case` planted, by kind of entity, as (platform, id) pairs."""

    network: set[tuple[str, str]] = field(default_factory=set)
    reporters: set[tuple[str, str]] = field(default_factory=set)
    targets: set[tuple[str, str]] = field(default_factory=set)
    reports: set[tuple[str, str]] = field(default_factory=set)
    posts: set[tuple[str, str]] = field(default_factory=set)

    def entities(self, entity: str) -> set[tuple[str, str]]:
        """The planted ids of one signal entity (account, report, target, post)."""
        return {
            "account": self.network | self.reporters,
            "report": self.reports,
            "target": self.targets,
            "post": self.posts,
        }[entity]


def _ts(offset_seconds: float) -> datetime:
    return START + timedelta(seconds=offset_seconds)


def _edit(rnd: random.Random, text: str) -> str:
    """The message with one small edit: a word dropped, or a character changed."""
    words = text.split()
    if rnd.random() < 0.5 and len(words) > 6:
        del words[rnd.randrange(len(words))]
        return " ".join(words)
    i = rnd.randrange(len(text))
    return text[:i] + rnd.choice("xyz") + text[i + 1 :]


def planted_case(
    con: duckdb.DuckDBPyConnection,
    *,
    seed: int = 0,
    organic: int = 150,
    shuffle: bool = False,
    empty: bool = False,
) -> Planted:
    """Create ``accounts``, ``posts``, ``reports``, ``roles`` and ``actions`` on ``con``.

    ``shuffle`` inserts every table's rows in a random order (same content);
    ``empty`` creates the tables with no rows. Returns the truth.
    """
    rnd = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in INPUT_TABLES}
    truth = Planted()

    def account(id_: str, *, platform: str = "facebook", kind: str = "user", **values: Any) -> None:
        rows["accounts"].append({"account_id": id_, "platform": platform, "kind": kind, **values})

    post_number = 0

    def post(author: str, at: float, *, platform: str = "facebook", **values: Any) -> str:
        nonlocal post_number
        post_number += 1
        post_id = f"p{post_number}"
        rows["posts"].append(
            {"post_id": post_id, "account_id": author, "platform": platform, "ts": _ts(at)} | values
        )
        return post_id

    report_number = 0

    def report(reporter: str, target: str, at: float, **values: Any) -> str:
        nonlocal report_number
        report_number += 1
        report_id = f"r{report_number}"
        rows["reports"].append(
            {
                "report_id": report_id,
                "reporter_id": reporter,
                "target_id": target,
                "target_kind": "account",
                "platform": "facebook",
                "ts": _ts(at),
            }
            | values
        )
        return report_id

    # The organic population: old accounts, random posts and a few reports each.
    for i in range(organic):
        platform = "instagram" if i % 5 == 0 else "facebook"
        account(
            f"o{i}",
            platform=platform,
            created_at=_ts(-rnd.uniform(200, 3000) * 86400),
            name=f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS).title()} {i}",
            handle=f"{rnd.choice(WORDS)}.{rnd.choice(WORDS)}{i}",
            followers=int(rnd.lognormvariate(5, 1.2)),
        )
        for _ in range(rnd.randint(2, 10)):
            at = rnd.uniform(0, DAYS * 86400)
            choice = rnd.random()
            if choice < 0.25 and rows["posts"]:
                original = rnd.choice(rows["posts"][: max(1, len(rows["posts"]) // 2)])
                post(f"o{i}", at, platform=platform, repost_of=original["post_id"])
            else:
                text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 14)))
                post(
                    f"o{i}",
                    at,
                    platform=platform,
                    text=text,
                    hashtags=[rnd.choice(WORDS)] if rnd.random() < 0.3 else [],
                    urls=[f"https://news{rnd.randint(0, 30)}.example/a{rnd.randint(0, 99)}"]
                    if rnd.random() < 0.3
                    else [],
                )
        if platform == "facebook" and rnd.random() < 0.4:
            for _ in range(rnd.randint(1, 2)):
                report(
                    f"o{i}",
                    f"o{rnd.randrange(organic)}",
                    rnd.uniform(0, DAYS * 86400),
                    reason=rnd.choice(REASONS),
                    channel=rnd.choice(("app", "web")),
                    client=rnd.choice(CLIENTS),
                    outcome=rnd.choice(("upheld", "rejected", None)),
                )

    # Hard negative: an organic report spike on a viral, violating post's author:
    # many reporters, spread over hours, mixed reasons, channels and clients.
    viral_author = "o1"
    viral_at = 2 * 86400.0
    for k in range(40):
        reporter = f"o{(7 * k + 3) % organic}"
        if reporter.endswith(("0", "5")):  # Instagram accounts report on Instagram
            continue
        report(
            reporter,
            viral_author,
            viral_at + rnd.expovariate(1 / (3 * 3600)),
            reason=rnd.choice(("violence", "violence", "hate_speech", "nudity")),
            channel=rnd.choice(("app", "web", "app")),
            client=rnd.choice(CLIENTS),
            outcome="upheld",
        )

    # The planted network.
    team = [f"m{i}" for i in range(8)]
    made = -30 * 86400.0
    for i, m in enumerate(team):
        account(
            m,
            created_at=_ts(made + rnd.uniform(0, 3 * 3600)),
            name=f"Watan Sipahi {i}",
            handle=f"watansipahi{rnd.randint(1000, 9999)}",
            followers=rnd.randint(20, 200),
        )
        truth.network.add(("facebook", m))
    for i in range(2):
        twin = f"ig{i}"
        account(
            twin,
            platform="instagram",
            created_at=_ts(made + rnd.uniform(0, 3 * 3600)),
            name=f"Watan Sipahi {i}",
            handle=f"watansipahi{rnd.randint(1000, 9999)}",
            followers=rnd.randint(20, 200),
        )
        truth.network.add(("instagram", twin))
    pages = ["pg0", "pg1"]
    for page in pages:
        account(page, kind="page", created_at=_ts(made), name=f"Pak Watan {page}")
        truth.network.add(("facebook", page))
        for admin in team[:2]:
            rows["roles"].append(
                {
                    "account_id": admin,
                    "venue_id": page,
                    "role": "admin",
                    "since": _ts(made + 86400),
                    "platform": "facebook",
                }
            )
    posters = [*team, *pages]
    for item in range(20):
        at = 6 * 3600.0 * item + 3600
        if item % 4 == 3:
            message = TEAM_MESSAGES[item % len(TEAM_MESSAGES)]
            for who in posters:
                truth.posts.add(
                    ("facebook", post(who, at + rnd.uniform(0, 20), text=_edit(rnd, message)))
                )
            for twin in ("ig0", "ig1"):
                truth.posts.add(
                    (
                        "instagram",
                        post(
                            twin,
                            at + rnd.uniform(0, 20),
                            platform="instagram",
                            text=_edit(rnd, message),
                        ),
                    )
                )
            continue
        first = post(pages[item % 2], at, text=f"talking point {item} " + " ".join(WORDS[:8]))
        truth.posts.add(("facebook", first))
        for who in posters:
            if who == pages[item % 2]:
                continue
            kind = item % 3
            values: dict[str, Any] = (
                {"repost_of": first}
                if kind == 0
                else {"urls": [f"https://watan.example/story/{item}"], "text": "see this"}
                if kind == 1
                else {"hashtags": [f"standwitharmy{item}"], "text": f"#standwitharmy{item}"}
            )
            truth.posts.add(("facebook", post(who, at + rnd.uniform(1, 20), **values)))

    # The planted brigade: a group, its admin (a network account), twelve reporters.
    group = "g0"
    account(group, kind="group", created_at=_ts(-400 * 86400), name="Defenders Group")
    rows["roles"].append(
        {
            "account_id": "m0",
            "venue_id": group,
            "role": "admin",
            "since": _ts(-300 * 86400),
            "platform": "facebook",
        }
    )
    reporters = [f"b{i}" for i in range(12)]
    burst = -10 * 86400.0
    for i, r in enumerate(reporters):
        account(
            r,
            created_at=_ts(burst + rnd.uniform(0, 2 * 3600)),
            name=f"Sher Dil {i}",
            handle=f"sherdil{rnd.randint(10000, 99999)}",
            followers=rnd.randint(0, 15),
        )
        truth.reporters.add(("facebook", r))
        rows["roles"].append(
            {
                "account_id": r,
                "venue_id": group,
                "role": "member",
                "since": _ts(burst + 86400),
                "platform": "facebook",
            }
        )
    listed = [f"o{i}" for i in range(11, 41, 3) if i % 5 not in (0,)][:10]
    truth.targets.update(("facebook", t) for t in listed)
    call_at = 3 * 86400.0 + 15 * 3600
    links = [f"https://www.facebook.com/profile.php?id={t}" for t in listed]
    report_links = [f"https://www.facebook.com/report/profile/?id={t}" for t in listed]
    call = post(
        "m0",
        call_at,
        venue_id=group,
        text="Report these enemies of the nation now, it is our duty! "
        + " ".join(links + report_links),
        urls=links + report_links,
        mentions=listed,
    )
    truth.posts.add(("facebook", call))
    for i, r in enumerate(reporters):
        start = call_at + 300 + 60 * i
        for j, target in enumerate(listed):
            truth.reports.add(
                (
                    "facebook",
                    report(
                        r,
                        target,
                        start + 3.0 * j,
                        reason="terrorism",
                        channel="direct_link",
                        client="Mozilla/5.0 (Windows NT 10.0) Chrome/83.0 AutoFlag/2.1",
                        outcome="rejected",
                    ),
                )
            )
    boast = post(
        "m0",
        call_at + 2 * 86400,
        venue_id=group,
        text="Alhamdulillah, we got them banned: their accounts are taken down. Well done all!",
        mentions=listed[:5],
    )
    truth.posts.add(("facebook", boast))

    _write(con, rows, shuffle=shuffle, empty=empty, rnd=random.Random(seed + 1))
    return truth


def _write(
    con: duckdb.DuckDBPyConnection,
    rows: dict[str, list[dict[str, Any]]],
    *,
    shuffle: bool,
    empty: bool,
    rnd: random.Random,
) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SQL_MACROS)
    for name in INPUT_TABLES:
        contract = CONTRACTS[name]
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(contract.ddl())
        table = [] if empty else list(rows[name])
        if shuffle:
            rnd.shuffle(table)
        columns = [c for c in contract.names if c != "extra"]
        insert_rows(con, name, columns, [tuple(r.get(c) for c in columns) for r in table])
    con.execute("DROP TABLE IF EXISTS actions")
    con.execute(CONTRACTS["actions"].ddl())
    for query in (from_posts("posts"), from_reports("reports"), from_roles("roles")):
        con.execute(f"INSERT INTO actions {query}")
    if shuffle:
        con.execute("CREATE OR REPLACE TABLE actions AS SELECT * FROM actions ORDER BY random()")
