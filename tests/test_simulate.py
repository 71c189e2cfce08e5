"""The simulator: determinism, truth that points at real rows, knobs that do what they
say, and organic data with the hard negatives in it and no labels."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from concerted import evaluate, simulate
from concerted.errors import ConfigError
from concerted.ingest import IngestOptions, ingest
from concerted.store import Store

# Most simulate whole worlds (seconds each): left out of `make test-fast`.
pytestmark = pytest.mark.heavy

SMALL = {
    "population.accounts": "3000",
    "population.cascades": "4",
    "population.report_spikes": "2",
}

TABLES = ("accounts", "posts", "reports", "roles")


def small(name: str, **knobs: str) -> simulate.Scenario:
    extra = {k.replace("__", "."): v for k, v in knobs.items()}
    return simulate.scenario(name, knobs={**SMALL, **extra})


Run = Callable[..., Path]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Simulations shared by the tests of this module, made once per arguments."""
    made: dict[tuple[Any, ...], Path] = {}

    def run(name: str, seed: int = 1, **knobs: str) -> Path:
        key = (name, seed, tuple(sorted(knobs.items())))
        if key not in made:
            out = tmp_path_factory.mktemp(name)
            simulate.simulate(small(name, **knobs), seed=seed, out=out)
            made[key] = out
        return made[key]

    yield run


def sql(directory: Path, query: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    for name in (*TABLES, "truth"):
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{directory / (name + '.parquet')}')"
        )
    return con.sql(query).fetchall()


def one(directory: Path, query: str) -> Any:
    return sql(directory, query)[0][0]


def test_same_seed_same_bytes(runs: Run, tmp_path: Path) -> None:
    first = runs("pakistan-2020")
    again = tmp_path / "again"
    simulate.simulate(small("pakistan-2020"), seed=1, out=again)
    for name in simulate.OUTPUT_FILES:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    other = runs("pakistan-2020", seed=2)
    assert (first / "posts.parquet").read_bytes() != (other / "posts.parquet").read_bytes()


@pytest.mark.parametrize("name", ["cib", "brigade", "pakistan-2020"])
def test_every_truth_id_is_in_the_data(runs: Run, name: str) -> None:
    out = runs(name)
    missing = {
        "account": "SELECT count(*) FROM truth t WHERE entity IN ('account', 'target') AND "
        "NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.id "
        "AND a.platform = t.platform)",
        "post": "SELECT count(*) FROM truth t WHERE entity = 'post' AND NOT EXISTS "
        "(SELECT 1 FROM posts p WHERE p.post_id = t.id AND p.platform = t.platform)",
        "report": "SELECT count(*) FROM truth t WHERE entity = 'report' AND NOT EXISTS "
        "(SELECT 1 FROM reports r WHERE r.report_id = t.id AND r.platform = t.platform)",
    }
    for entity, query in missing.items():
        assert one(out, query) == 0, entity
    assert one(out, "SELECT count(*) FROM truth") > 0
    # Ids are unique per table, as the contracts' keys say.
    assert one(out, "SELECT count(*) - count(DISTINCT post_id) FROM posts") == 0
    assert one(out, "SELECT count(*) - count(DISTINCT account_id) FROM accounts") == 0
    assert one(out, "SELECT count(*) - count(DISTINCT report_id) FROM reports") == 0


def test_reports_point_at_accounts_and_posts_that_exist(runs: Run) -> None:
    out = runs("pakistan-2020")
    dangling = one(
        out,
        "SELECT count(*) FROM reports r WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE "
        "a.account_id = r.target_id) AND NOT EXISTS (SELECT 1 FROM posts p WHERE "
        "p.post_id = r.target_id)",
    )
    assert dangling == 0
    reposts = one(
        out,
        "SELECT count(*) FROM posts p WHERE repost_of IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM posts o WHERE o.post_id = p.repost_of AND o.ts <= p.ts)",
    )
    assert reposts == 0


def test_the_files_load_into_a_case(runs: Run, tmp_path: Path) -> None:
    out = runs("pakistan-2020")
    with Store(tmp_path / "case.duckdb", memory_limit="1GB") as store:
        reports = ingest(
            store, [out / f"{t}.parquet" for t in TABLES], IngestOptions(format="generic")
        )
        for report in reports:
            assert report.rows_set_aside == 0
        truth = json.loads((out / "truth.json").read_text())
        actions = store.sql("SELECT count(*) FROM actions").fetchone()
        assert actions is not None
        # The simulator's count of the actions its rows derive holds in a real case.
        assert actions[0] == truth["actions"]
        counts = dict(store.sql("SELECT kind, count(*) FROM actions GROUP BY kind").fetchall())
    for kind in ("repost", "reply", "share_url", "share_domain", "hashtag", "text", "image"):
        assert counts.get(kind, 0) > 0, kind
    assert counts["report"] == one(out, "SELECT count(*) FROM reports")


def test_organic_has_cascades_and_spikes_and_no_labels(runs: Run) -> None:
    out = runs("organic")
    truth = json.loads((out / "truth.json").read_text())
    assert truth["operations"] == []
    assert one(out, "SELECT count(*) FROM truth") == 0
    # A viral cascade: one post reposted by 100 or more accounts within 30 minutes of it.
    cascades = one(
        out,
        "SELECT count(*) FROM (SELECT p.repost_of FROM posts p JOIN posts o "
        "ON o.post_id = p.repost_of WHERE p.ts <= o.ts + INTERVAL 30 MINUTE "
        "GROUP BY p.repost_of HAVING count(DISTINCT p.account_id) >= 100)",
    )
    assert cascades >= 1
    # A news link shared by 100 or more accounts within an hour.
    links = one(
        out,
        "SELECT count(*) FROM (SELECT u, min(ts) AS first, count(DISTINCT account_id) AS n "
        "FROM (SELECT unnest(urls) AS u, ts, account_id FROM posts) GROUP BY u) WHERE n >= 100",
    )
    assert links >= 1
    # A report spike: 100 or more reports against one target within two hours.
    spikes = one(
        out,
        "SELECT count(DISTINCT target_id) FROM (SELECT target_id, count(*) OVER (PARTITION BY "
        "target_id ORDER BY ts RANGE BETWEEN CURRENT ROW AND INTERVAL 2 HOUR FOLLOWING) AS n "
        "FROM reports) WHERE n >= 100",
    )
    assert spikes >= len(truth["decoys"]["report_spikes"]) == 2
    # Ordinary users ask friends to report, with report links, and a few do: no label.
    calls = one(
        out,
        "SELECT count(*) FROM posts WHERE list_contains(list_transform(urls, "
        "u -> u LIKE '%/report/profile/%'), true)",
    )
    assert calls == len(truth["decoys"]["callouts"]) >= 1
    assert all(3 <= c["reports"] <= 45 for c in truth["decoys"]["callouts"])
    # Hundreds of accounts act on one object within minutes, with no label.
    biggest = max(c["accounts"] for c in truth["decoys"]["cascades"])
    assert biggest >= 100


def test_activity_is_heavy_tailed_and_follows_a_day(runs: Run) -> None:
    out = runs("organic")
    top, median = sql(
        out,
        "SELECT max(n), median(n) FROM (SELECT account_id, count(*) AS n FROM posts "
        "GROUP BY account_id)",
    )[0]
    assert top > 20 * median
    # Pakistan time: more posts at 21:00 than at 04:00, in every language community.
    night, evening = sql(
        out,
        "SELECT count(*) FILTER (WHERE hour(ts AT TIME ZONE 'Asia/Karachi') = 4), "
        "count(*) FILTER (WHERE hour(ts AT TIME ZONE 'Asia/Karachi') = 21) FROM posts "
        "WHERE lang = 'ur'",
    )[0]
    assert evening > 4 * night
    scripts = dict(sql(out, "SELECT lang, count(*) FROM posts GROUP BY lang"))
    for lang in ("en", "ur", "hi", "ur-Latn"):
        assert scripts.get(lang, 0) > 100, lang


def test_the_network_has_the_shape_of_a_takedown(runs: Run) -> None:
    out = runs("cib")
    op = json.loads((out / "truth.json").read_text())["operations"][0]
    assert op["kind"] == "network"
    kinds = dict(
        sql(
            out,
            "SELECT a.kind || '/' || a.platform, count(*) FROM truth t JOIN accounts a "
            "ON a.account_id = t.id WHERE t.role = 'member' GROUP BY ALL",
        )
    )
    assert kinds == {
        "page/facebook": op["pages"],
        "group/facebook": op["groups"],
        "user/facebook": op["facebook_users"],
        "user/instagram": op["instagram_accounts"],
    }
    # Shared admins: some admins run more than one page or group.
    shared = one(
        out,
        "SELECT count(*) FROM (SELECT account_id FROM roles WHERE role = 'admin' "
        "GROUP BY account_id HAVING count(DISTINCT venue_id) > 1)",
    )
    assert shared > 0
    # Created in bursts: most network users share a 6-hour creation window with 10 others.
    burst = one(
        out,
        "WITH m AS (SELECT a.account_id, a.created_at FROM truth t JOIN accounts a "
        "ON a.account_id = t.id WHERE t.detail IN ('user', 'instagram')) "
        "SELECT avg(CASE WHEN (SELECT count(*) FROM m m2 WHERE abs(epoch(m2.created_at) - "
        "epoch(m.created_at)) <= 6 * 3600) > 10 THEN 1 ELSE 0 END) FROM m",
    )
    assert burst > 0.6
    # One operator, two platforms: each twin pair shares a name, and the handles match
    # but for a suffix.
    twins = op["twins"]
    assert len(twins) == round(0.5 * op["instagram_accounts"])
    named = dict(sql(out, "SELECT account_id, name || '|' || handle FROM accounts"))
    for fb, ig in twins:
        fb_name, fb_handle = named[fb].split("|")
        ig_name, ig_handle = named[ig].split("|")
        assert fb_name == ig_name and ig_handle.startswith(fb_handle)


def co_occurring_share(out: Path, window: int = 600) -> float:
    """Share of the network's posts whose link, hashtag, repost or image another
    network account also posted within ``window`` seconds."""
    return float(
        one(
            out,
            f"""
            WITH net AS (SELECT DISTINCT id FROM truth WHERE entity = 'account'),
            acts AS (
                SELECT p.post_id, p.account_id, p.ts, o AS obj FROM posts p, LATERAL (
                    SELECT unnest(list_concat(p.urls, p.hashtags, p.image_hashes,
                        CASE WHEN p.repost_of IS NULL THEN [] ELSE [p.repost_of] END)) AS o)
                WHERE p.account_id IN (SELECT id FROM net)
            ),
            hit AS (
                SELECT DISTINCT a.post_id FROM acts a JOIN acts b ON a.obj = b.obj
                AND a.account_id <> b.account_id
                AND abs(epoch(a.ts) - epoch(b.ts)) <= {window}
            )
            SELECT (SELECT count(*) FROM hit) / (SELECT count(*) FROM posts
                WHERE account_id IN (SELECT id FROM net))
            """,
        )
    )


def test_more_camouflage_means_less_co_occurrence(runs: Run) -> None:
    low = co_occurring_share(runs("cib", network__camouflage="0.2"))
    high = co_occurring_share(runs("cib", network__camouflage="4"))
    assert low > 0.5
    assert high < low - 0.2


def test_more_jitter_spreads_the_network_out(runs: Run) -> None:
    def median_delay(out: Path) -> float:
        return float(
            one(
                out,
                "SELECT median(epoch(p.ts) - epoch(o.ts)) FROM posts p JOIN posts o "
                "ON o.post_id = p.repost_of JOIN truth t ON t.id = p.post_id "
                "AND t.role = 'coordinated'",
            )
        )

    fast = median_delay(runs("cib", network__jitter="30"))
    slow = median_delay(runs("cib", network__jitter="600"))
    assert fast < 60 < 200 < slow


def test_copies_are_edited_more_at_a_higher_edit_rate(runs: Run) -> None:
    def distinct_share(out: Path) -> float:
        return float(
            one(
                out,
                "SELECT count(DISTINCT p.text) / count(*) FROM posts p JOIN truth t "
                "ON t.id = p.post_id AND t.role = 'coordinated' WHERE p.text IS NOT NULL",
            )
        )

    assert distinct_share(runs("cib", network__edit_rate="0")) < 0.2
    assert distinct_share(runs("cib", network__edit_rate="0.2")) > 0.6


def test_brigades_follow_their_lists(runs: Run) -> None:
    out = runs("brigade")
    # Every mobilising post links into the report flow of every target it names.
    calls = sql(
        out,
        "SELECT p.mentions, p.urls FROM posts p JOIN truth t ON t.id = p.post_id "
        "AND t.role = 'mobilisation'",
    )
    platform = dict(sql(out, "SELECT account_id, platform FROM accounts"))
    assert calls
    for mentions, urls in calls:
        assert 10 <= len(mentions) <= 80
        for target in mentions:
            assert simulate.report_link(platform[target], target) in urls
    # Reports by members land after the call, on targets it listed.
    stray = one(
        out,
        "SELECT count(*) FROM truth tr JOIN reports r ON r.report_id = tr.id "
        "WHERE tr.entity = 'report' AND r.target_id NOT IN "
        "(SELECT id FROM truth WHERE entity = 'target')",
    )
    assert stray == 0
    # Boasting names targets that fell.
    boasts = one(out, "SELECT count(*) FROM truth WHERE role = 'boast'")
    upheld = one(
        out,
        "SELECT count(*) FROM reports r JOIN truth t ON t.id = r.report_id "
        "WHERE r.outcome = 'upheld'",
    )
    assert boasts > 0 and upheld > 0


def test_the_extension_reports_like_clockwork(runs: Run) -> None:
    out = runs("brigade")
    gaps = dict(
        sql(
            out,
            """
            WITH r AS (
                SELECT t.role, r.reporter_id, r.reason, r.channel,
                    epoch(r.ts) - lag(epoch(r.ts)) OVER (PARTITION BY r.reporter_id, t.detail
                        ORDER BY r.ts) AS gap
                FROM reports r JOIN truth t ON t.id = r.report_id AND t.entity = 'report'
            )
            SELECT role, median(gap) FROM r WHERE gap IS NOT NULL AND gap < 3600 GROUP BY role
            """,
        )
    )
    assert gaps["automated"] < 5 < 20 < gaps["human"]
    marked = one(
        out, f"SELECT count(*) FROM reports WHERE client LIKE '%{simulate.EXTENSION_MARK}%'"
    )
    assert marked > 0
    # Fake reporters are young when they report; the others are years old.
    young = sql(
        out,
        "SELECT t.role = 'fake_reporter', median(epoch(r.ts) - epoch(a.created_at)) / 86400 "
        "FROM truth t JOIN accounts a ON a.account_id = t.id JOIN reports r "
        "ON r.reporter_id = t.id WHERE t.role IN ('fake_reporter', 'reporter') GROUP BY 1",
    )
    ages = dict(young)
    assert ages[True] < 60 < ages[False]


def test_more_automation_means_more_automated_reporters(runs: Run) -> None:
    def automated(out: Path) -> int:
        return int(one(out, "SELECT count(*) FROM truth WHERE role = 'automated_reporter'"))

    assert automated(runs("brigade", brigade__automated_share="0.5")) > 2 * automated(
        runs("brigade")
    )


def test_targets_are_critics_and_minority_accounts(runs: Run) -> None:
    out = runs("brigade")
    details = dict(sql(out, "SELECT detail, count(*) FROM truth WHERE role = 'target' GROUP BY 1"))
    assert details["critic"] > 0 and details["minority"] > 0


def test_pakistan_2020_is_sized_like_the_takedown(tmp_path: Path) -> None:
    sc = simulate.scenario("pakistan-2020")
    assert sc.population.accounts >= 50_000
    (net,) = sc.networks
    assert (net.pages, net.groups, net.users, net.instagram) == (100, 80, 450, 100)
    # The brigades are run from the network's own groups, by its admins.
    out = tmp_path / "p"
    simulate.simulate(small("pakistan-2020"), seed=3, out=out)
    truth = json.loads((out / "truth.json").read_text())
    network, *brigades = truth["operations"]
    assert [b["kind"] for b in brigades] == ["brigade", "brigade"]
    for b in brigades:
        assert set(b["venues"]) <= set(network["venues"])
    shared = one(
        out,
        "SELECT count(DISTINCT id) FROM truth WHERE operation_id = 'network-1' AND entity = "
        "'account' AND id IN (SELECT id FROM truth WHERE operation_id LIKE 'brigade-%' AND "
        "role = 'reporter')",
    )
    assert shared > 0


def test_scale_multiplies_counts() -> None:
    sc = simulate.scenario("pakistan-2020", scale=0.1)
    assert sc.population.accounts == 5000
    assert sc.networks[0].pages == 10
    assert sc.brigades[0].members == 15
    with pytest.raises(ConfigError):
        simulate.scenario("cib", scale=0)


def test_knobs_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown knob"):
        simulate.scenario("cib", knobs={"network.speed": "3"})
    with pytest.raises(ConfigError, match="no brigade"):
        simulate.scenario("cib", knobs={"brigade.members": "3"})
    with pytest.raises(ConfigError, match="not a valid value"):
        simulate.scenario("cib", knobs={"network.jitter": "fast"})
    with pytest.raises(ConfigError, match="unknown scenario"):
        simulate.scenario("nothing")
    with pytest.raises(ConfigError, match="not in"):
        simulate.scenario("brigade", knobs={"brigade.automated_share": "1.5"})
    with pytest.raises(ConfigError, match="languages"):
        simulate.scenario("cib", knobs={"network.languages": "0,0,0,0"})


def test_every_knob_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "simulation.md").read_text()
    sc = simulate.scenario("pakistan-2020")
    for part, knobs in (
        ("population", sc.population),
        ("network", sc.networks[0]),
        ("brigade", sc.brigades[0]),
    ):
        for name in knobs.__dataclass_fields__:
            assert f"`{name}`" in docs or f"`{part}.{name}`" in docs, f"{part}.{name}"
    for name in simulate.SCENARIOS:
        assert f"`{name}`" in docs


def test_an_existing_output_is_not_overwritten_by_accident(runs: Run) -> None:
    out = runs("organic")
    before = (out / "posts.parquet").read_bytes()
    with pytest.raises(ConfigError, match="--overwrite"):
        simulate.simulate(small("organic"), seed=9, out=out)
    assert (out / "posts.parquet").read_bytes() == before


def test_evaluate_scores_the_truth_as_perfect(runs: Run, tmp_path: Path) -> None:
    out = runs("pakistan-2020")
    evaluate.result_from_truth(out, tmp_path / "perfect")
    scores = evaluate.evaluate(tmp_path / "perfect", out)
    for part in ("accounts", "targets", "reports", "campaigns"):
        assert scores[part]["f1"] == 1.0, part
    assert scores["campaigns_flagged_on_organic"] is None
    empty = tmp_path / "empty"
    empty.mkdir()
    simulate_result_files_empty(empty)
    zero = evaluate.evaluate(empty, out)
    for part in ("accounts", "targets", "reports", "campaigns"):
        assert zero[part]["recall"] == 0.0 and zero[part]["precision"] == 0.0, part


def simulate_result_files_empty(directory: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from concerted.schema import RESULT_CONTRACTS, RESULT_FILES, arrow_schema

    for name, contract in RESULT_CONTRACTS.items():
        pq.write_table(arrow_schema(contract).empty_table(), directory / RESULT_FILES[name])
    assert pa is not None


def test_the_command_line_simulates_and_evaluates(tmp_path: Path) -> None:
    from tests.test_cli import run

    out = tmp_path / "sim"
    args: list[str | Path] = ["simulate", "--scenario", "brigade", "--seed", "4", "--out", out]
    knobs = ["--set", "population.accounts=2000", "--set", "brigade.members=40"]
    done = run(*args, *knobs, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"]["reports"] > 0 and summary["actions"] > 0
    again = run(*args, *knobs)
    assert again.returncode == 1
    assert "--overwrite" in again.stderr
    perfect = tmp_path / "perfect"
    evaluate.result_from_truth(out, perfect)
    scored = run("evaluate", perfect, "--truth", out)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["reports"]["f1"] == 1.0
    bad = run("simulate", "--scenario", "cib", "--out", out, "--set", "network.nope=1")
    assert bad.returncode == 1 and "unknown knob 'network.nope'" in bad.stderr
    shown = run("simulate", "--scenario", "pakistan-2020", "--dry-run", "--scale", "2")
    assert json.loads(shown.stdout)["networks"][0]["pages"] == 200
    missing = run("evaluate", tmp_path, "--truth", out)
    assert missing.returncode == 1 and "campaigns.parquet" in missing.stderr


def test_a_parquet_dataset_holds_the_same_rows_in_many_files(runs: Run, tmp_path: Path) -> None:
    """``--format parquet-dataset``: a directory of files per input table, the same rows
    as the one-file format, with the truth beside them and the actions counted alike."""
    single = runs("brigade")
    out = tmp_path / "lake"
    summary = simulate.simulate(
        small("brigade"), seed=1, out=out, format="parquet-dataset", rows_per_file=5_000
    )
    meta = json.loads((out / "truth.json").read_text())
    assert meta["format"] == "parquet-dataset"
    assert meta["actions"] == json.loads((single / "truth.json").read_text())["actions"]
    assert (out / "truth.parquet").read_bytes() == (single / "truth.parquet").read_bytes()
    con = duckdb.connect()
    for table in TABLES:
        parts = sorted((out / table).glob("*.parquet"))
        assert not (out / f"{table}.parquet").exists()
        assert meta["files"][f"{table}/"]["files"] == len(parts) >= 1
        sizes = [pq_rows(p) for p in parts]
        assert all(n <= 5_000 for n in sizes) and sum(sizes) == summary.rows[table]
        lake = f"SELECT * FROM read_parquet('{out / table}/*.parquet')"
        one_file = f"SELECT * FROM read_parquet('{single / table}.parquet')"
        assert con.sql(f"({lake}) EXCEPT ALL ({one_file})").fetchall() == []
        assert con.sql(f"({one_file}) EXCEPT ALL ({lake})").fetchall() == []
    assert len(list((out / "posts").glob("*.parquet"))) > 1
    with pytest.raises(ConfigError, match="--overwrite"):
        simulate.simulate(small("brigade"), seed=1, out=out)
    with pytest.raises(ConfigError, match="unknown output format 'csv'"):
        simulate.simulate(small("brigade"), seed=1, out=tmp_path / "x", format="csv")
    # Replacing a dataset with one file per table leaves no directory behind.
    simulate.simulate(small("brigade"), seed=1, out=out, overwrite=True)
    assert (out / "posts.parquet").exists() and not (out / "posts").exists()


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
