"""A mass-reporting brigade: organisers, members, fake and automated reporters,
target lists, reports and boasts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from concerted.errors import ConfigError
from concerted.simulation import text as prose
from concerted.simulation.knobs import Brigade
from concerted.simulation.network import NetworkPlan
from concerted.simulation.organic import write_posts
from concerted.simulation.world import (
    BROWSERS,
    DAY,
    EXTENSION_MARK,
    FACEBOOK,
    GROUP,
    LANGS,
    US,
    USER,
    IntArray,
    Operation,
    PostColumns,
    ReportColumns,
    World,
    clients,
    profile_link,
    report_link,
    weighted_reason,
)


@dataclass
class BrigadePlan:
    """A brigade's venue, organisers, members (and which are fake or automated), targets."""

    op: Operation
    brig: Brigade
    venue: int
    own_venue: bool
    organisers: list[int]
    members: IntArray
    automated: npt.NDArray[np.bool_]
    fake: npt.NDArray[np.bool_]
    targets: IntArray
    minority: npt.NDArray[np.bool_]
    lang: str


def plan_brigade(w: World, number: int, b: Brigade, nets: list[NetworkPlan]) -> BrigadePlan:
    """Create (or, in a network, take) the venue, organisers and members; pick targets."""
    rng = w.rng(40, number)
    op = Operation(f"brigade-{number + 1}", "brigade")
    lang_p = np.asarray(b.languages) / np.sum(b.languages)
    lang = LANGS[int(rng.choice(len(LANGS), p=lang_p))]
    net = nets[number % len(nets)] if nets and b.from_network > 0 else None
    own_venue = net is None or not len(net.groups)
    if net is not None and not own_venue:
        venue = int(net.groups[number % len(net.groups)])
        organisers = list(net.admins[venue])
    else:
        founders = w.population(rng, b.organisers + 1, b.languages)
        founders.kind[0] = GROUP
        founders.rate[0] = 0.0
        founders.followers[0] = int(rng.lognormal(8, 0.8))
        founders.created[1:] = w.at(-rng.uniform(2 * 365 * DAY, 8 * 365 * DAY, b.organisers))
        span = w.extend(founders)
        venue = span.start
        organisers = list(range(span.start + 1, span.stop))
    w.operation_venues.add(venue)
    from_net = 0
    recruited = np.zeros(0, dtype=np.int64)
    if net is not None:
        from_net = min(len(net.users), round(b.members * b.from_network))
        recruited = rng.choice(net.users, from_net, replace=False)
    fresh = b.members - from_net
    # fake_share is of all members; the network's own accounts are not made for this.
    fake = rng.random(fresh) < min(1.0, b.fake_share * b.members / max(fresh, 1))
    people = w.population(rng, fresh, b.languages)
    people.platform[:] = FACEBOOK
    # Fake reporters were made for this: created weeks before, barely active otherwise.
    recent = w.at(-rng.uniform(5 * DAY, 40 * DAY, 2))
    burst_of = rng.integers(0, 2, int(fake.sum()))
    people.created[fake] = recent[burst_of] - np.round(
        rng.random(int(fake.sum())) * 6 * 3600 * US
    ).astype(np.int64)
    people.rate = people.rate * b.camouflage
    people.rate[fake] = 0.03 * b.camouflage
    people.digits[fake] = rng.integers(2, 6, int(fake.sum()))
    span = w.extend(people)
    members = np.concatenate([recruited, np.arange(span.start, span.stop)]).astype(np.int64)
    is_fake = np.concatenate([np.zeros(from_net, dtype=bool), fake])
    automated = rng.random(len(members)) < b.automated_share
    # Targets: ordinary Facebook users (critics) and accounts of a religious minority,
    # reported where they live.
    hindi = LANGS.index("hi")
    candidates = np.flatnonzero(
        (w.acc.kind[: w.organic] == USER)
        & (w.acc.platform[: w.organic] == FACEBOOK)
        & (w.acc.followers[: w.organic] >= 60)
        & (w.acc.lang[: w.organic] != hindi)
    )
    candidates = np.setdiff1d(candidates, w.targets)
    if len(candidates) < b.targets:
        # A small population: any Facebook user not yet a target will do.
        every = np.flatnonzero(
            (w.acc.kind[: w.organic] == USER) & (w.acc.platform[: w.organic] == FACEBOOK)
        )
        candidates = np.setdiff1d(every, w.targets)
    if not len(candidates):
        raise ConfigError(f"{op.id} finds no Facebook user to target; raise population.accounts")
    targets = rng.choice(candidates, min(b.targets, len(candidates)), replace=False)
    w.targets = np.concatenate([w.targets, targets])
    minority = rng.random(len(targets)) < b.minority_share
    op.venues = [venue]
    for o in organisers:
        w.label(op.id, "account", w.id(o), w.platform(o), "organiser", "admin")
    for m, f, a in zip(members, is_fake, automated, strict=True):
        ident, platform = w.id(int(m)), w.platform(int(m))
        w.label(op.id, "account", ident, platform, "reporter")
        if f:
            w.label(op.id, "account", ident, platform, "fake_reporter")
        if a:
            w.label(op.id, "account", ident, platform, "automated_reporter")
    for t, is_minority in zip(targets, minority, strict=True):
        w.label(
            op.id,
            "target",
            w.id(int(t)),
            w.platform(int(t)),
            "target",
            "minority" if is_minority else "critic",
        )
    op.counts = {
        "organisers": len(organisers),
        "reporters": int(len(members)),
        "fake_reporters": int(is_fake.sum()),
        "automated_reporters": int(automated.sum()),
        "targets": int(len(targets)),
        "minority_targets": int(minority.sum()),
    }
    w.operations.append(op)
    return BrigadePlan(
        op, b, venue, own_venue, organisers, members, automated, is_fake, targets, minority, lang
    )


def target_posts(w: World, plan: BrigadePlan) -> None:
    """What made them targets: critics write about rights and prices; the minority's
    accounts about their community."""
    rng = w.rng(41, int(plan.op.id.rsplit("-", 1)[1]))
    counts = rng.poisson(0.5 * w.sc.population.days, len(plan.targets))
    owners = np.repeat(plan.targets, counts)
    minority = np.repeat(plan.minority, counts)
    texts: list[str] = []
    for o, is_minority in zip(owners, minority, strict=True):
        lang = LANGS[int(w.acc.lang[o])]
        make = prose.minority_texts if is_minority else prose.critic_texts
        texts.extend(make(rng, lang, 1))
    write_posts(w, rng, owners, originals_only=True, pool=None, texts=texts)


def brigade_reports(w: World, plan: BrigadePlan) -> None:
    """The waves: a target list, the reports it sets off, the outcomes, the boasts."""
    b = plan.brig
    number = int(plan.op.id.rsplit("-", 1)[1])
    rng = w.rng(42, number)
    acc = w.acc
    posts = PostColumns()
    reports = ReportColumns()
    wave_offsets = np.sort(rng.uniform(0.05, 0.8, b.waves)) * w.span
    # Waves are called in the evening, Pakistan time.
    wave_offsets = (
        np.floor(wave_offsets / DAY) * DAY + (20 - 5) * 3600 + rng.uniform(0, 2 * 3600, b.waves)
    )
    wave_ts = w.at(np.minimum(wave_offsets, w.span - 6 * 3600))
    marked = rng.random(len(plan.members)) < b.fingerprint_leak
    end = (w.start + w.span) * US
    total = 0
    actioned_all: set[int] = set()
    for wave in range(b.waves):
        size = int(rng.integers(min(10, len(plan.targets)), min(b.list_max, len(plan.targets)) + 1))
        listed = rng.choice(plan.targets, size, replace=False)
        minority_share = plan.minority[np.isin(plan.targets, listed)].mean()
        choices = (
            ("blasphemy", "hate_speech", "fake_account")
            if minority_share > 0.5
            else ("terrorism", "false_information", "fake_account")
        )
        reason = choices[int(rng.integers(len(choices)))]
        organiser = plan.organisers[int(rng.integers(len(plan.organisers)))]
        ids = w.account_id(listed)
        links = [
            profile_link(w.platform(int(t)), i, w.handles.get(int(t), i))
            for t, i in zip(listed, ids, strict=True)
        ]
        report_links = [
            report_link(w.platform(int(t)), i) for t, i in zip(listed, ids, strict=True)
        ]
        text = prose.mobilisation_text(
            rng, plan.lang, targets=links, report_links=report_links, reason=reason
        )
        call = w.posts
        posts.add(
            w,
            index=organiser,
            ts=int(wave_ts[wave]),
            text=text,
            urls=links + report_links,
            mentions=ids,
            venue=plan.venue,
            lang=plan.lang,
        )
        w.label(plan.op.id, "post", w.post_id.one(call), "facebook", "mobilisation", reason)
        rows: list[tuple[int, int, int, str, str, str, bool]] = []
        for k, m in enumerate(plan.members):
            if rng.random() >= b.participation:
                continue
            m = int(m)
            if plan.automated[k]:
                start = rng.lognormal(math.log(15 * 60), 0.6)
                if b.extension_jitter > 0:
                    gaps = np.maximum(
                        0.5,
                        b.extension_gap
                        + rng.uniform(-b.extension_jitter, b.extension_jitter, size),
                    )
                else:
                    gaps = np.maximum(0.5, b.extension_gap + rng.normal(0, 0.15, size))
                offsets = start + np.cumsum(gaps) - gaps[0]
                order = np.arange(size)
                chosen_reason = [reason] * size
                channel = ["direct_link"] * size
                agent = BROWSERS[int(acc.agent[m])] + (f" {EXTENSION_MARK}" if marked[k] else "")
                agents = [agent] * size
            else:
                keep = np.flatnonzero(rng.random(size) < b.coverage)
                if rng.random() >= 0.5:
                    keep = rng.permutation(keep)
                order = keep
                start = rng.lognormal(math.log(b.human_delay * 60), 0.8)
                gaps = rng.lognormal(math.log(max(b.human_gap, 1.0)), 0.7, len(order))
                offsets = start + np.cumsum(gaps) - (gaps[0] if len(gaps) else 0)
                chosen_reason = [
                    reason if r < b.reason_focus else weighted_reason(rng)
                    for r in rng.random(len(order))
                ]
                channel = [
                    "direct_link" if r < b.direct_link_share else ("app" if r < 0.9 else "web")
                    for r in rng.random(len(order))
                ]
                agents = clients(w, rng, np.full(len(order), m), channel)
            stamps = int(wave_ts[wave]) + np.round(offsets * US).astype(np.int64)
            for j, ts, why, ch, client in zip(
                order, stamps, chosen_reason, channel, agents, strict=True
            ):
                if ts < end:
                    rows.append(
                        (m, int(listed[int(j)]), int(ts), why, ch, client, bool(plan.automated[k]))
                    )
        rows.sort(key=lambda r: (r[2], r[0]))
        # The platform takes volume at its word: enough reports in a day and it acts.
        counts: dict[int, list[int]] = {}
        for r in rows:
            counts.setdefault(r[1], []).append(r[2])
        actioned = {
            t: sorted(stamps)[b.uphold_threshold - 1]
            for t, stamps in counts.items()
            if len(stamps) >= b.uphold_threshold
            and sorted(stamps)[b.uphold_threshold - 1] - min(stamps) <= DAY * US
        }
        actioned_all.update(actioned)
        pending_after = end - DAY * US
        reporters = np.asarray([r[0] for r in rows], dtype=np.int64)
        report_ids = reports.extend(
            w,
            reporters,
            target_id=w.account_id(np.asarray([r[1] for r in rows], dtype=np.int64))
            if rows
            else [],
            target_kind=["account"] * len(rows),
            reason=[r[3] for r in rows],
            ts=[r[2] for r in rows],
            channel=[r[4] for r in rows],
            client=[r[5] for r in rows],
            outcome=[
                None if r[2] > pending_after else ("upheld" if r[1] in actioned else "rejected")
                for r in rows
            ],
        )
        for rid, r in zip(report_ids, rows, strict=True):
            w.label(plan.op.id, "report", rid, "facebook", "automated" if r[6] else "human", reason)
        total += len(rows)
        if actioned:
            boast_ts = max(actioned.values()) + int(rng.lognormal(math.log(3 * 3600), 0.5) * US)
            if boast_ts < end:
                fallen = sorted(actioned)
                handles = [w.handles.get(t, w.id(t)) for t in fallen]
                post = w.posts
                posts.add(
                    w,
                    index=organiser,
                    ts=boast_ts,
                    text=prose.boast_text(rng, plan.lang, handles=handles),
                    mentions=w.account_id(np.asarray(fallen, dtype=np.int64)),
                    venue=plan.venue,
                    lang=plan.lang,
                )
                w.label(plan.op.id, "post", w.post_id.one(post), "facebook", "boast")
    posts.flush(w)
    reports.flush(w)
    plan.op.counts |= {"waves": b.waves, "reports": total, "actioned_targets": len(actioned_all)}
