"""The fixtures the fuzzer starts from, one or more per adapter (no concerted import, so
that atheris can instrument concerted when it loads it)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

#: (format, fixture) pairs the fuzzer starts from: every adapter's real shapes.
SOURCES: tuple[tuple[str, str], ...] = (
    ("generic", "generic/posts.csv"),
    ("generic", "generic/accounts.tsv"),
    ("generic", "generic/reports.jsonl"),
    ("reports", "reports/reports.csv"),
    ("reports", "reports/reports.jsonl"),
    ("qut", "qut/messages.csv"),
    ("coortweet", "coortweet/long.csv"),
    ("coortweet", "coortweet/wide.csv"),
    ("twitter-io", "twitter_io/example_tweets_csv_hashed.csv"),
    ("twitter-io", "twitter_io/example_users_csv_hashed.csv"),
    ("crowdtangle", "crowdtangle/export_page.csv"),
    ("crowdtangle", "crowdtangle/flat_posts.csv"),
    ("crowdtangle", "crowdtangle/api_posts.jsonl"),
    # The moderation tools' exports (after the others, so that a seed draws the
    # others' inputs as it always has).
    ("mastodon", "moderation/mastodon.json"),
    ("atproto", "moderation/atproto.jsonl"),
    ("synapse", "moderation/synapse.json"),
    ("lemmy", "moderation/lemmy.json"),
)

__all__ = ["FIXTURES", "SOURCES"]
