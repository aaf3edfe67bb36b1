"""Insert many read-model rows at once, converting each value with its column's type once.

``connection.execute(insert(table), rows)`` compiles the parameters of every row through
SQLAlchemy's general machinery; for the tens of thousands of rows of a rebuild that is most
of the cost. Here the statement is compiled once per table and set of columns, each value
goes through its column type's bind processor (the same conversion SQLAlchemy applies), and
the driver's ``executemany`` gets plain tuples or dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, insert


@dataclass(frozen=True)
class _Statement:
    sql: str
    names: tuple[str, ...]  # the parameters, in the statement's order
    positional: bool
    processors: tuple[tuple[int, str, Callable[[Any], Any]], ...]  # (position, name, conversion)


_STATEMENTS: dict[tuple[str, str, tuple[str, ...]], _Statement] = {}


def bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dictionaries with the same keys) into ``table``."""
    if not rows:
        return
    statement = _statement(connection, table, tuple(rows[0]))
    params: list[Any] = []
    if statement.positional:
        values_of = itemgetter(*statement.names)
        for row in rows:
            values = list(values_of(row)) if len(statement.names) > 1 else [values_of(row)]
            for i, _, convert in statement.processors:
                values[i] = convert(values[i])
            params.append(tuple(values))
    else:
        for row in rows:
            named = dict(row)
            for _, name, convert in statement.processors:
                named[name] = convert(named[name])
            params.append(named)
    connection.exec_driver_sql(statement.sql, params)


def _statement(connection: Connection, table: Table, keys: tuple[str, ...]) -> _Statement:
    dialect = connection.dialect
    cache_key = (table.name, dialect.name, keys)
    cached = _STATEMENTS.get(cache_key)
    if cached is None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else keys
        processors = tuple(
            (i, name, convert) for i, name in enumerate(names) if (convert := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )
        cached = _STATEMENTS[cache_key] = _Statement(str(compiled), names, positional, processors)
    return cached
