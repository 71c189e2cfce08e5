"""Simulated platforms with ground truth: the data every detector is judged on.

Real report logs are not public, so concerted builds its own: an organic population
with the habits that fool naive detectors (heavy-tailed activity, daily rhythms,
power-law popularity, viral cascades, organic report spikes against genuinely
violating content) and, planted in it, the operations of the 2020 Pakistan case:

* a **network** of pages, groups, Facebook user accounts and Instagram accounts with
  shared admins, created in bursts, co-posting the same links, hashtags, images and
  copy-pasted texts (with small edits) seconds to minutes apart, and camouflaged by
  ordinary activity;
* **brigades**: admins post lists of up to 80 target profiles with direct report links
  and a call to act in a group; members report the targets over the next minutes to
  hours; some use a bulk-reporting extension (clockwork gaps, one reason, list order);
  fake reporter accounts are created in bursts; admins boast once targets fall.

A scenario is a :class:`Scenario` of parts (:class:`Population`, :class:`Network`,
:class:`Brigade`) whose knobs set size and difficulty; :data:`SCENARIOS` holds the
named ones. :func:`simulate` streams the tables to Parquet in the input contracts
(``accounts``, ``posts``, ``reports``, ``roles``) and writes the truth beside them
(``truth.parquet``: which accounts, posts, reports and targets belong to which
operation, in which role; ``truth.json``: the operations, the decoys and the knobs).
The same seed gives the same bytes.

>>> scenario("brigade", difficulty="hard").brigades[0].automated_share
0.1
>>> scenario("organic", scale=2).population.accounts
40000
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from concerted import __version__, paths
from concerted.actions import SQL_MACROS, from_posts, from_reports, from_roles
from concerted.errors import ConfigError
from concerted.schema import INPUT_TABLES, sql_literal
from concerted.simulation import brigade, network, organic
from concerted.simulation import text as prose
from concerted.simulation.knobs import (
    DIFFICULTIES,
    SCENARIOS,
    Brigade,
    Network,
    Population,
    Scenario,
    scenario,
)
from concerted.simulation.world import (
    DAY,
    EXTENSION_MARK,
    FACEBOOK,
    GROUP,
    INSTAGRAM,
    KINDS,
    LANGS,
    OPERATION_PAGE_WORDS,
    PAGE,
    PAGE_WORDS,
    PLATFORMS,
    TRUTH_SCHEMA,
    US,
    USER,
    Sink,
    World,
    profile_link,
    report_link,
)

__all__ = [
    "DIFFICULTIES",
    "EXTENSION_MARK",
    "FORMATS",
    "OUTPUT_FILES",
    "SCENARIOS",
    "TRUTH_SCHEMA",
    "Brigade",
    "Network",
    "Population",
    "Scenario",
    "Summary",
    "count_actions",
    "report_link",
    "profile_link",
    "scenario",
    "simulate",
]

#: How :func:`simulate` writes the input tables: one Parquet file each
#: (``posts.parquet``), or one directory of Parquet files each (``posts/``), as a data
#: lake holds a table and Spark reads one.
FORMATS = ("parquet", "parquet-dataset")

#: Rows per file of a ``parquet-dataset``, unless told otherwise.
ROWS_PER_FILE = 1_000_000

#: What :func:`simulate` writes (``parquet``; a ``parquet-dataset`` writes a directory
#: in place of each input table's file).
OUTPUT_FILES = (
    "accounts.parquet",
    "posts.parquet",
    "reports.parquet",
    "roles.parquet",
    "truth.parquet",
    "truth.json",
)


@dataclass(frozen=True)
class Summary:
    """What a simulation wrote: rows per table and the actions they will derive."""

    out: Path
    rows: Mapping[str, int]
    actions: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "rows": dict(self.rows),
            "actions": self.actions,
            "seconds": round(self.seconds, 2),
        }


def simulate(
    sc: Scenario,
    *,
    seed: int,
    out: str | Path,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    format: str = "parquet",
    rows_per_file: int = ROWS_PER_FILE,
) -> Summary:
    """Write the scenario's tables and truth to ``out``; the same seed, the same bytes.

    ``format`` is one of :data:`FORMATS`: with ``parquet-dataset`` each input table is
    a directory of files of at most ``rows_per_file`` rows, written as the chunks are
    made, so no table is ever held whole. Files a former run left in ``out`` are
    replaced only with ``overwrite``; if the run fails, what it had written is removed,
    so a directory never holds half a platform.
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown output format {format!r}; known: {', '.join(FORMATS)}")
    began = time.perf_counter()
    say = progress or (lambda _: None)
    target = Path(out)
    paths.directory(target)
    dataset = format == "parquet-dataset"
    written = _outputs(dataset)
    present = [name for name in (*OUTPUT_FILES, *_outputs(True)) if (target / name).exists()]
    if present and not overwrite:
        raise ConfigError(
            f"{target} already holds {', '.join(present)}; pass --overwrite to replace them"
        )
    _remove(target, present)
    sink = Sink(
        target,
        resolution=sc.population.time_resolution,
        rows_per_file=rows_per_file if dataset else None,
    )
    try:
        world = World(sc, seed, sink)
        _build(world, say)
    except BaseException:
        sink.close()
        _remove(target, written)
        raise
    sink.close()
    rows = dict(sink.rows)
    say("counting actions")
    actions = count_actions(target)
    files = {
        name: {
            "rows": rows[name.removesuffix(".parquet").removesuffix("/")],
            **_digest(target / name),
        }
        for name in written
        if name.endswith((".parquet", "/"))
    }
    truth = {
        "scenario": sc.name,
        "seed": seed,
        "version": __version__,
        "format": format,
        "start": datetime.fromtimestamp(world.start, UTC).isoformat(),
        "end": datetime.fromtimestamp(world.start + world.span, UTC).isoformat(),
        "operations": [
            {
                "id": op.id,
                "kind": op.kind,
                "venues": [world.id(v) for v in op.venues],
                **op.counts,
                **(
                    {"twins": [[world.id(a), world.id(b)] for a, b in op.twins]} if op.twins else {}
                ),
            }
            for op in world.operations
        ],
        "decoys": world.decoys,
        "actions": actions,
        "files": files,
        "knobs": sc.knobs(),
    }
    (target / "truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n")
    return Summary(target, rows, actions, time.perf_counter() - began)


def _outputs(dataset: bool) -> tuple[str, ...]:
    """What a run writes: :data:`OUTPUT_FILES`, a directory (``posts/``) for each input
    table's file in a dataset."""
    if not dataset:
        return OUTPUT_FILES
    return tuple(
        f"{name.removesuffix('.parquet')}/"
        if name.removesuffix(".parquet") in INPUT_TABLES
        else name
        for name in OUTPUT_FILES
    )


def _remove(target: Path, names: Sequence[str]) -> None:
    for name in names:
        path = target / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _digest(path: Path) -> dict[str, Any]:
    """A file's SHA-256; a directory's files and the SHA-256 of their SHA-256s, in
    name order."""
    if not path.is_dir():
        return {"sha256": _sha256(path)}
    parts = sorted(path.glob("*.parquet"))
    whole = hashlib.sha256("".join(_sha256(p) for p in parts).encode())
    return {"files": len(parts), "sha256": whole.hexdigest()}


def count_actions(directory: Path, memory_limit: str = "2GB") -> int:
    """How many actions a case derives from the tables in ``directory`` (one file each,
    or one directory of files each), counted by the same SQL that ingest runs
    (:mod:`concerted.actions`)."""
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": 2})
    try:
        con.execute(SQL_MACROS)
        for table in ("posts", "reports", "roles"):
            folder = directory / table
            if folder.is_dir():  # a directory of files, read through a plain name
                path = sql_literal(f"{paths.readable(folder)}/*.parquet")
            else:
                path = sql_literal(paths.readable(directory / f"{table}.parquet"))
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({path})")
        union = " UNION ALL ".join(
            f"SELECT count(*) AS n FROM ({q})"
            for q in (from_posts("posts"), from_reports("reports"), from_roles("roles"))
        )
        (total,) = con.sql(f"SELECT sum(n) FROM ({union})").fetchone() or (0,)
        return int(total or 0)
    finally:
        con.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _build(w: World, say: Callable[[str], None]) -> None:
    sc = w.sc
    pop = sc.population
    rng = w.rng(1)
    say("population")
    acc = w.population(rng, pop.accounts, pop.languages)
    n = pop.accounts
    kind_draw = rng.random(n)
    acc.kind[kind_draw < pop.page_share] = PAGE
    acc.kind[(kind_draw >= pop.page_share) & (kind_draw < pop.page_share + pop.group_share)] = GROUP
    users = acc.kind == USER
    acc.platform[users & (rng.random(n) < pop.instagram_share)] = INSTAGRAM
    pages = acc.kind == PAGE
    acc.followers[pages] = np.round(rng.lognormal(8.0, 1.5, int(pages.sum()))).astype(np.int64)
    acc.followers[acc.kind == GROUP] = np.round(
        rng.lognormal(7.0, 1.2, int((acc.kind == GROUP).sum()))
    ).astype(np.int64)
    acc.rate[pages] *= 3
    acc.rate[acc.kind == GROUP] = 0.0
    groups = np.flatnonzero(acc.kind == GROUP)
    fb_users = np.flatnonzero(users & (acc.platform == FACEBOOK))
    if len(groups):
        joins = fb_users[rng.random(len(fb_users)) < pop.group_membership]
        acc.home[joins] = rng.choice(groups, len(joins))
    w.acc = acc
    w.organic = n
    w.fb_users = fb_users

    nets = [network.plan_network(w, i, net) for i, net in enumerate(sc.networks)]
    brigs = [brigade.plan_brigade(w, i, b, nets) for i, b in enumerate(sc.brigades)]

    say("accounts")
    _write_accounts(w)
    _write_roles(w, nets, brigs)
    say("posts")
    pool = organic.popular_pool(w)
    organic.organic_posts(w, pool)
    organic.cascades(w, pool)
    organic.callouts(w)
    for net in nets:
        network.network_posts(w, net)
    for brig in brigs:
        brigade.target_posts(w, brig)
    say("reports")
    organic.background_reports(w, pool)
    for brig in brigs:
        brigade.brigade_reports(w, brig)
    say("truth")
    w.flush_truth()


def _write_accounts(w: World) -> None:
    acc = w.acc
    total = len(acc)
    chunk = 200_000
    for part, lo in enumerate(range(0, total, chunk)):
        rng = w.rng(2, part)
        idx = np.arange(lo, min(total, lo + chunk))
        kinds = acc.kind[idx]
        langs = [LANGS[c] for c in acc.lang[idx]]
        people = prose.person_names(rng, langs)
        handles = prose.handles(rng, [r for _, r in people], acc.digits[idx].astype(np.int64))
        names = [d for d, _ in people]
        for j in np.flatnonzero(kinds != USER):
            words = OPERATION_PAGE_WORDS if idx[j] in w.operation_venues else PAGE_WORDS
            first = words[0][int(rng.integers(len(words[0])))]
            second = words[1][int(rng.integers(len(words[1])))]
            names[j] = f"{first} {second}"
            handles[j] = f"{first}{second}".replace(" ", "").lower() + str(rng.integers(10, 999))
        for j in np.flatnonzero(np.isin(idx, np.fromiter(w.names, np.int64, len(w.names)))):
            names[j], handles[j] = w.names[int(idx[j])]
        for j in np.flatnonzero(np.isin(idx, w.targets)):
            w.handles[int(idx[j])] = handles[j]
        w.sink.write(
            "accounts",
            {
                "account_id": w.account_id(idx),
                "platform": [PLATFORMS[c] for c in acc.platform[idx]],
                "kind": [KINDS[c] for c in kinds],
                "created_at": acc.created[idx],
                "name": names,
                "handle": handles,
                "followers": acc.followers[idx],
            },
        )


def _write_roles(
    w: World, nets: list[network.NetworkPlan], brigs: list[brigade.BrigadePlan]
) -> None:
    acc = w.acc
    latest = w.start * US - US
    # Organic memberships, in blocks.
    members = np.flatnonzero(acc.home >= 0)
    members = members[(members < w.organic) & (acc.home[members] < w.organic)]
    rng = w.rng(3)
    for lo in range(0, len(members), 500_000):
        part = members[lo : lo + 500_000]
        since = np.maximum(acc.created[part], acc.created[acc.home[part]])
        since += np.round(rng.uniform(0, 200 * DAY, len(part)) * US).astype(np.int64)
        w.sink.write(
            "roles",
            {
                "account_id": w.account_id(part),
                "venue_id": w.account_id(acc.home[part]),
                "role": ["member"] * len(part),
                "since": np.minimum(since, latest),
                "platform": ["facebook"] * len(part),
            },
        )
    # The operations' roles: one row per (account, venue, role), as the contract's key
    # says, since a network user recruited into a brigade may already be in its group.
    rows: dict[tuple[int, int, str], int] = {}

    def add(accounts: Sequence[int], venue: int, role: str, since: Sequence[int]) -> None:
        for a, t in zip(accounts, since, strict=True):
            rows.setdefault((int(a), venue, role), min(int(t), latest))

    for plan in nets:
        for venue, admins in plan.admins.items():
            add(admins, venue, "admin", [int(acc.created[venue])] * len(admins))
        for venue, group_members in plan.members.items():
            joined = np.maximum(acc.created[np.asarray(group_members)], acc.created[venue])
            add(group_members, venue, "member", (joined + DAY * US).tolist())
    for brig in brigs:
        if brig.own_venue:
            created = int(acc.created[brig.venue])
            add(brig.organisers, brig.venue, "admin", [created] * len(brig.organisers))
        joined = acc.created[brig.members] + DAY * US
        add(brig.members.tolist(), brig.venue, "member", joined.tolist())
    if rows:
        keys = list(rows)
        venues = np.asarray([k[1] for k in keys], dtype=np.int64)
        w.sink.write(
            "roles",
            {
                "account_id": w.account_id(np.asarray([k[0] for k in keys], dtype=np.int64)),
                "venue_id": w.account_id(venues),
                "role": [k[2] for k in keys],
                "since": list(rows.values()),
                "platform": [PLATFORMS[c] for c in acc.platform[venues]],
            },
        )
