"""Property tests: any seed and any small scenario gives a consistent platform, and the
evaluation counts exactly what a result gets right and wrong, in any row order."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted import evaluate, simulate
from tests.budget import examples

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _tiny(name: str, accounts: int, days: int) -> simulate.Scenario:
    knobs = {
        "population.accounts": str(accounts),
        "population.days": str(days),
        "population.cascades": "2",
        "population.cascade_size": "40",
        "population.report_spikes": "1",
        "population.spike_size": "30",
    }
    if name in ("cib", "pakistan-2020"):
        knobs |= {"network.pages": "3", "network.groups": "2", "network.users": "12"}
        knobs |= {"network.instagram": "3", "network.admins": "2"}
    if name in ("brigade", "pakistan-2020"):
        knobs |= {"brigade.members": "20", "brigade.targets": "15", "brigade.waves": "2"}
        knobs |= {"brigade.uphold_threshold": "5"}
    return simulate.scenario(name, knobs=knobs)


@SETTINGS
@given(
    name=st.sampled_from(sorted(simulate.SCENARIOS)),
    seed=st.integers(0, 2**32 - 1),
    accounts=st.integers(100, 800),
    days=st.integers(2, 5),
)
def test_any_seed_gives_a_consistent_platform(
    name: str, seed: int, accounts: int, days: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        simulate.simulate(_tiny(name, accounts, days), seed=seed, out=out)
        truth = json.loads((out / "truth.json").read_text())
        con = duckdb.connect()
        for table in ("accounts", "posts", "reports", "roles", "truth"):
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{out / table}.parquet')"
            )

        def count(query: str) -> int:
            found = con.sql(query).fetchone()
            assert found is not None
            return int(found[0])

        start, end = truth["start"], truth["end"]
        for table in ("posts", "reports"):
            outside = f"ts < TIMESTAMPTZ '{start}' OR ts >= TIMESTAMPTZ '{end}'"
            assert count(f"SELECT count(*) FROM {table} WHERE {outside}") == 0, table
        assert count("SELECT count(*) - count(DISTINCT account_id) FROM accounts") == 0
        assert count("SELECT count(*) - count(DISTINCT post_id) FROM posts") == 0
        for column, table in (("account_id", "posts"), ("reporter_id", "reports")):
            assert (
                count(
                    f"SELECT count(*) FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM accounts a "
                    f"WHERE a.account_id = t.{column})"
                )
                == 0
            )
        assert (
            count(
                "SELECT count(*) FROM truth t WHERE t.entity IN ('account', 'target') AND NOT "
                "EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.id)"
            )
            == 0
        )
        assert count("SELECT count(*) FROM posts WHERE reply_to = post_id") == 0
        # No account reports itself, and every role names an account and a venue.
        assert count("SELECT count(*) FROM reports WHERE reporter_id = target_id") == 0
        assert (
            count(
                "SELECT count(*) FROM roles r WHERE NOT EXISTS (SELECT 1 FROM accounts a "
                "WHERE a.account_id = r.venue_id AND a.kind IN ('page', 'group'))"
            )
            == 0
        )
        kinds = {op["kind"] for op in truth["operations"]}
        expected = {
            "organic": set(),
            "cib": {"network"},
            "brigade": {"brigade"},
            "pakistan-2020": {"network", "brigade"},
        }
        assert kinds == expected[name]


@pytest.fixture(scope="module")
def truth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("truth")
    simulate.simulate(_tiny("pakistan-2020", 600, 4), seed=11, out=out)
    return out


@SETTINGS
@given(data=st.data())
def test_evaluation_counts_exactly(truth_dir: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp)
        evaluate.result_from_truth(truth_dir, result)
        members = pq.read_table(result / "members.parquet")
        true = {
            (p, a)
            for p, a in zip(
                members["platform"].to_pylist(), members["account_id"].to_pylist(), strict=True
            )
        }
        keep = data.draw(
            st.lists(st.booleans(), min_size=members.num_rows, max_size=members.num_rows)
        )
        extra = data.draw(st.integers(0, 5))
        kept = members.filter(pa.array(keep))
        impostors = pa.table(
            {
                "campaign_id": [members["campaign_id"][0].as_py()] * extra,
                "account_id": [f"impostor-{i}" for i in range(extra)],
                "platform": ["facebook"] * extra,
                "role": ["member"] * extra,
                "score": [0.5] * extra,
                "signals": [None] * extra,
            },
            schema=members.schema,
        )
        mixed = pa.concat_tables([kept, impostors])
        order = data.draw(st.permutations(list(range(mixed.num_rows))))
        pq.write_table(mixed.take(pa.array(order, type=pa.int64())), result / "members.parquet")
        scores = evaluate.evaluate(result, truth_dir)["accounts"]
        found = {
            (p, a)
            for p, a in zip(
                kept["platform"].to_pylist(), kept["account_id"].to_pylist(), strict=True
            )
        }
        assert scores["tp"] == len(found)
        assert scores["fn"] == len(true - found)
        assert scores["fp"] == extra
        for key in ("precision", "recall", "f1"):
            if scores[key] is not None:
                assert 0.0 <= scores[key] <= 1.0
