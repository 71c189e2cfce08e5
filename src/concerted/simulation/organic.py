"""The organic platform: everyday posts, popular posts, viral cascades, report
spikes and the trickle of everyday reports. Nothing here carries a truth label."""

from __future__ import annotations

import math

import numpy as np

from concerted.simulation import text as prose
from concerted.simulation.world import (
    DAY,
    FACEBOOK,
    GROUP,
    INSTAGRAM,
    KINDS,
    LANGS,
    PAGE,
    PLATFORMS,
    REASON_WEIGHTS,
    US,
    USER,
    VIOLATIONS,
    IntArray,
    Pool,
    PostColumns,
    ReportColumns,
    World,
    clients,
    profile_link,
    report_link,
    weighted_reason,
)

#: About how many posts :func:`organic_posts` makes at a time.
POSTS_PER_BLOCK = 200_000


#: The span, in days, that one pool of popular posts serves (the default span).
POOL_DAYS = 14


def pool_size(accounts: int, days: int) -> int:
    """How many popular posts a population of ``accounts`` gets over ``days`` days.

    >>> pool_size(20_000, 14), pool_size(20_000, 2), pool_size(20_000, 140)
    (600, 600, 6000)
    """
    return max(50, int(accounts * 0.03 * max(1.0, days / POOL_DAYS)))


def _epoch_ranks(order: IntArray, ts: IntArray, w: World) -> IntArray:
    """Each post's rank within its period of the span, in the order of ``order`` (a
    permutation of the posts): ``order`` itself where the span is one period.

    Spans of more than :data:`POOL_DAYS` days are cut into ``round(days / POOL_DAYS)``
    periods of equal length.
    """
    periods = max(1, round(w.sc.population.days / POOL_DAYS))
    if periods == 1:
        return order
    length = w.span * US / periods
    period = np.minimum((ts - w.start * US) // length, periods - 1).astype(np.int64)
    by = np.lexsort((order, period))
    first = np.searchsorted(period[by], period[by], side="left")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[by] = np.arange(len(order)) - first
    return ranks


def popular_pool(w: World) -> Pool:
    """Popular posts by organic Facebook pages and users, chosen by followers.

    The pool holds 3% of the accounts' number of posts for every :data:`POOL_DAYS` days
    of the span (at least 50, and never fewer than for :data:`POOL_DAYS`), ranked within
    each period of about :data:`POOL_DAYS` days: a longer span brings new popular posts
    rather than more reposts of the same ones, so the reposts the most popular post of
    a period draws, and the pairs of actions on it, do not grow with the span. A span
    of :data:`POOL_DAYS` days or less is one period, ranked as it always was.
    """
    pop = w.sc.population
    rng = w.rng(20)
    acc = w.acc
    authors = np.flatnonzero(
        (acc.kind[: w.organic] != GROUP) & (acc.platform[: w.organic] == FACEBOOK)
    )
    size = pool_size(pop.accounts, pop.days)
    weight = acc.followers[authors].astype(np.float64)
    owners = rng.choice(authors, size, p=weight / weight.sum())
    first = w.posts
    ts = write_posts(w, rng, owners, originals_only=True, pool=None)
    index = np.arange(first, first + size, dtype=np.int64)
    rank_weight = (_epoch_ranks(rng.permutation(size), ts, w) + 1.0) ** -1.1
    cdf = np.cumsum(rank_weight)
    return Pool(index=index, ts=ts, cdf=cdf / cdf[-1], author=owners.astype(np.int64))


def organic_posts(w: World, pool: Pool) -> None:
    """Everyday posts of every account, in blocks of about ``POSTS_PER_BLOCK`` posts, so
    that memory follows the block and not the scale (busy accounts make short blocks)."""
    acc = w.acc
    expected = np.cumsum(acc.rate * w.sc.population.days)
    cuts = np.searchsorted(expected, np.arange(POSTS_PER_BLOCK, expected[-1], POSTS_PER_BLOCK))
    bounds = np.unique(np.concatenate([[0], cuts, np.arange(0, len(acc), 50_000), [len(acc)]]))
    for part, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        rng = w.rng(21, part)
        idx = np.arange(lo, hi)
        counts = rng.poisson(acc.rate[idx] * w.sc.population.days)
        owners = np.repeat(idx, counts)
        write_posts(w, rng, owners, originals_only=False, pool=pool)


def write_posts(
    w: World,
    rng: np.random.Generator,
    owners: IntArray,
    *,
    originals_only: bool,
    pool: Pool | None,
    texts: list[str] | None = None,
) -> IntArray:
    """Ordinary posts by ``owners`` (one each), written at once; returns their times."""
    pop = w.sc.population
    acc = w.acc
    n = len(owners)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    platform = acc.platform[owners]
    kind = acc.kind[owners]
    ts = w.times(rng, acc.tz[owners])
    roll = rng.random(n)
    fb = (platform == FACEBOOK) & (kind == USER)
    if originals_only or pool is None:
        repost = np.zeros(n, dtype=bool)
        reply = np.zeros(n, dtype=bool)
    else:
        repost = fb & (roll < pop.repost_share)
        reply = fb & ~repost & (roll < pop.repost_share + pop.reply_share)
    original = ~repost & ~reply
    langs = [LANGS[c] for c in acc.lang[owners]]
    text: list[str | None] = (
        list(texts) if texts is not None else list(prose.organic_texts(rng, langs))
    )
    reply_words = prose.organic_texts(rng, langs, min_words=2, max_words=8)
    n_tags = np.where(
        original, rng.poisson(pop.hashtags_per_post * np.where(platform == INSTAGRAM, 3, 1)), 0
    )
    n_tags = np.minimum(n_tags, 6)
    tags = prose.hashtags(rng, langs, n_tags)
    has_url = original & (platform == FACEBOOK) & (rng.random(n) < pop.url_share)
    domain_rank = np.minimum(rng.zipf(1.6, n) - 1, len(prose.NEWS_DOMAINS) - 1)
    paths = prose.url_paths(rng, int(has_url.sum()))
    image_share = np.where(platform == INSTAGRAM, 0.7, pop.image_share)
    has_image = original & (rng.random(n) < image_share)
    # Memes: a few images go round many accounts, organically.
    meme = rng.random(n) < 0.05
    image_codes = np.where(
        meme, rng.zipf(1.8, n) % 500, rng.integers(1 << 62, size=n, dtype=np.int64)
    )
    mention = original & (rng.random(n) < 0.05)
    mentioned = rng.integers(0, w.organic, n)
    venue = np.where(kind == PAGE, owners, -1)
    in_group = fb & (acc.home[owners] >= 0) & (rng.random(n) < 0.15)
    venue = np.where(in_group, acc.home[owners], venue)
    repost_of: list[str | None] = [None] * n
    reply_to: list[str | None] = [None] * n
    if pool is not None and (repost.any() or reply.any()):
        share = repost | reply
        picks = np.searchsorted(pool.cdf, rng.random(int(share.sum())))
        delays = rng.lognormal(math.log(3 * 3600), 1.5, len(picks))
        ts[share] = w.after(rng, pool.ts[picks], delays)
        ids = w.post_id(pool.index[picks])
        for j, pid in zip(np.flatnonzero(share), ids, strict=True):
            if repost[j]:
                repost_of[j] = pid
                text[j] = None
            else:
                reply_to[j] = pid
                text[j] = reply_words[j]
    urls: list[list[str]] = [[] for _ in range(n)]
    for k, j in enumerate(np.flatnonzero(has_url)):
        urls[j] = [f"https://{prose.NEWS_DOMAINS[domain_rank[j]]}{paths[k]}"]
    first = w.posts
    w.posts += n
    w.sink.write(
        "posts",
        {
            "post_id": w.post_id(np.arange(first, first + n)),
            "account_id": w.account_id(owners),
            "platform": [PLATFORMS[c] for c in platform],
            "ts": ts,
            "venue_id": [
                None if v < 0 else s
                for v, s in zip(venue, w.account_id(np.maximum(venue, 0)), strict=True)
            ],
            "text": text,
            "lang": [None if t is None else lang for t, lang in zip(text, langs, strict=True)],
            "urls": urls,
            "hashtags": [t if o else [] for t, o in zip(tags, original, strict=True)],
            "mentions": [
                [s] if m else [] for s, m in zip(w.account_id(mentioned), mention, strict=True)
            ],
            "reply_to": reply_to,
            "repost_of": repost_of,
            "image_hashes": [
                [f"{int(c) & ((1 << 62) - 1):016x}"] if h else []
                for c, h in zip(image_codes, has_image, strict=True)
            ],
        },
    )
    return ts


def callouts(w: World) -> None:
    """Ordinary users asking their friends to report an account or two, with the same
    links a brigade's list carries: a call to act is not an operation. A handful of
    friends answer over hours, each in their own way. No label."""
    pop = w.sc.population
    rng = w.rng(23)
    if len(w.fb_users) < 20:
        return
    posts = PostColumns()
    reports = ReportColumns()
    end = (w.start + w.span) * US
    for _ in range(pop.callouts):
        author, *named = (int(a) for a in rng.choice(w.fb_users, 1 + int(rng.integers(1, 4))))
        if author in named:
            continue
        ids = [w.id(t) for t in named]
        links = [profile_link("facebook", i, i) for i in ids]
        reason = weighted_reason(rng)
        flow = [report_link("facebook", i) for i in ids]
        ts = int(w.times(rng, w.acc.tz[[author]])[0])
        lang = LANGS[int(w.acc.lang[author])]
        if lang == "hi":
            lang = "en"
        call = w.posts
        posts.add(
            w,
            index=author,
            ts=ts,
            text=prose.mobilisation_text(
                rng,
                lang,
                targets=links,
                report_links=flow,
                reason=reason,
            ),
            urls=links + flow,
            mentions=ids,
            lang=lang,
        )
        friends = rng.choice(w.fb_users, int(rng.integers(3, 16)), replace=False)
        friends = friends[~np.isin(friends, [author, *named])]
        rows: list[tuple[int, int, int]] = []
        for f in friends:
            start = ts + int(rng.lognormal(math.log(2 * 3600), 1.0) * US)
            for t in named:
                if rng.random() < 0.7:
                    rows.append((int(f), t, start + int(rng.lognormal(math.log(60), 1.0) * US)))
        rows = [r for r in rows if r[2] < end]
        if not rows:
            continue
        channel = [("direct_link", "app", "web")[int(rng.integers(3))] for _ in rows]
        who = np.asarray([r[0] for r in rows], dtype=np.int64)
        reports.extend(
            w,
            who,
            target_id=w.account_id(np.asarray([r[1] for r in rows], dtype=np.int64)),
            target_kind=["account"] * len(rows),
            reason=[reason if rng.random() < 0.5 else weighted_reason(rng) for _ in rows],
            ts=[r[2] for r in rows],
            channel=channel,
            client=clients(w, rng, who, channel),
            outcome=[("rejected", "rejected", "upheld")[int(rng.integers(3))] for _ in rows],
        )
        w.decoys["callouts"].append(
            {"post_id": w.post_id.one(call), "targets": len(named), "reports": len(rows)}
        )
    posts.flush(w)
    reports.flush(w)


def cascades(w: World, pool: Pool) -> None:
    """Viral reposting and news-link sharing within minutes: organic, and no label."""
    pop = w.sc.population
    rng = w.rng(22)
    acc = w.acc
    early = np.flatnonzero(pool.ts < (w.start + w.span - DAY) * US)
    if not len(early) or not len(w.fb_users):
        return
    order = early[np.argsort(-np.diff(np.concatenate([[0.0], pool.cdf]))[early], kind="stable")]
    chosen = order[: pop.cascades]
    # Every third cascade is a news link; the spikes are on reposted posts.
    reposted = [int(p) for number, p in enumerate(chosen) if number % 3 != 2]
    spikes = set(reposted[: pop.report_spikes])
    cols = PostColumns()
    reports = ReportColumns()
    for number, p in enumerate(chosen):
        size = min(len(w.fb_users), max(2, round(pop.cascade_size * rng.lognormal(0, 0.5))))
        who = rng.choice(w.fb_users, size, replace=False)
        link = number % 3 == 2
        base = np.full(size, pool.ts[p])
        delays = rng.lognormal(math.log(8 * 60 if not link else 15 * 60), 1.0, size)
        stamps = w.after(rng, base, delays)
        if link:
            host = prose.NEWS_DOMAINS[int(rng.integers(6))]
            url = f"https://{host}{prose.url_paths(rng, 1)[0]}"
            own = prose.organic_texts(rng, [LANGS[c] for c in acc.lang[who]])
            for a, ts, text in zip(who, stamps, own, strict=True):
                cols.add(w, index=int(a), ts=int(ts), text=text, urls=[url])
            w.decoys["cascades"].append({"kind": "share_url", "object": url, "accounts": int(size)})
        else:
            post_id = w.post_id.one(int(pool.index[p]))
            for a, ts in zip(who, stamps, strict=True):
                cols.add(w, index=int(a), ts=int(ts), repost_of=int(pool.index[p]))
            w.decoys["cascades"].append(
                {"kind": "repost", "object": post_id, "accounts": int(size)}
            )
            if int(p) in spikes:
                # Half the spikes go after the author's account, not the post.
                author = int(pool.author[p]) if len(w.decoys["report_spikes"]) % 2 else None
                report_spike(w, rng, reports, post_id, int(pool.ts[p]), author)
        cols.flush(w)
    reports.flush(w)


def report_spike(
    w: World,
    rng: np.random.Generator,
    reports: ReportColumns,
    post_id: str,
    posted: int,
    author: int | None,
) -> None:
    """Many viewers report a genuinely violating viral post (or its author) on their own."""
    pop = w.sc.population
    size = min(len(w.fb_users), max(2, round(pop.spike_size * rng.lognormal(0, 0.4))))
    who = rng.choice(w.fb_users, size, replace=False)
    if author is not None:
        who = who[who != author]
        size = len(who)
    stamps = w.after(rng, np.full(size, posted), rng.lognormal(math.log(40 * 60), 1.0, size))
    violation = VIOLATIONS[int(rng.integers(len(VIOLATIONS)))]
    reasons = [violation if r < 0.6 else weighted_reason(rng) for r in rng.random(size)]
    channel = ["app" if r < 0.6 else "web" for r in rng.random(size)]
    outcome = ["upheld" if r < 0.8 else None for r in rng.random(size)]
    target, kind = (post_id, "post") if author is None else (w.id(author), "account")
    if author is not None and w.acc.kind[author] == PAGE:
        kind = "page"
    reports.extend(
        w,
        who,
        target_id=[target] * size,
        target_kind=[kind] * size,
        reason=reasons,
        ts=stamps.tolist(),
        channel=channel,
        client=clients(w, rng, who, channel),
        outcome=outcome,
    )
    w.decoys["report_spikes"].append(
        {"target_id": target, "target_kind": kind, "reports": int(size), "reason": violation}
    )


def background_reports(w: World, pool: Pool) -> None:
    """The everyday trickle: anyone reports anything now and then, mostly in vain."""
    pop = w.sc.population
    acc = w.acc
    names = tuple(REASON_WEIGHTS)
    p = np.asarray(tuple(REASON_WEIGHTS.values()))
    p = p / p.sum()
    popular = acc.followers[: w.organic].astype(np.float64)
    popular_cdf = np.cumsum(popular) / popular.sum()
    chunk = 100_000
    for part, lo in enumerate(range(0, len(acc), chunk)):
        rng = w.rng(30, part)
        idx = np.arange(lo, min(len(acc), lo + chunk))
        idx = idx[acc.kind[idx] == USER]
        counts = rng.poisson(
            pop.reports_per_day * pop.days * np.sqrt(acc.rate[idx] / pop.posts_per_day + 0.05),
            len(idx),
        )
        who = np.repeat(idx, counts)
        n = len(who)
        if n == 0:
            continue
        on_post = rng.random(n) < 0.4
        target_acc = np.searchsorted(popular_cdf, rng.random(n))
        # Nobody reports themselves: the next account instead.
        target_acc = np.where(target_acc == who, (target_acc + 1) % w.organic, target_acc)
        target_post = pool.index[np.searchsorted(pool.cdf, rng.random(n))]
        acc_ids = w.account_id(target_acc)
        post_ids = w.post_id(target_post)
        target = [pp if o else a for a, pp, o in zip(acc_ids, post_ids, on_post, strict=True)]
        kinds = [
            "post" if o else KINDS[int(acc.kind[t])].replace("user", "account")
            for o, t in zip(on_post, target_acc, strict=True)
        ]
        channel = ["app" if r < 0.6 else "web" for r in rng.random(n)]
        roll = rng.random(n)
        outcome = ["upheld" if r < 0.2 else "rejected" if r < 0.8 else None for r in roll]
        reports = ReportColumns()
        reports.extend(
            w,
            who,
            target_id=target,
            target_kind=kinds,
            reason=[names[int(c)] for c in rng.choice(len(names), n, p=p)],
            ts=w.times(rng, acc.tz[who]).tolist(),
            channel=channel,
            client=clients(w, rng, who, channel),
            outcome=outcome,
        )
        reports.flush(w)
