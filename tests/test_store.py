"""The case store: what a new case holds, what it refuses, and which tables it names
(the engine seam is tests/test_engines.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from concerted.errors import SchemaError, StoreError
from concerted.schema import CONTRACTS
from concerted.store import SCHEMA_VERSION, Store, default_memory_limit
from tests.conftest import FIXTURES, load


def test_a_new_case_has_every_contract_table(tmp_path: Path) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        assert store.counts() == dict.fromkeys(CONTRACTS, 0)
        assert store.meta("schema_version") == SCHEMA_VERSION
        for name, contract in CONTRACTS.items():
            assert tuple(store.relation(name).columns) == contract.names
        info = store.info()
        assert info["sources"] == [] and info["quarantine"] == []
        assert info["tables"]["posts"]["span"] == {"first": None, "last": None}


def test_a_case_persists_and_reopens_read_only(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with Store(path) as store:
        load(store, FIXTURES / "generic" / "roles.json", table="roles")
    with Store(path, read_only=True) as store:
        assert store.counts()["roles"] == 3
        assert store.sql("SELECT count(*) FROM actions WHERE kind = 'join'").fetchone() == (2,)


def test_refuses_what_is_not_a_case(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no case file"):
        Store(tmp_path / "missing.duckdb", read_only=True)
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with pytest.raises(StoreError, match="not a concerted case"):
        Store(other, read_only=True)
    text = tmp_path / "text.duckdb"
    text.write_text("not a database")
    with pytest.raises(StoreError, match="cannot open"):
        Store(text)


def test_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with Store(path) as store:
        store.set_meta("schema_version", "0")
    with pytest.raises(StoreError, match="schema version 0"):
        Store(path)


def test_relation_names_only_case_tables(store: Store) -> None:
    with pytest.raises(StoreError, match="no table"):
        store.relation("pg_catalog")
    assert store.relation("sources").columns[0] == "source_id"


def test_memory_limit_and_spill_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(tmp_path / "c.duckdb", memory_limit="300MB", temp_directory=tmp_path / "spill") as s:
        limit = s.sql("SELECT current_setting('memory_limit')").fetchone()
        spill = s.sql("SELECT current_setting('temp_directory')").fetchone()
    assert limit is not None and limit[0].endswith("MiB")
    assert spill == (str(tmp_path / "spill"),)
    monkeypatch.setenv("CONCERTED_MEMORY_LIMIT", "2GB")
    assert default_memory_limit() == "2GB"
    monkeypatch.delenv("CONCERTED_MEMORY_LIMIT")
    assert default_memory_limit().endswith("GiB")


def test_a_failed_ingest_leaves_the_case_as_it_was(store: Store) -> None:
    load(store, FIXTURES / "generic" / "roles.json", table="roles")
    before = store.counts()
    with pytest.raises(SchemaError):
        load(store, FIXTURES / "generic" / "posts_broken.csv", table="posts")
    assert store.counts() == before
    assert store.sql("SELECT count(*) FROM sources").fetchone() == (1,)
    assert store.sql("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_running_out_of_memory_says_what_to_do(tmp_path: Path) -> None:
    big = tmp_path / "big.parquet"
    duckdb.sql(
        "COPY (SELECT 'p' || i AS post_id, 'a' || (i % 1000) AS account_id, 'x' AS platform, "
        "'2021-03-01T10:00:00Z' AS ts, ['https://e.org/' || i, 'https://f.org/' || (i % 7)] "
        f"AS urls FROM range(300000) t(i)) TO '{big}'"
    )
    with Store(tmp_path / "c.duckdb", memory_limit="8MB", threads=1) as store:
        with pytest.raises(StoreError, match="--memory-limit"):
            load(store, big, table="posts")
        assert store.counts()["posts"] == 0
