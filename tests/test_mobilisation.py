"""M1 mobilisation and M3 boasting: the lexicon in four languages, named targets, the
response that follows, organisers, and boasts tied to earlier reports."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.mobilisation import Boasting, Mobilisation, _any_phrase, load_lexicon
from concerted.errors import ConfigError
from tests.budget import examples
from tests.test_report_content import at, by_id, make_case, signals

HOUR = 3600
DAY = 86_400
CALL = 5 * DAY  # when the organiser posts the list
TARGETS = [f"tgt{i}" for i in range(5)]


def _weigh(x: float, scale: float = 20.0) -> float:
    return x * x / (x * x + scale * scale)


def _case() -> dict[str, list[dict[str, Any]]]:
    accounts = [{"account_id": "g1", "kind": "group"}]
    accounts += [{"account_id": a, "handle": a.upper()} for a in ("a1", "a2", "c", "other")]
    accounts += [{"account_id": t, "handle": f"{t}.handle"} for t in [*TARGETS, "tgt9"]]
    members = [f"m{i}" for i in range(30)]
    roles = [{"account_id": a, "venue_id": "g1", "role": "admin"} for a in ("a1", "a2")]
    roles += [{"account_id": m, "venue_id": "g1", "role": "member"} for m in members]
    lines = "\n".join(
        f"{i}. https://www.facebook.com/profile.php?id={t} | report: "
        f"https://www.facebook.com/report/profile/?id={t}"
        for i, t in enumerate(TARGETS, 1)
    )
    urls = [
        u
        for t in TARGETS
        for u in (
            f"https://www.facebook.com/profile.php?id={t}",
            f"https://www.facebook.com/report/profile/?id={t}",
        )
    ]
    posts = [
        {"post_id": "call", "account_id": "a1", "venue_id": "g1", "ts": at(CALL), "urls": urls,
         "text": "It is our duty to report these accounts spreading lies against our army.\n"
                 f"Select reason: Terrorism\n{lines}\nReport all and share the proof."},
        {"post_id": "callout", "account_id": "c", "ts": at(CALL),
         "text": "Please report @tgt9.handle, he keeps harassing my sister"},
        {"post_id": "birthday", "account_id": "other", "ts": at(CALL),
         "text": "Happy birthday @tgt1.handle!", "mentions": ["tgt1"]},
        {"post_id": "boast", "account_id": "a1", "venue_id": "g1", "ts": at(CALL + 2 * DAY),
         "text": "Alhamdulillah! 3 accounts suspended thanks to your reports: "
                 "@tgt0.handle @tgt1.handle @nobody"},
    ]  # fmt: skip
    reports = [
        {"report_id": f"{m}-{t}", "reporter_id": m, "target_id": t, "reason": "terrorism",
         "ts": at(CALL + 600 + 60 * k + 7 * j)}
        for k, m in enumerate(members) for j, t in enumerate(TARGETS)
    ]  # fmt: skip
    reports += [
        {"report_id": f"early{i}", "reporter_id": f"e{i}", "target_id": "tgt0",
         "reason": "spam", "ts": at(CALL - 3 * DAY + i)}
        for i in range(5)
    ]  # fmt: skip
    reports += [
        {"report_id": f"friend{i}", "reporter_id": f"f{i}", "target_id": "tgt9",
         "reason": "harassment", "ts": at(CALL + (i + 1) * HOUR)}
        for i in range(3)
    ]  # fmt: skip
    return {"accounts": accounts, "roles": roles, "posts": posts, "reports": reports}


def _load(con: duckdb.DuckDBPyConnection, case: dict[str, list[dict[str, Any]]]) -> None:
    make_case(
        con,
        accounts=case["accounts"],
        roles=case["roles"],
        posts=case["posts"],
        reports=case["reports"],
    )


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'; SET memory_limit = '1GB'")
    _load(connection, _case())
    yield connection
    connection.close()


CONTENT = 1 - (1 - 0.6) * (1 - 0.4) * 0.85**2  # link, call, appeals to duty and nation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Brothers, it is our duty to report this account, it insults Islam and our army.",
         {"act", "duty", "religion", "nation"}),
        ("یہ اکاؤنٹ ہمارے دین کی توہین کر رہا ہے، سب اسے رپورٹ کریں، یہ ہمارا فرض ہے",
         {"act", "religion", "duty"}),
        ("ये अकाउंट देश और सेना का अपमान कर रहा है, सब इसे रिपोर्ट करें, यह हमारा फ़र्ज़ है",
         {"act", "nation", "religion", "duty"}),
        ("Ye account hamare deen ki tauheen kar raha hai, sab isay report karein, "
         "ye hamara farz hai", {"act", "religion", "duty"}),
        # Arabic kaf and yeh, as an Arabic keyboard types them; Devanagari without nukta.
        ("سب رپورٹ كريں", {"act"}),
        ("इन्हें रिपोर्ट करो, यह हमारा फर्ज है", {"act", "duty"}),
        ("The reporter asked the minister about flour prices", set()),
        ("آج کرکٹ میچ بہت اچھا تھا، پاکستان جیت گیا", {"nation"}),
    ],
)  # fmt: skip
def test_calls_to_act_in_four_languages(text: str, expected: set[str]) -> None:
    found = {category for kind, category in load_lexicon().match(text) if kind == "call"}
    assert found == expected


@pytest.mark.parametrize(
    ("text", "takedown"),
    [
        ("Alhamdulillah, 12 accounts suspended today thanks to your reports", True),
        ("الحمدللہ! آپ کی کوششوں سے 5 اکاؤنٹس بند ہو گئے", True),
        ("शाबाश सबको, आज 5 अकाउंट्स हटा दिए गए", True),
        ("Zabardast team, 7 accounts band ho gaye", True),
        ("Do not stop until they are removed. Share with your group.", False),
        ("Jab tak yeh remove na hon rukna nahi", False),
        ("جب تک یہ ختم نہ ہوں رکنا نہیں", False),
        ("Suspension of the match for rain, the team is gone home", False),
    ],
)
def test_takedown_claims_in_four_languages(text: str, takedown: bool) -> None:
    assert (("boast", "takedown") in load_lexicon().match(text)) is takedown


def test_a_call_is_tied_to_the_reports_that_follow_on_each_target(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = signals(Mobilisation().detect(con, "actions"))
    named = {(r["id"], r["related_id"]): r for r in rows if r["layer"] == "named_target"}
    assert {k for k in named if k[0] == "call"} == {("call", t) for t in TARGETS}
    tgt1 = named[("call", "tgt1")]
    assert tgt1["value"] == 30
    assert tgt1["score"] == pytest.approx(CONTENT * _weigh(30))
    assert tgt1["first_ts"] == at(CALL)
    assert "30 reporters" in tgt1["detail"] and "30 of them members of the venue" in tgt1["detail"]
    assert "appeals to duty, nation" in tgt1["detail"]
    # tgt0 drew 5 reports in the week before: 5/7 of them are expected in a day.
    assert named[("call", "tgt0")]["score"] == pytest.approx(CONTENT * _weigh(30 - 5 / 7))
    post = by_id([r for r in rows if r["layer"] == "mobilising_post"], "post")
    assert post["call"]["value"] == 150
    assert post["call"]["score"] == pytest.approx(CONTENT * _weigh(30 - 5 / 7))
    # The friends' call-out: a call to act, no report link, three answers.
    assert post["callout"]["score"] == pytest.approx(0.4 * _weigh(3))
    assert post["callout"]["score"] < 0.05 < post["call"]["score"]
    # A birthday greeting names a target but calls for nothing; a boast is no call.
    assert "birthday" not in post and "boast" not in post


def test_the_venue_admins_are_the_organisers_and_the_author_is_scored(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = signals(Mobilisation().detect(con, "actions"))
    organisers = {r["id"]: r for r in rows if r["layer"] == "organiser"}
    assert set(organisers) == {"a1", "a2"}
    assert organisers["a2"]["related_id"] == "g1"
    assert organisers["a2"]["score"] == pytest.approx(CONTENT * _weigh(30 - 5 / 7))
    authors = {r["id"]: r for r in rows if r["layer"] == "author"}
    assert set(authors) == {"a1", "c"}
    assert authors["a1"]["related_id"] == "call"


def test_without_roles_there_are_no_organisers(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE roles")
    layers = {r["layer"] for r in signals(Mobilisation().detect(con, "actions"))}
    assert layers == {"named_target", "mobilising_post", "author"}


def test_a_boast_is_tied_to_the_reports_its_targets_drew_before(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = signals(Boasting().detect(con, "actions"))
    claimed = {r["related_id"]: r for r in rows if r["layer"] == "claimed_target"}
    assert set(claimed) == {"tgt0", "tgt1"}  # @nobody was never reported
    claim = 1 - 0.3 * 0.5  # a takedown and one supporting category (credit)
    assert claimed["tgt1"]["value"] == 30
    assert claimed["tgt1"]["score"] == pytest.approx(claim * _weigh(30))
    assert claimed["tgt0"]["value"] == 35
    assert claimed["tgt0"]["score"] == pytest.approx(claim * _weigh(35))
    assert "named by handle" in claimed["tgt0"]["detail"]
    boast = by_id([r for r in rows if r["layer"] == "boast"], "post")["boast"]
    assert boast["score"] == pytest.approx(claim * (_weigh(30) + _weigh(35)) / 2)
    assert {r["id"] for r in rows if r["layer"] == "author"} == {"a1"}


def test_a_boast_before_the_reports_has_no_evidence(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"UPDATE posts SET ts = TIMESTAMPTZ '{at(0).isoformat()}' WHERE post_id = 'boast'")
    rows = signals(Boasting().detect(con, "actions"))
    assert {r["score"] for r in rows if r["layer"] == "claimed_target"} == {0.0}
    assert not [r for r in rows if r["layer"] == "author"]


def test_users_extend_the_lexicon(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    con.execute(
        "INSERT INTO posts (post_id, account_id, platform, ts, text) VALUES "
        f"('custom', 'other', 'facebook', TIMESTAMPTZ '{at(CALL - HOUR).isoformat()}', "
        "'zap them all: https://example.org/complaint/?id=tgt3')"
    )
    plain = by_id(signals(Mobilisation().detect(con, "actions"), "mobilising_post"), "post")
    assert "custom" not in plain
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[links]\nreport_flow = ["/complaint/"]\n[call.en]\nact = ["zap them"]\n'
        '[call.ps]\nact = ["رپوټ وکړئ"]\n',
        encoding="utf-8",
    )
    lexicon = load_lexicon(extra)
    assert "zap them" in lexicon.call["en"]["act"] and "report them" in lexicon.call["en"]["act"]
    assert "ps" in lexicon.call
    custom = Mobilisation(lexicon=str(extra)).detect(con, "actions")
    post = by_id(signals(custom, "mobilising_post"), "post")["custom"]
    assert "a report-flow link, a call to report" in post["detail"]


@pytest.mark.parametrize(
    "text",
    [
        "[call.en\nact = 1",
        '[links]\nprofile = ["(unclosed"]',
        "[call.en]\nact = [1, 2]",
        '[elsewhere]\nx = ["y"]',
        '[call]\nen = ["not a table"]',
    ],
)
def test_a_bad_lexicon_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        Mobilisation(lexicon=str(path))
    with pytest.raises(ConfigError):
        Boasting(lexicon=str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(
    ("cls", "settings_"),
    [(Mobilisation, {"horizon": 0}), (Mobilisation, {"baseline": -1}),
     (Boasting, {"lookback": 0}), (Boasting, {"response_scale": 0})],
)  # fmt: skip
def test_bad_settings_are_refused(cls: type[Any], settings_: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        cls(**settings_)


def test_no_posts_means_no_evidence() -> None:
    with duckdb.connect() as con:
        assert signals(Mobilisation().detect(con, "actions")) == []
        make_case(con, reports=_case()["reports"])
        assert signals(Boasting().detect(con, "actions")) == []


@settings(max_examples=examples(15), deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.integers(0, 40))
def test_row_order_does_not_matter_and_scores_stay_in_the_unit_interval(
    seed: int, drop: int
) -> None:
    rnd = random.Random(seed)
    case = _case()
    case["reports"] = rnd.sample(case["reports"], len(case["reports"]) - drop)
    for detector in (Mobilisation(), Boasting()):
        with duckdb.connect() as con:
            _load(con, case)
            first = signals(detector.detect(con, "actions"))
            _load(con, {k: rnd.sample(v, len(v)) for k, v in case.items()})
            assert signals(detector.detect(con, "actions")) == first
        assert first and all(0.0 <= r["score"] <= 1.0 for r in first)


@settings(max_examples=examples(60), deadline=None)
@given(
    phrases=st.lists(
        st.text(alphabet="ab .+*?()[]{}|^$\\-ک", min_size=1, max_size=5), max_size=250
    ),
    texts=st.lists(st.text(alphabet="ab .+*?()[]{}|^$\\-ک", max_size=12), min_size=1, max_size=10),
)
def test_the_phrase_filter_passes_exactly_the_texts_holding_a_phrase(
    phrases: list[str], texts: list[str]
) -> None:
    """The regular expressions that pick the posts to try against each phrase pass a
    text exactly where a phrase follows a space in it, whatever characters either
    holds, and with hundreds of phrases (several expressions)."""
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (body VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?)", [(f" {x} ",) for x in texts])
        found = con.sql(f"SELECT body, {_any_phrase(phrases, 'body')} FROM t").fetchall()
    assert found == [(f" {x} ", any(f" {p}" in f" {x} " for p in phrases)) for x in texts]


def test_a_call_naming_targets_by_handle_only_is_tied_to_their_reports(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Targets are looked up among the reports only for the tokens posts hold: a handle
    whose account was reported is found, though neither the handle nor the text holds
    the account's id."""
    con.execute(
        "INSERT INTO posts (post_id, account_id, platform, ts, text) VALUES "
        f"('handles', 'other', 'facebook', TIMESTAMPTZ '{at(CALL).isoformat()}', "
        "'Please report @TGT2.HANDLE and @tgt3.handle now')"
    )
    named = {
        r["related_id"]
        for r in signals(Mobilisation().detect(con, "actions"), "named_target")
        if r["id"] == "handles"
    }
    assert named == {"tgt2", "tgt3"}
