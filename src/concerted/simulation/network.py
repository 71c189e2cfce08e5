"""A coordinated network: its assets, its admins, and its co-posting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from concerted.simulation import text as prose
from concerted.simulation.knobs import Network
from concerted.simulation.world import (
    DAY,
    FACEBOOK,
    GROUP,
    INSTAGRAM,
    LANGS,
    PAGE,
    PLATFORMS,
    US,
    USER,
    IntArray,
    Operation,
    PostColumns,
    World,
    bursts,
)


@dataclass
class NetworkPlan:
    """A network's assets (account indices), its admins and members per venue, its tags."""

    op: Operation
    net: Network
    pages: IntArray
    groups: IntArray
    users: IntArray
    instagram: IntArray
    admins: dict[int, list[int]]
    members: dict[int, list[int]]
    tags: list[str]


def plan_network(w: World, number: int, net: Network) -> NetworkPlan:
    """Create the network's accounts and venues, and label them in the truth."""
    rng = w.rng(10, number)
    op = Operation(f"network-{number + 1}", "network")
    sizes = (net.pages, net.groups, net.users, net.instagram)
    total = sum(sizes)
    acc = w.population(rng, total, net.languages)
    acc.digits = np.where(rng.random(total) < net.digit_handles, rng.integers(2, 6, total), 0)
    acc.digits = acc.digits.astype(np.float64)
    kinds = np.repeat([PAGE, GROUP, USER, USER], sizes).astype(np.int8)
    acc.kind = kinds
    acc.platform = np.repeat([FACEBOOK, FACEBOOK, FACEBOOK, INSTAGRAM], sizes).astype(np.int8)
    acc.created = bursts(w, rng, total, net.creation_bursts, net.burst_hours, net.burst_share)
    venues = kinds != USER
    acc.created[venues] = w.at(-rng.uniform(60 * DAY, 3 * 365 * DAY, int(venues.sum())))
    acc.followers = np.round(rng.lognormal(4.0, 1.0, total)).astype(np.int64)
    acc.followers[kinds == PAGE] = np.round(rng.lognormal(9.0, 1.0, net.pages)).astype(np.int64)
    acc.followers[kinds == GROUP] = np.round(rng.lognormal(8.0, 1.0, net.groups)).astype(np.int64)
    # Camouflage: ordinary activity in proportion to the coordinated kind.
    acc.rate = np.full(total, net.camouflage * net.items_per_day * net.participation)
    acc.rate[kinds == GROUP] = 0.0
    span = w.extend(acc)
    index = np.arange(span.start, span.stop)
    bounds = np.cumsum((0, *sizes))
    pages, groups, users, insta = (index[bounds[i] : bounds[i + 1]] for i in range(4))
    admins_pool = rng.choice(users, min(net.admins, len(users)), replace=False)
    admins: dict[int, list[int]] = {}
    for venue in np.concatenate([pages, groups]):
        k = int(rng.integers(1, 4))
        admins[int(venue)] = sorted(
            int(a) for a in rng.choice(admins_pool, min(k, len(admins_pool)), replace=False)
        )
    members: dict[int, list[int]] = {int(g): [] for g in groups}
    if len(groups):
        for u in users:
            k = min(len(groups), 1 + int(rng.poisson(2)))
            joined = rng.choice(groups, k, replace=False)
            w.acc.home[u] = joined[0]
            for g in joined:
                members[int(g)].append(int(u))
        outsiders = w.fb_users
        for g in groups:
            picked = rng.choice(outsiders, min(net.organic_members, len(outsiders)), replace=False)
            members[int(g)].extend(int(p) for p in picked)
            mover = picked[rng.random(len(picked)) < 0.3]
            w.acc.home[mover] = g
    # One operator, two platforms: an Instagram account with a Facebook account's name.
    n_twins = min(len(users), round(net.twin_share * len(insta)))
    fb_twins = rng.choice(users, n_twins, replace=False)
    ig_twins = rng.choice(insta, n_twins, replace=False)
    people = prose.person_names(rng, [LANGS[c] for c in w.acc.lang[fb_twins]])
    handles = prose.handles(rng, [r for _, r in people], w.acc.digits[fb_twins].astype(np.int64))
    for fb, ig, (name, _), handle in zip(fb_twins, ig_twins, people, handles, strict=True):
        variant = handle + ("", "", "_", ".official", "_pk")[int(rng.integers(5))]
        w.names[int(fb)] = (name, handle)
        w.names[int(ig)] = (name, variant)
        op.twins.append((int(fb), int(ig)))
    w.operation_venues.update(int(v) for v in np.concatenate([pages, groups]))
    op.venues = [int(v) for v in np.concatenate([pages, groups])]
    op.counts = {
        "pages": int(net.pages),
        "groups": int(net.groups),
        "facebook_users": int(net.users),
        "instagram_accounts": int(net.instagram),
        "admins": len(admins_pool),
    }
    words = ("Pakistan", "Army", "Zindabad", "Shaheed", "Nation", "Watan", "Stand", "Forever")
    tags = []
    for _ in range(8):
        a, b = rng.choice(len(words), 2, replace=False)
        tags.append(f"{words[int(a)]}{words[int(b)]}{int(rng.integers(10, 99))}")
    for asset, kind in ((pages, "page"), (groups, "group"), (users, "user"), (insta, "instagram")):
        for a in asset:
            w.label(op.id, "account", w.id(int(a)), w.platform(int(a)), "member", kind)
    for a in admins_pool:
        w.label(op.id, "account", w.id(int(a)), "facebook", "organiser", "admin")
    w.operations.append(op)
    return NetworkPlan(op, net, pages, groups, users, insta, admins, members, tags)


def network_posts(w: World, plan: NetworkPlan) -> None:
    """Each talking point: a page posts it, then the assets that join co-post it."""
    net = plan.net
    number = int(plan.op.id.rsplit("-", 1)[1])
    rng = w.rng(11, number)
    n_items = max(1, round(net.items_per_day * w.sc.population.days))
    lang_p = np.asarray(net.languages) / np.sum(net.languages)
    item_lang = rng.choice(len(LANGS), n_items, p=lang_p)
    texts: list[str] = [""] * n_items
    for code in np.unique(item_lang):
        where = np.flatnonzero(item_lang == code)
        made = prose.talking_points(rng, LANGS[int(code)], len(where))
        for j, t in zip(where, made, strict=True):
            texts[int(j)] = t
    kinds = rng.choice(4, n_items, p=(0.4, 0.3, 0.15, 0.15))  # link, text, hashtag, image
    pkt = np.full(n_items, 5 * 3600, dtype=np.int64)
    seeds = w.times(rng, pkt)
    latest = (w.start + w.span - 3600) * US
    seeds = np.where(seeds > latest, seeds - DAY * US, seeds)
    actors = np.concatenate([plan.pages, plan.users, plan.instagram])
    paths = prose.url_paths(rng, n_items)
    cols = PostColumns()
    for i in range(n_items):
        lead = int(rng.choice(plan.pages))
        kind = int(kinds[i])
        text = texts[i]
        url = None
        if kind == 0:
            domains = prose.OPERATION_DOMAINS + ("youtube.com",)
            url = f"https://{domains[int(rng.integers(len(domains)))]}{paths[i]}"
        tags = [
            plan.tags[int(t)]
            for t in rng.choice(len(plan.tags), int(rng.integers(1, 3)), replace=False)
        ]
        if kind != 2 and rng.random() >= 0.6:
            tags = []
        image = f"{int(rng.integers(1 << 62)):016x}" if kind == 3 else None
        lead_post = w.posts
        cols.add(
            w,
            index=lead,
            ts=int(seeds[i]),
            text=text,
            urls=[url] if url else [],
            hashtags=tags,
            images=[image] if image else [],
            venue=lead,
        )
        w.label(plan.op.id, "post", w.post_id.one(lead_post), "facebook", "coordinated")
        joined = actors[(rng.random(len(actors)) < net.participation) & (actors != lead)]
        delays = rng.exponential(max(net.jitter, 0.001), len(joined)) + 1.0
        stamps = w.after(rng, np.full(len(joined), seeds[i]), delays)
        for a, ts in zip(joined, stamps, strict=True):
            a = int(a)
            number_before = w.posts
            is_ig = w.acc.platform[a] == INSTAGRAM
            if not is_ig and w.acc.kind[a] == USER and rng.random() < net.repost_share:
                cols.add(w, index=a, ts=int(ts), repost_of=lead_post)
            else:
                copy = prose.edit_text(rng, text, net.edit_rate)
                link = [] if (url is None or is_ig) else [vary(rng, url)]
                venue = None
                if w.acc.kind[a] == PAGE:
                    venue = a
                elif not is_ig and w.acc.home[a] >= 0 and rng.random() < 0.5:
                    venue = int(w.acc.home[a])
                cols.add(
                    w,
                    index=a,
                    ts=int(ts),
                    text=copy,
                    urls=link,
                    hashtags=tags,
                    images=[image] if image else [],
                    venue=venue,
                )
            w.label(
                plan.op.id,
                "post",
                w.post_id.one(number_before),
                PLATFORMS[w.acc.platform[a]],
                "coordinated",
            )
        if len(cols) >= 200_000:
            cols.flush(w)
    cols.flush(w)
    plan.op.counts["items"] = n_items


def vary(rng: np.random.Generator, url: str) -> str:
    """The same link as people paste it: tracking parameters, mobile host, no scheme."""
    roll = rng.random()
    if roll < 0.2:
        return url + "?utm_source=facebook&utm_medium=social"
    if roll < 0.3:
        return url.replace("https://", "https://m.", 1)
    if roll < 0.4:
        return url.replace("https://", "http://", 1)
    return url
