"""evaluate(): every figure against a truth small enough to count by hand."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from concerted.errors import ConfigError, SchemaError
from concerted.evaluate import Score, evaluate, result_from_truth
from concerted.schema import RESULT_CONTRACTS, RESULT_FILES, arrow_schema

# (operation_id, entity, id, platform, role, detail)
TruthRow = tuple[str, str, str, str, str, str | None]

NETWORK: list[TruthRow] = [
    ("net1", "account", "a1", "facebook", "organiser", None),
    ("net1", "account", "a2", "facebook", "member", None),
    ("net1", "account", "a3", "facebook", "member", None),
    ("net1", "account", "a4", "facebook", "member", None),
    ("net1", "post", "p1", "facebook", "coordinated", None),
]
BRIGADE: list[TruthRow] = [
    ("brig1", "account", "o1", "twitter", "organiser", None),
    ("brig1", "account", "o1", "twitter", "reporter", None),
    ("brig1", "account", "h1", "twitter", "reporter", None),
    ("brig1", "account", "h2", "twitter", "reporter", None),
    ("brig1", "account", "f1", "twitter", "fake_reporter", None),
    ("brig1", "account", "x1", "twitter", "automated_reporter", None),
    ("brig1", "account", "x2", "twitter", "automated_reporter", None),
    ("brig1", "target", "t1", "twitter", "target", "critic"),
    ("brig1", "target", "t2", "twitter", "target", "minority"),
    ("brig1", "post", "m1", "twitter", "mobilisation", None),
    ("brig1", "post", "b1", "twitter", "boast", None),
    *(("brig1", "report", f"r{i}", "twitter", "human", None) for i in range(1, 5)),
    *(("brig1", "report", f"r{i}", "twitter", "automated", None) for i in (5, 6)),
]
OPERATIONS = [("net1", "network"), ("brig1", "brigade")]

TRUTH_SCHEMA = pa.schema(
    [
        ("operation_id", pa.string()),
        ("entity", pa.string()),
        ("id", pa.string()),
        ("platform", pa.string()),
        ("role", pa.string()),
        ("detail", pa.string()),
    ]
)


def write_truth(
    path: Path,
    rows: Iterable[TruthRow] = (*NETWORK, *BRIGADE),
    operations: Sequence[tuple[str, str]] = OPERATIONS,
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True)) or [()] * len(TRUTH_SCHEMA)
    table = pa.table(
        {f.name: pa.array(list(c), f.type) for f, c in zip(TRUTH_SCHEMA, columns, strict=True)},
        schema=TRUTH_SCHEMA,
    )
    pq.write_table(table, path / "truth.parquet")
    meta = {
        "scenario": "test",
        "seed": 7,
        "scale": 1.0,
        "operations": [{"id": i, "kind": k, "accounts": 0} for i, k in operations],
        "knobs": {},
    }
    (path / "truth.json").write_text(json.dumps(meta), encoding="utf-8")
    return path


def write_result(
    path: Path,
    campaigns: Iterable[tuple[str, str, bool]] = (),
    members: Iterable[tuple[str, str, str, str]] = (),
    targets: Iterable[tuple[str, str, str]] = (),
    reports: Iterable[tuple[str, str, bool]] = (),
    omit: Iterable[str] = (),
) -> Path:
    """Result files from (campaign, kind, flagged), (campaign, platform, account, role),
    (campaign, platform, target) and (platform, report, flagged) tuples."""
    path.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {
        "campaigns": [
            {"campaign_id": c, "kind": k, "score": 0.9, "flagged": f} for c, k, f in campaigns
        ],
        "members": [
            {"campaign_id": c, "platform": p, "account_id": a, "role": r} for c, p, a, r in members
        ],
        "targets": [
            {"campaign_id": c, "platform": p, "target_id": t, "target_kind": "account"}
            for c, p, t in targets
        ],
        "report_scores": [
            {"platform": p, "report_id": r, "score": 0.8, "flagged": f} for p, r, f in reports
        ],
    }
    for name, items in rows.items():
        if name in omit:
            continue
        schema = arrow_schema(RESULT_CONTRACTS[name])
        pq.write_table(pa.Table.from_pylist(items, schema=schema), path / RESULT_FILES[name])
    return path


def metrics(block: dict[str, Any]) -> tuple[Any, Any, Any]:
    return block["precision"], block["recall"], block["f1"]


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    return write_truth(tmp_path / "truth")


def test_the_truth_itself_scores_one_everywhere(truth: Path, tmp_path: Path) -> None:
    result_from_truth(truth, tmp_path / "perfect")
    out = evaluate(tmp_path / "perfect", truth)
    for block in ("accounts", "targets", "reports", "campaigns", "automated_reporters"):
        assert metrics(out[block]) == (1.0, 1.0, 1.0), block
    assert out["accounts"]["tp"] == 10
    assert out["targets"]["tp"] == 2
    assert out["reports"]["tp"] == 6
    assert out["automated_reporters"]["tp"] == 2
    # h1 h2 f1 x1 x2; o1 reports too but is counted as the organiser it is.
    assert metrics(out["brigade_reporters"]) == (1.0, 1.0, 1.0)
    assert out["brigade_reporters"]["tp"] == 5
    assert metrics(out["brigade_organisers"]) == (1.0, 1.0, 1.0)
    assert out["recommendations"] == {"coordinated": {"discount": 6}, "other": {}}
    assert out["campaigns"]["false_campaigns"] == 0
    assert out["campaigns"]["matches"] == [
        {"campaign_id": "brig1", "operation_id": "brig1", "jaccard": 1.0},
        {"campaign_id": "net1", "operation_id": "net1", "jaccard": 1.0},
    ]
    assert {r: v["recall"] for r, v in out["roles"].items()} == {
        "automated_reporter": 1.0,
        "fake_reporter": 1.0,
        "member": 1.0,
        "organiser": 1.0,
        "reporter": 1.0,
    }
    assert out["missing"] == []
    assert out["campaigns_flagged_on_organic"] is None
    assert (out["scenario"], out["seed"]) == ("test", 7)
    assert (out["result"], out["truth"]) == (str(tmp_path / "perfect"), str(truth))
    json.dumps(out)


def test_result_from_truth_writes_the_contract(truth: Path, tmp_path: Path) -> None:
    result_from_truth(truth, tmp_path / "perfect")
    for name, file in RESULT_FILES.items():
        assert pq.read_schema(tmp_path / "perfect" / file) == arrow_schema(RESULT_CONTRACTS[name])
    campaigns = pq.read_table(tmp_path / "perfect" / "campaigns.parquet").to_pylist()
    assert [(c["campaign_id"], c["kind"], c["accounts"], c["reports"]) for c in campaigns] == [
        ("net1", "network", 4, 0),
        ("brig1", "brigade", 6, 6),
    ]
    members = pq.read_table(tmp_path / "perfect" / "members.parquet").to_pylist()
    roles = {m["account_id"]: m["role"] for m in members}
    assert roles["o1"] == "organiser"
    assert roles["f1"] == "reporter"
    assert roles["x1"] == "automated_reporter"
    assert roles["a2"] == "member"
    assert len(members) == 10


def test_an_empty_result_scores_zero(truth: Path, tmp_path: Path) -> None:
    out = evaluate(write_result(tmp_path / "empty"), truth)
    for block in ("accounts", "targets", "reports", "campaigns", "automated_reporters"):
        assert metrics(out[block]) == (0.0, 0.0, 0.0), block
    assert out["accounts"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "tp": 0,
        "fp": 0,
        "fn": 10,
    }
    assert out["campaigns"]["flagged"] == 0
    assert out["campaigns"]["operations"] == 2
    assert out["roles"]["organiser"] == {"truth": 2, "flagged": 0, "recall": 0.0}
    assert out["missing"] == []


def test_missing_optional_files_mean_no_rows(truth: Path, tmp_path: Path) -> None:
    result = write_result(
        tmp_path / "r",
        campaigns=[("c1", "network", True)],
        omit=("members", "targets", "report_scores"),
    )
    out = evaluate(result, truth)
    assert out["missing"] == ["members.parquet", "targets.parquet", "report_scores.parquet"]
    assert out["accounts"]["fn"] == 10
    assert out["campaigns"]["false_campaigns"] == 1


def test_partial_result_by_hand(truth: Path, tmp_path: Path) -> None:
    result = write_result(
        tmp_path / "r",
        campaigns=[("c1", "network", True), ("c2", "brigade", True), ("c3", "network", False)],
        members=[
            ("c1", "facebook", "a1", "organiser"),
            ("c1", "facebook", "a2", "member"),
            ("c1", "facebook", "a3", "member"),
            ("c1", "facebook", "z1", "member"),
            ("c2", "twitter", "h1", "reporter"),
            ("c2", "twitter", "x1", "automated_reporter"),
            ("c2", "twitter", "h2", "automated_reporter"),
            ("c2", "twitter", "z2", "automated_reporter"),
            # Unflagged: ignored.
            ("c3", "facebook", "a4", "member"),
            ("c3", "twitter", "o1", "organiser"),
        ],
        targets=[("c2", "twitter", "t1"), ("c2", "twitter", "t9"), ("c3", "twitter", "t2")],
        reports=[
            ("twitter", "r1", True),
            ("twitter", "r5", True),
            ("twitter", "r99", True),
            ("twitter", "r2", False),
            ("twitter", "r6", False),
        ],
    )
    out = evaluate(result, truth)
    # Predicted a1 a2 a3 z1 h1 x1 h2 z2; missed a4 o1 f1 x2.
    assert out["accounts"] == {
        "precision": 0.75,
        "recall": 0.6,
        "f1": 0.6667,
        "tp": 6,
        "fp": 2,
        "fn": 4,
    }
    assert out["targets"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1}
    assert out["reports"] == {
        "precision": 0.6667,
        "recall": 0.3333,
        "f1": 0.4444,
        "tp": 2,
        "fp": 1,
        "fn": 4,
    }
    # Said automated: x1 (right), h2 and z2 (wrong); missed x2.
    assert out["automated_reporters"] == {
        "precision": 0.3333,
        "recall": 0.5,
        "f1": 0.4,
        "tp": 1,
        "fp": 2,
        "fn": 1,
    }
    # Brigade reporters: said h1 x1 h2 z2 (the network's c1 does not count); missed f1 x2.
    assert out["brigade_reporters"] == {
        "precision": 0.75,
        "recall": 0.6,
        "f1": 0.6667,
        "tp": 3,
        "fp": 1,
        "fn": 2,
    }
    assert out["recommendations"] == {
        "coordinated": {"none": 4},
        "other": {"none": 1},
    }
    # c1 vs net1: 3 shared of 5 (0.6, a match); c2 vs brig1: 3 of 7 (0.4286, none).
    assert out["campaigns"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "flagged": 2,
        "matched": 1,
        "operations": 2,
        "operations_matched": 1,
        "false_campaigns": 1,
        "matches": [{"campaign_id": "c1", "operation_id": "net1", "jaccard": 0.6}],
    }
    assert out["roles"] == {
        "automated_reporter": {"truth": 2, "flagged": 1, "recall": 0.5},
        "fake_reporter": {"truth": 1, "flagged": 0, "recall": 0.0},
        "member": {"truth": 3, "flagged": 2, "recall": 0.6667},
        "organiser": {"truth": 2, "flagged": 1, "recall": 0.5},
        "reporter": {"truth": 3, "flagged": 2, "recall": 0.6667},
    }


def test_unflagged_campaigns_are_ignored(truth: Path, tmp_path: Path) -> None:
    members = [("c1", "facebook", a, "member") for a in ("a1", "a2", "a3", "a4")]
    flagged = evaluate(write_result(tmp_path / "f", [("c1", "network", True)], members), truth)
    unflagged = evaluate(write_result(tmp_path / "u", [("c1", "network", False)], members), truth)
    assert flagged["accounts"]["tp"] == 4
    assert flagged["campaigns"]["matched"] == 1
    assert unflagged["accounts"]["tp"] == 0
    assert unflagged["accounts"]["fp"] == 0
    assert unflagged["campaigns"]["flagged"] == 0
    assert unflagged["campaigns"]["matches"] == []


def test_accounts_compare_by_platform(truth: Path, tmp_path: Path) -> None:
    result = write_result(
        tmp_path / "r",
        [("c1", "network", True)],
        [("c1", " Facebook ", "a1", "member"), ("c1", "twitter", "a2", "member")],
    )
    out = evaluate(result, truth)
    # Platform is compared in lower case; a2 on twitter is another account.
    assert (out["accounts"]["tp"], out["accounts"]["fp"]) == (1, 1)


@pytest.mark.parametrize(("extra", "matched"), [(10, True), (11, False)])
def test_jaccard_threshold(tmp_path: Path, extra: int, matched: bool) -> None:
    ops = [f"a{i}" for i in range(10)]
    truth = write_truth(
        tmp_path / "t",
        [("op1", "account", a, "x", "member", None) for a in ops],
        [("op1", "network")],
    )
    members = [("c1", "x", a, "member") for a in [*ops, *(f"z{i}" for i in range(extra))]]
    out = evaluate(write_result(tmp_path / "r", [("c1", "network", True)], members), truth)
    # 10 shared of 20 is exactly 0.5; of 21 is 0.4762.
    assert out["campaigns"]["matched"] == int(matched)
    assert out["campaigns"]["recall"] == (1.0 if matched else 0.0)
    assert out["campaigns"]["false_campaigns"] == int(not matched)
    if matched:
        assert out["campaigns"]["matches"] == [
            {"campaign_id": "c1", "operation_id": "op1", "jaccard": 0.5}
        ]


def test_ties_go_to_the_first_operation_id(tmp_path: Path) -> None:
    truth = write_truth(
        tmp_path / "t",
        [
            ("op-b", "account", "b", "x", "member", None),
            ("op-a", "account", "a", "x", "member", None),
        ],
        [("op-b", "network"), ("op-a", "network")],
    )
    members = [("c1", "x", "a", "member"), ("c1", "x", "b", "member")]
    out = evaluate(write_result(tmp_path / "r", [("c1", "network", True)], members), truth)
    assert out["campaigns"]["matches"] == [
        {"campaign_id": "c1", "operation_id": "op-a", "jaccard": 0.5}
    ]
    assert out["campaigns"]["recall"] == 0.5


def test_two_campaigns_on_one_operation(truth: Path, tmp_path: Path) -> None:
    members = [("c1", "facebook", a, "member") for a in ("a1", "a2", "a3")] + [
        ("c2", "facebook", a, "member") for a in ("a2", "a3", "a4")
    ]
    campaigns = [("c1", "network", True), ("c2", "network", True)]
    out = evaluate(write_result(tmp_path / "r", campaigns, members), truth)
    assert out["campaigns"]["matched"] == 2
    assert out["campaigns"]["operations_matched"] == 1
    assert metrics(out["campaigns"]) == (1.0, 0.5, 0.6667)


def test_organic_truth(tmp_path: Path) -> None:
    truth = write_truth(tmp_path / "t", [], [])
    campaigns = [("c1", "network", True), ("c2", "brigade", True), ("c3", "network", False)]
    members = [("c1", "x", "u1", "member"), ("c2", "x", "u2", "reporter")]
    out = evaluate(write_result(tmp_path / "two", campaigns, members), truth)
    assert out["campaigns_flagged_on_organic"] == 2
    assert out["campaigns"]["false_campaigns"] == 2
    assert metrics(out["campaigns"]) == (0.0, 0.0, 0.0)
    assert out["accounts"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "tp": 0,
        "fp": 2,
        "fn": 0,
    }
    assert out["roles"] == {}

    unflagged = [("c3", "x", "u1", "member")]
    out = evaluate(write_result(tmp_path / "none", [("c3", "network", False)], unflagged), truth)
    assert out["campaigns_flagged_on_organic"] == 0
    for block in (
        "accounts",
        "targets",
        "reports",
        "campaigns",
        "automated_reporters",
        "brigade_reporters",
        "brigade_organisers",
    ):
        assert metrics(out[block]) == (None, None, None), block
    json.dumps(out)


def test_organic_truth_perfect_result_is_empty(tmp_path: Path) -> None:
    truth = write_truth(tmp_path / "t", [], [])
    result_from_truth(truth, tmp_path / "r")
    out = evaluate(tmp_path / "r", truth)
    assert out["campaigns_flagged_on_organic"] == 0
    assert out["missing"] == []


def test_an_operation_without_accounts_cannot_be_matched(tmp_path: Path) -> None:
    truth = write_truth(tmp_path / "t", NETWORK, [*OPERATIONS, ("ghost", "brigade")])
    result_from_truth(truth, tmp_path / "r")
    out = evaluate(tmp_path / "r", truth)
    assert out["campaigns"]["operations"] == 3
    assert out["campaigns"]["operations_matched"] == 1
    assert out["campaigns"]["recall"] == 0.3333


def test_missing_campaigns_file(truth: Path, tmp_path: Path) -> None:
    result = write_result(tmp_path / "r", omit=("campaigns",))
    with pytest.raises(ConfigError, match="campaigns.parquet") as info:
        evaluate(result, truth)
    assert str(result) in str(info.value)


def test_missing_truth(tmp_path: Path) -> None:
    truth = write_truth(tmp_path / "t")
    (truth / "truth.json").unlink()
    with pytest.raises(ConfigError, match="truth.json"):
        evaluate(write_result(tmp_path / "r"), truth)


def test_a_value_that_is_not_boolean(truth: Path, tmp_path: Path) -> None:
    result = write_result(tmp_path / "r")
    table = pa.table(
        {
            "campaign_id": ["c1", "c2"],
            "kind": ["network", "network"],
            "score": [0.5, 0.5],
            "flagged": ["true", "maybe"],
        }
    )
    pq.write_table(table, result / "campaigns.parquet")
    with pytest.raises(SchemaError) as info:
        evaluate(result, truth)
    assert info.value.file == str(result / "campaigns.parquet")
    assert (info.value.row, info.value.column) == (2, "flagged")


def test_a_missing_required_column(truth: Path, tmp_path: Path) -> None:
    result = write_result(tmp_path / "r")
    table = pa.table({"campaign_id": ["c1"], "score": [0.5], "flagged": [True]})
    pq.write_table(table, result / "campaigns.parquet")
    with pytest.raises(SchemaError) as info:
        evaluate(result, truth)
    assert info.value.file == str(result / "campaigns.parquet")
    assert info.value.column == "kind"


def test_an_unknown_member_role(truth: Path, tmp_path: Path) -> None:
    result = write_result(
        tmp_path / "r", [("c1", "network", True)], [("c1", "facebook", "a1", "boss")]
    )
    with pytest.raises(SchemaError, match="boss") as info:
        evaluate(result, truth)
    assert info.value.file == str(result / "members.parquet")
    assert (info.value.row, info.value.column) == (1, "role")


@pytest.mark.parametrize("name", ["members", "targets"])
def test_rows_of_an_unknown_campaign(truth: Path, tmp_path: Path, name: str) -> None:
    in_members, in_targets = ("c404", "c1") if name == "members" else ("c1", "c404")
    result = write_result(
        tmp_path / "r",
        [("c1", "brigade", True)],
        [("c1", "twitter", "h1", "reporter"), (in_members, "twitter", "h2", "reporter")],
        [("c1", "twitter", "t1"), (in_targets, "twitter", "t2")],
    )
    with pytest.raises(SchemaError, match="c404") as info:
        evaluate(result, truth)
    assert info.value.file == str(result / RESULT_FILES[name])
    assert (info.value.row, info.value.column) == (2, "campaign_id")


def test_a_campaign_id_twice(truth: Path, tmp_path: Path) -> None:
    result = write_result(tmp_path / "r", [("c1", "network", True), ("c1", "network", False)])
    with pytest.raises(SchemaError, match="c1") as info:
        evaluate(result, truth)
    assert (info.value.row, info.value.column) == (2, "campaign_id")


def test_truth_rows_of_an_unlisted_operation(tmp_path: Path) -> None:
    truth = write_truth(tmp_path / "t", NETWORK, [("brig1", "brigade")])
    with pytest.raises(SchemaError, match="net1") as info:
        evaluate(write_result(tmp_path / "r"), truth)
    assert info.value.file == str(truth / "truth.parquet")
    assert (info.value.row, info.value.column) == (1, "operation_id")


def test_score_conventions() -> None:
    assert Score(tp=0, fp=0, fn=0).as_dict() == {
        "precision": None,
        "recall": None,
        "f1": None,
        "tp": 0,
        "fp": 0,
        "fn": 0,
    }
    assert (Score(0, 3, 0).precision, Score(0, 3, 0).recall, Score(0, 3, 0).f1) == (0.0, 0.0, 0.0)
    assert Score(tp=1, fp=0, fn=2).recall == 0.3333
