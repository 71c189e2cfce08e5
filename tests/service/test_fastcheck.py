"""The fast check of the common report agrees with schema.validate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import duckdb
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted.service import fastcheck
from concerted.service.bodies import (
    FIELDS,
    Candidate,
    ItemError,
    Unchecked,
    _validate,
    candidates,
    check_all,
    parse_batch,
    prepare,
    read_batch,
)
from tests.budget import examples


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(config={"threads": 1})
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def _mostly(valid: list[str | None], odd: list[str | None]) -> st.SearchStrategy[str | None]:
    """A valid value seven times in eight, an odd one otherwise."""
    return st.integers(0, 7).flatmap(lambda k: st.sampled_from(odd if k == 0 else valid))


_IDS = _mostly(["a", "r1", "12", "ü-1", "a b", "0"], [" a", "a ", "", "\ta", "x\x00y", None])
_PLATFORMS = _mostly(["mastodon", "Mastodon", "lemmy", "BLUESKY"], [" x", "ÄB", "", None])
_KINDS = _mostly([None, "account", "Post", "PAGE"], [" page", "group ", "room", ""])
_OUTCOMES = _mostly([None, "upheld", "Rejected", "UPHELD"], ["maybe", "", " upheld"])
_TEXTS = _mostly([None, " spaced ", "web", "direct_link", "ünï"], ["", "\x00"])


@st.composite
def _times(draw: st.DrawFn) -> str | None:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return None
    if kind in (1, 2):
        seconds = draw(
            st.sampled_from([0, -1, 1, 4102444799, 4102444800, 10**11, 10**11 - 1, 1767268800])
            | st.integers(-(10**12), 10**12)
        )
        return draw(st.sampled_from([str(seconds), f"{seconds}.0", f"{seconds}.5", f" {seconds}"]))
    if kind == 3:
        return draw(
            st.sampled_from(
                ["", "yesterday", "2026-02-30T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01"]
                + ["2026-03-01T12:00:60Z", "2026-03-01T12:00:00", "1969-12-31T23:59:59Z"]
                + ["2100-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z"]
                + ["2026-03-01T12:00:00+14:00", "2026-03-01T12:00:00+15:00", "2026-03-01T12:00Z"]
                + ["2026-03-01T12:00:00.1234567Z", "2026-03-01T12:00:00 +01:00"]
            )
        )
    at = draw(
        st.datetimes(datetime(1960, 1, 1), datetime(2110, 1, 1), timezones=st.just(UTC))
    ).replace(microsecond=draw(st.sampled_from([0, 1, 500000, 123456, 999999])))
    minutes = draw(st.integers(-16 * 60, 16 * 60))
    local = at.astimezone(timezone(timedelta(minutes=minutes)))
    text = local.isoformat(sep=draw(st.sampled_from(["T", " "])))
    if minutes == 0 and draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    if draw(st.booleans()) and "." in text:  # fewer decimals
        head, _, tail = text.partition(".")
        digits, zone = tail[:6], tail[6:]
        text = f"{head}.{digits[: draw(st.integers(1, 6))]}{zone}"
    return text


@st.composite
def _rows(draw: st.DrawFn) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "report_id": draw(_IDS),
        "platform": draw(_PLATFORMS),
        "reporter_id": draw(_IDS),
        "target_id": draw(_IDS),
        "ts": draw(_times()),
    }
    for name, values in (("target_kind", _KINDS), ("outcome", _OUTCOMES)):
        if draw(st.booleans()):
            row[name] = draw(values)
    for name in ("reason", "channel", "client", "text"):
        if draw(st.booleans()):
            row[name] = draw(_TEXTS)
    if draw(st.booleans()):
        row["reporter_created_at"] = draw(_times())
    if draw(st.integers(0, 9)) == 0:
        row["extra"] = '{"a": 1}'
    return row


@given(rows=st.lists(_rows(), min_size=1, max_size=25))
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_check_types_a_report_exactly_as_validate_does(
    con: duckdb.DuckDBPyConnection, rows: list[dict[str, str | None]]
) -> None:
    slow = _validate(con, rows)
    for row, expected in zip(rows, slow, strict=True):
        fast = fastcheck.check(row)
        if fast is not None:
            assert not isinstance(expected, ItemError), (row, expected)
            assert {f: fast[f] for f in FIELDS} == expected, row
    assert check_all(con, rows) == slow


def test_the_common_reports_take_the_fast_path() -> None:
    common = [
        {"report_id": "1", "platform": "lemmy", "reporter_id": "a", "target_id": "p", "ts": 1},
        {
            "report_id": "at://x/1",
            "platform": "Bluesky",
            "reporter_id": "did:plc:a",
            "target_id": "did:plc:b",
            "target_kind": "post",
            "ts": "2026-03-01T12:00:00.123Z",
            "reason": "spam",
            "channel": "web",
            "client": "app/1",
            "text": "why",
            "outcome": "rejected",
            "reporter_created_at": "2026-01-01T00:00:00+01:00",
        },
        {"report_id": "2", "platform": "x", "reporter_id": "a", "target_id": "p", "ts": 1767268800},
    ]
    for value in common:
        row = prepare(value)
        assert not isinstance(row, ItemError)
        assert fastcheck.check(row) is not None, value


# Bodies for the batch decoder: reports as clients send them (numbers as numbers), with
# every way an item can be wrong, as a JSON array or NDJSON with broken lines.


def _as_sent(text: str | None, draw: st.DrawFn) -> Any:
    """A field's text as a client may send it: a number where it reads as one."""
    if text is None or not draw(st.booleans()):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


_ODD_VALUES: list[Any] = [True, False, [1], {"a": 1}, 1.5, -0.0, 10**20, 2**64, "", " x"]


@st.composite
def _items(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 15))
    if kind == 0:
        return draw(st.sampled_from(["a report", 1, None, [], [{"report_id": "1"}], 2.5]))
    item: dict[str, Any] = {k: _as_sent(v, draw) for k, v in draw(_rows()).items()}
    if "extra" in item:
        item["extra"] = draw(st.sampled_from([{"a": 1}, {}, None, "text", [1], 3]))
    if kind == 1:
        item[draw(st.sampled_from(["colour", "Report_id", "ts "]))] = "x"
    elif kind == 2:
        item[draw(st.sampled_from(FIELDS))] = draw(st.sampled_from(_ODD_VALUES))
    return item


_BROKEN_LINES = [
    b"{",
    b"1 2",
    b'{"report_id": "1"} {"report_id": "2"}',
    b'{"report_id": "1"},{"report_id": "2"}',
    b"not json",
    b"   ",
    b"",
    b"\xff",
    b'{"reason": "a',
    b'b", "ts": 1}',
]


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(_items(), max_size=12))
    if draw(st.booleans()):
        body = msgspec.json.encode(items)
        return draw(st.sampled_from([body, b"  " + body, body + b"\n", body[:-1]]))
    lines = [msgspec.json.encode(i) for i in items]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(_BROKEN_LINES)))
    end = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return end.join(lines) + draw(st.sampled_from([b"", end]))


def _same(c: Candidate) -> Any:
    """A candidate as compared: a row waiting for validate by its values only."""
    if isinstance(c, Unchecked):
        return ("unchecked", {f: c.row.get(f) for f in FIELDS})
    return c


@given(body=_bodies())
@settings(max_examples=examples(100), deadline=None)
def test_a_batch_body_decoded_into_structs_gives_what_the_general_way_gives(body: bytes) -> None:
    """``read_batch`` (msgspec structs, ``check_wire``) equals ``parse_batch``,
    ``prepare`` and ``check``: the same typed reports, the same rows left for
    ``validate``, the same errors in the same places."""
    try:
        expected = [_same(c) for c in candidates(parse_batch(body))]
    except Exception as exc:  # a body refused whole is refused whole by both
        with pytest.raises(type(exc)):
            read_batch(body)
        return
    assert [_same(c) for c in read_batch(body)] == expected


def test_ndjson_keeps_one_answer_a_line() -> None:
    """NDJSON with any line ending; a line holding two reports, a blank line or a
    line cut in two: the answers the general way gives (an error for that line, the
    others kept)."""
    good = [
        b'{"report_id": "%d", "platform": "x", "reporter_id": "a", "target_id": "t",'
        b' "ts": 1767268800}' % i
        for i in range(3)
    ]
    odd = [
        good[0] + b"," + good[1],
        b"",
        b"   ",
        good[0][:30],
        good[0][30:],
    ]
    bodies = [b"\n".join(good), b"\r\n".join(good) + b"\r\n", b"\r".join(good)]
    bodies += [b"\n".join([*good[:2], line, good[2]]) for line in odd]
    for body in bodies:
        fast = [_same(c) for c in read_batch(body)]
        assert fast == [_same(c) for c in candidates(parse_batch(body))], body
    assert len(read_batch(bodies[3])) == 4 and isinstance(read_batch(bodies[3])[2], ItemError)


def test_the_struct_decoder_agrees_on_repeated_keys_and_odd_numbers() -> None:
    bodies = [
        b'[{"report_id": "1", "report_id": 2, "platform": "x", "reporter_id": "a",'
        b' "target_id": "t", "ts": 1}]',
        b'{"report_id": "1", "platform": "x", "reporter_id": "a", "target_id": "t",'
        b' "ts": true, "ts": 5}',
        b'{"report_id": 1e3, "platform": "x", "reporter_id": -0.0, "target_id": 7,'
        b' "ts": 1767268800, "reporter_created_at": 100000000000}',
        b'[{"report_id": "1", "extra": {"b": [1, {"c": null}]}, "platform": "x",'
        b' "reporter_id": "a", "target_id": "t", "ts": "2026-03-01T12:00:00Z"}]',
        b'{"report_id": 123456789012345678901234567890, "platform": "x",'
        b' "reporter_id": "a", "target_id": "t", "ts": 1}',
    ]
    for body in bodies:
        fast = [_same(c) for c in read_batch(body)]
        assert fast == [_same(c) for c in candidates(parse_batch(body))], body
    (typed,) = read_batch(bodies[0])
    assert isinstance(typed, dict) and typed["report_id"] == "2"
    (typed,) = read_batch(bodies[2])
    assert isinstance(typed, Unchecked)  # the created time is past 2100: validate says
