"""One contract every kind of source keeps, run against a real place of each kind: a second
PostgreSQL database, a MariaDB database, a Parquet file. A new kind adds a subclass with a
``place`` fixture; every test here must pass unchanged."""

from __future__ import annotations

import datetime as dt

import pytest

from sources.kinds import registry
from sources.kinds.base import (
    BOOLEAN,
    DATE,
    DATETIME,
    NUMBER,
    TEXT,
    Read,
    SourceError,
    StepStatus,
    WritingQueryRefused,
)
from tests.sources.places import START, people


class SourceKindContract:
    @pytest.fixture
    def kind(self, place):
        return registry.kind_class(place.kind)(place.connection_settings, place.secrets)

    @pytest.fixture
    def table(self, place):
        place.write(people(45))
        return Read(table=place.read_table)

    def query(self, text: str) -> Read:
        return Read(query=text)

    @property
    def relation(self) -> str:
        return "people"

    def test_its_test_passes_every_step_on_a_reachable_source(self, kind, table):
        steps = kind.test(table)
        assert [step.status for step in steps if step.status == StepStatus.FAILED] == []
        assert steps[0].status == StepStatus.PASSED

    def test_it_gives_each_column_a_field_type_from_the_source_type(self, kind, table):
        types = {column.name: column.field_type for column in kind.columns(table)}
        assert types == {
            "id": NUMBER,
            "customer": TEXT,
            "email": TEXT,
            "first_name": TEXT,
            "last_name": TEXT,
            "score": NUMBER,
            "active": BOOLEAN,
            "born": DATE,
            "updated_at": DATETIME,
        }

    def test_its_preview_is_the_first_twenty_rows(self, kind, table):
        columns, rows = kind.preview(table)
        assert len(columns) == 9 and len(rows) == 20
        assert {row[1] for row in rows} <= {f"C{n:05d}" for n in range(1, 46)}

    def test_it_streams_every_row_in_batches(self, kind, table):
        sizes, customers = [], set()
        for _columns, rows in kind.batches(table, 10):
            sizes.append(len(rows))
            customers.update(row[1] for row in rows)
        assert sizes == [10, 10, 10, 10, 5]
        assert customers == {f"C{n:05d}" for n in range(1, 46)}

    def test_it_reads_only_the_columns_asked_for_in_its_own_order(self, kind, table):
        read = Read(table.table, columns=("score", "customer", "gone"))
        [(columns, rows)] = list(kind.batches(read, 100))
        assert [column.name for column in columns] == ["customer", "score"]
        assert sorted(rows)[0] == ("C00001", 1.5)

    def test_it_reads_only_rows_at_or_past_the_cursor_in_cursor_order(self, kind, table):
        read = Read(table.table, table.query, "updated_at", START + dt.timedelta(minutes=40))
        rows = [row for _columns, batch in kind.batches(read, 4) for row in batch]
        assert [row[0] for row in rows] == [40, 41, 42, 43, 44, 45]

    def test_it_reads_a_query(self, kind, table):
        columns, rows = kind.preview(
            self.query(f"SELECT customer, email FROM {self.relation} WHERE id <= 3")
        )
        assert [column.name for column in columns] == ["customer", "email"]
        assert sorted(row[0] for row in rows) == ["C00001", "C00002", "C00003"]

    def test_it_refuses_a_query_that_writes(self, kind, table):
        for text in (
            f"DELETE FROM {self.relation}",
            f"UPDATE {self.relation} SET email = 'x'",
            f"DROP TABLE {self.relation}",
        ):
            with pytest.raises(WritingQueryRefused, match="only read"):
                kind.preview(self.query(text))

    def test_it_reports_a_syntax_error_in_the_database_own_words(self, kind, table):
        with pytest.raises(SourceError) as caught:
            kind.preview(self.query(f"SELECT customer FORM {self.relation}"))
        assert "syntax" in str(caught.value).lower()

    def test_it_names_a_missing_cursor_column_and_the_columns_there_are(self, kind, table):
        read = Read(table.table, table.query, "changed_on")
        with pytest.raises(SourceError, match="“changed_on” is not among the columns") as caught:
            list(kind.batches(read, 10))
        assert "updated_at" in str(caught.value)


class TestPostgreSQL(SourceKindContract):
    @pytest.fixture
    def place(self, postgresql_place):
        return postgresql_place

    def test_it_reads_a_query_whose_column_names_repeat(self, kind, table):
        # both columns are read: they cannot be chosen by name (MariaDB refuses such a
        # query, DuckDB renames the second column)
        read = Read(
            query=f"SELECT customer, customer FROM {self.relation} WHERE id = 1",
            columns=("customer",),
        )
        [(columns, rows)] = list(kind.batches(read, 10))
        assert [column.name for column in columns] == ["customer", "customer"]
        assert rows == [("C00001", "C00001")]


class TestMariaDB(SourceKindContract):
    @pytest.fixture
    def place(self, mysql_place):
        return mysql_place


class TestParquetFile(SourceKindContract):
    @pytest.fixture
    def place(self, parquet_place):
        return parquet_place

    @property
    def relation(self) -> str:
        return "source"
