"""The CSV import's unchanged lines, left out before their checks (PostgreSQL).

Each profile the CSV import writes keeps the hash of the file line that made it
(``segments_profile.import_line_hash``, migration 0008: a trigger clears it on any other
update). A line whose customer id and hash match a profile's is what made that profile, and
nothing changed it since: importing the line again would change nothing, so it is not parsed,
checked, typed nor sent, only counted, and staged by its line and customer id (of two rows
with one customer id, the last is kept).

Only a line that is a whole row on its own can be left out: a line of a batch holding no
double quote (a batch with one is read as ``csv.reader`` reads it, every row checked). A
hash is kept only for a row stored as it is, without a warning: a line that was rejected or
warned is checked again, and says so again. The hash covers the header and the column map
too (``line_hasher``).
"""

from __future__ import annotations

import csv
import hashlib
import json
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import chain, islice, repeat
from operator import itemgetter, methodcaller
from typing import IO, Any

import psycopg
from django.db import connection

from segments.models import Profile, ProfileField
from segments.staging import UNCHANGED_TABLE

#: Changed when the checks change what a line makes of a profile: every line is then checked.
_VERSION = 1
_encoded = methodcaller("encode", "utf-8", "surrogateescape")
_BLAKE2B = hashlib.blake2b


def line_hasher(header: list[str], column_map: Any) -> Callable[[list[str]], list[int]]:
    """The hashes (signed 64-bit, as PostgreSQL's bigint) of lines read under ``header``
    with ``column_map``: the same line under another header or map hashes differently."""
    context = json.dumps([_VERSION, header, asdict(column_map)], ensure_ascii=False)
    tag = hashlib.blake2b(_encoded(context), digest_size=32).digest()
    # The context as salt and personalisation: no extra block per line, as a key would be.
    salted = hashlib.blake2b(digest_size=8, salt=tag[:16], person=tag[16:])

    def hashes(lines: list[str]) -> list[int]:
        try:
            encoded = list(map(str.encode, lines))
        except UnicodeEncodeError:  # bytes that are not UTF-8, read as surrogates
            encoded = list(map(_encoded, lines))
        # A copy of the salted state per line, updated and digested C-level: a third less
        # than making a salted hasher per line (its arguments parsed each time).
        hashers = list(map(_BLAKE2B.copy, repeat(salted, len(encoded))))
        deque(map(_BLAKE2B.update, hashers, encoded), maxlen=0)
        return array("q", b"".join(map(_BLAKE2B.digest, hashers))).tolist()

    return hashes


@dataclass
class LineBatch:
    """Rows to check with the line each starts on and its line's hash (None: not kept),
    then maybe a line that could not be read as CSV; and how many lines were left out
    (staged by their look-up, ``unchanged_lines``)."""

    rows: list[list[str]]
    lines: list[int]
    hashes: list[int | None]
    error: tuple[int, csv.Error] | None = None
    left_out: int = 0


class CsvLines:
    """A CSV file read line by line: its header as ``csv.reader`` reads it (``next``), then
    ``batches`` of the rows to check."""

    def __init__(self, text: IO[str]):
        self._lines = iter(text)
        self._header_reader = csv.reader(self._lines)
        self.line_num = 0
        #: Whether lines are still looked up: off when the first batch looked up has no
        #: unchanged line (a new file), and its lines are then sent in one ``COPY``.
        self.looking_up = False
        #: The positions of the columns that have a value on some line left out.
        self.valued_columns: set[int] = set()
        self._unresolved: set[int] = set()
        self._found_unchanged = False

    def __iter__(self) -> CsvLines:
        return self

    def __next__(self) -> list[str]:
        row = next(self._header_reader)
        self.line_num = self._header_reader.line_num
        return row

    def batches(
        self,
        size: int,
        hashes: Callable[[list[str]], list[int]],
        customer_id_position: int,
        attribute_positions: list[int],
        *,
        look_up: bool,
    ) -> Iterator[LineBatch]:
        """The rows after the header, ``size`` lines at a time; with ``look_up``, without
        the unchanged lines (staged apart as they are looked up: ``unchanged_lines``) unless
        the first batch had none."""
        self.looking_up = look_up
        self._unresolved = set(attribute_positions)

        # A batch's look-up runs on this connection in a thread while the next lines are
        # read and hashed here: the server's half of a re-import beside the Python's half
        # (a thread, not the connection's pipeline mode: the staging between uses COPY).
        def hashed(chunk: list[str]) -> list[int] | None:
            return None if '"' in "".join(chunk) else hashes(chunk)  # None: a quote in it

        with ThreadPoolExecutor(1, thread_name_prefix="line-look-up") as look_ups:
            chunk = list(islice(self._lines, size))
            chunk_hashes = hashed(chunk)
            while chunk:
                if chunk_hashes is None:
                    yield from self._quoted(chunk)  # reads on past the chunk
                    chunk = list(islice(self._lines, size))
                    chunk_hashes = hashed(chunk)
                    continue
                looked_up = None
                if self.looking_up:
                    looked_up = look_ups.submit(
                        unchanged_lines,
                        _customer_ids(chunk, customer_id_position),
                        chunk_hashes,
                        _raw_connection(),
                        self.line_num + 1,
                    )
                following = list(islice(self._lines, size))
                following_hashes = hashed(following)
                unchanged = [] if looked_up is None else looked_up.result()
                yield from self._plain(chunk, chunk_hashes, unchanged)
                chunk, chunk_hashes = following, following_hashes

    def _plain(
        self, chunk: list[str], hashes: list[int], unchanged: list[int]
    ) -> Iterator[LineBatch]:
        """Lines without a double quote: each a row of its own; ``unchanged`` the indexes of
        those left out."""
        first = self.line_num + 1
        self.line_num += len(chunk)
        numbers = list(range(first, first + len(chunk)))
        if self.looking_up:
            self.looking_up = self._found_unchanged = self._found_unchanged or bool(unchanged)
        if unchanged:
            self._note_values([chunk[index] for index in unchanged])
            kept = sorted(set(range(len(chunk))).difference(unchanged))
            chunk = [chunk[index] for index in kept]
            numbers = [numbers[index] for index in kept]
            hashes = [hashes[index] for index in kept]
        reader = csv.reader(chunk)
        done = 0
        batch = LineBatch([], [], [])
        while True:
            try:
                batch.rows.extend(reader)
            except csv.Error as error:
                bad = reader.line_num - 1
                batch.lines, batch.hashes = numbers[done:bad], hashes[done:bad]  # type: ignore[assignment]
                batch.error = (numbers[bad], error)
                yield batch
                batch, done = LineBatch([], [], []), bad + 1
                continue
            batch.lines, batch.hashes = numbers[done:], hashes[done:]  # type: ignore[assignment]
            batch.left_out = len(unchanged)
            yield batch
            return

    def _quoted(self, chunk: list[str]) -> Iterator[LineBatch]:
        """Lines read as ``csv.reader`` reads them (a row may go on over several lines, past
        the chunk), none left out and no hash kept."""
        reader = csv.reader(chain(chunk, self._lines))
        start = self.line_num
        consumed = 0
        batch = LineBatch([], [], [])
        while consumed < len(chunk):
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                consumed = reader.line_num
                batch.hashes = [None] * len(batch.rows)
                batch.error = (start + consumed, error)
                yield batch
                batch = LineBatch([], [], [])
                continue
            batch.rows.append(row)
            batch.lines.append(start + consumed + 1)
            consumed = reader.line_num
        batch.hashes = [None] * len(batch.rows)
        self.line_num = start + consumed
        yield batch

    def _note_values(self, lines: list[str]) -> None:
        """Note which attribute columns have a value on the lines left out (the field
        catalogue's types: ``segments.importing``); only columns with none so far are read."""
        if not self._unresolved:
            return
        values = list(map(methodcaller("split", ","), lines))
        for position in list(self._unresolved):
            if any(map(str.strip, map(itemgetter(position), values))):
                self._unresolved.discard(position)
                self.valued_columns.add(position)


def _customer_ids(lines: list[str], position: int) -> list[str]:
    """Each line's customer id as ``csv.reader`` and the checks would read it ("" when the
    line has too few values: such a line matches no profile)."""
    if position == 0:
        return list(map(str.strip, map(itemgetter(0), map(methodcaller("partition", ","), lines))))
    split = methodcaller("split", ",", position + 1)
    return [
        values[position].strip() if len(values) > position else "" for values in map(split, lines)
    ]


def _raw_connection() -> psycopg.Connection:
    """This thread's database connection itself, for a thread that looks up on its behalf
    (in its transaction: the import's own writes are seen)."""
    connection.ensure_connection()
    return connection.connection


def unchanged_lines(
    customer_ids: list[str], hashes: list[int], on: psycopg.Connection, first_line: int
) -> list[int]:
    """The indexes of the lines (the first is ``first_line`` of the file) whose customer id
    and hash are a profile's, in order; they are staged as left out (``UNCHANGED_TABLE``) by
    the same statement."""
    joined = "".join(customer_ids)
    if "\x00" in joined or not joined.isascii():
        customer_ids = [_sendable(value) for value in customer_ids]
    # Each list as one text split by PostgreSQL: as psycopg arrays, 40 ms a batch against 17.
    # Bound by the server, not quoted into the statement. An id read from one line holds no
    # line break.
    with psycopg.Cursor(on) as cursor:
        cursor.execute(
            "WITH found AS MATERIALIZED (SELECT line.index, line.customer_id"
            " FROM unnest(string_to_array(%s, E'\\n'),"
            " string_to_array(%s, ',')::bigint[]) WITH ORDINALITY"
            " AS line (customer_id, line_hash, index)"
            f" JOIN {Profile._meta.db_table} profile"
            " ON profile.customer_id = line.customer_id"
            " AND profile.import_line_hash = line.line_hash),"
            f" staged AS (INSERT INTO {UNCHANGED_TABLE} (line_no, customer_id)"
            " SELECT %s + index - 1, customer_id FROM found)"
            " SELECT index - 1 FROM found ORDER BY 1",
            ["\n".join(customer_ids), ",".join(map(str, hashes)), first_line],
        )
        return [index for (index,) in cursor.fetchall()]


def _sendable(value: str) -> str:
    """An id PostgreSQL can take ("" for one with a NUL or bytes that are not UTF-8: no
    profile has such an id)."""
    if "\x00" in value:
        return ""
    try:
        value.encode()
    except UnicodeEncodeError:
        return ""
    return value


def may_leave_out(attribute_names: list[str]) -> bool:
    """Whether lines may be left out under these attributes: each is in the field catalogue
    (the import that wrote a line under this header recorded them all). A left-out line's
    values are of types its field's type takes: that import typed the field with them, and
    since then the field has had profiles (the line's own) at every recount, so its type
    could only widen. Leaving the line out then changes no field's type
    (``segments.catalogue.refresh_field_catalogue``)."""
    names = sorted(set(attribute_names))
    if not names:
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {ProfileField._meta.db_table} WHERE name = ANY(%s)", [names]
        )
        return cursor.fetchone()[0] == len(names)
