"""Insert many read-model rows at once: SQLite's ``executemany``, PostgreSQL's binary ``COPY``.

``connection.execute(insert(table), rows)`` compiles the parameters of every row through
SQLAlchemy's general machinery; for the hundreds of thousands of rows of a rebuild that is
most of the cost. Here each column's conversion is looked up once per table and set of
columns — the bind processor of the column type's implementation for the dialect, the
conversion SQLAlchemy itself applies — and the driver gets plain rows: SQLite one
``executemany``, PostgreSQL one ``COPY ... FROM STDIN (FORMAT BINARY)`` (a single stream
instead of a statement a row, each value sent in its column's binary form: the columns'
types are read from the server once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table

if TYPE_CHECKING:
    from psycopg import Cursor

Row = tuple[Any, ...]


@dataclass(frozen=True)
class _Load:
    sql: str
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]  # (index in the row, conversion)
    types: tuple[int, ...]  # PostgreSQL: the columns' type oids, for the binary COPY

    def convert(self, row: Row) -> Row:
        values = list(row)
        for i, conversion in self.conversions:
            values[i] = conversion(values[i])
        return tuple(values)


_LOADS: dict[tuple[str, str, tuple[str, ...]], _Load] = {}


def insert_rows(connection: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[Row]) -> None:
    """Insert ``rows``, each a sequence of the values of ``columns`` in that order, into ``table``."""
    if not rows:
        return
    load = _load(connection, table, columns)
    converted = [load.convert(row) for row in rows] if load.conversions else rows
    if connection.dialect.name == "postgresql":
        cursor = cast("Cursor[Any]", connection.connection.cursor())
        try:
            with cursor.copy(load.sql) as copy:
                copy.set_types(load.types)
                for row in converted:
                    copy.write_row(row)
        finally:
            cursor.close()
    else:
        connection.exec_driver_sql(load.sql, converted)


def bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dictionaries with the same keys) into ``table``."""
    if rows:
        columns = tuple(rows[0])
        insert_rows(connection, table, columns, [tuple(row[name] for name in columns) for row in rows])


def _load(connection: Connection, table: Table, columns: tuple[str, ...]) -> _Load:
    dialect = connection.dialect
    key = (table.name, dialect.name, columns)
    load = _LOADS.get(key)
    if load is None:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in columns)
        target = dialect.identifier_preparer.format_table(table)
        types: tuple[int, ...] = ()
        if dialect.name == "postgresql":
            sql = f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)"
            cursor = cast("Cursor[Any]", connection.connection.cursor())
            try:
                cursor.execute(f"SELECT {names} FROM {target} LIMIT 0")
                types = tuple(column.type_code for column in cursor.description or ())
            finally:
                cursor.close()
        else:
            sql = f"INSERT INTO {target} ({names}) VALUES ({', '.join('?' for _ in columns)})"
        conversions = tuple(
            (i, conversion) for i, name in enumerate(columns)
            if (conversion := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )
        load = _LOADS[key] = _Load(sql, conversions, types)
    return load
