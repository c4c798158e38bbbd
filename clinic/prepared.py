"""ORM statements compiled once per process, then sent again with new values.

Building a statement through the ORM (filters resolved, expressions copied, the compiler run) costs far more
CPU than sending it: about 0.3-1 ms for each of the booking's reads, on every booking. A `PreparedQuery`
takes the statement from the real QuerySet methods, so the models' rules stay the one source of truth, and
builds it once; each run then sends the same SQL with that run's values.

1. BUILD runs the ORM call (a QuerySet, evaluated; or `.aggregate()`, `.get()`...) twice, with two sets of
   sample values (SAMPLES: name -> (first, second)). The first statement it would send is captured, not sent.
2. The two SQL texts must be the same; each parameter must be the first sample of one argument in the first
   capture and its second sample in the second (that argument's value goes there), or the same in both (a
   constant of the rule, such as a status). Anything else (a value derived from an argument, `now - 1 hour`,
   `email.lower()`) is refused with ValueError, as is an argument that is not a parameter: derive the value
   before the call and pass it in. Samples should not be fixed points of what a rule may do to a value
   (mixed case and spaces in strings).
3. A run refuses None for an argument: the ORM writes `IS NULL` for None, another statement.
4. A constant that is a driver's adapter (psycopg2's Json, which keeps the connection it was last quoted for) is
   copied for each run, so that threads never share one.
Rows come back as the driver gives them, without the ORM's converters: use it for columns that have none.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

# Sample values for the arguments, far from any real one and different in the two captures.
SAMPLE_IDS = (-7_000_001, -7_000_002)


def sample_times(n: int = 0) -> tuple[datetime, datetime]:
    """The N-th pair of sample times: a statement with several time arguments gives each its own pair."""
    return (
        datetime(1901, 2, 3, 4, 5, 6, 7, tzinfo=UTC) + timedelta(days=n),
        datetime(1902, 3, 4, 5, 6, 7, 8, tzinfo=UTC) + timedelta(days=n),
    )


SAMPLE_TIMES = sample_times()


class _Captured(Exception):
    def __init__(self, sql: str, params):
        super().__init__("captured")
        self.sql, self.params = sql, tuple(params or ())


def _capture(execute, sql, params, many, context):
    raise _Captured(sql, params)


class PreparedQuery:
    def __init__(self, build: Callable, *, samples: dict[str, tuple]):
        self._build = build
        self._samples = samples
        self._sql: str | None = None
        # Per parameter: (argument name, None) or (None, the constant).
        self._parameters: list[tuple[str | None, object]] = []

    def _statement(self, values: dict) -> tuple[str, tuple]:
        # A debug cursor (DEBUG, or a test counting queries) logs the statement it was asked to send even when it
        # was not sent: those entries go, so that preparing counts as no query.
        # Opened here, not inside the capture: opening a connection may send statements of its own (the
        # first connection in a process looks up hstore's type), which the capture would take for BUILD's.
        connection.ensure_connection()
        logged = len(connection.queries_log)
        try:
            with connection.execute_wrapper(_capture):
                result = self._build(**values)
                if isinstance(result, QuerySet):
                    list(result)
        except _Captured as captured:
            return captured.sql, captured.params
        finally:
            while len(connection.queries_log) > logged:
                connection.queries_log.pop()
        raise ValueError("BUILD sent no statement.")

    def prepare(self) -> str:
        """Capture the statement twice and check it as the module's docstring says (once); its SQL."""
        if self._sql is not None:
            return self._sql
        first = {name: pair[0] for name, pair in self._samples.items()}
        second = {name: pair[1] for name, pair in self._samples.items()}
        sql, params = self._statement(first)
        sql_again, params_again = self._statement(second)
        if sql != sql_again or len(params) != len(params_again):
            raise ValueError("The statement's SQL depends on the values given: it cannot be prepared.")
        parameters: list[tuple[str | None, object]] = []
        for position, (value, value_again) in enumerate(zip(params, params_again, strict=True)):
            names = [name for name in self._samples if _same(value, first[name]) and _same(value_again, second[name])]
            if len(names) == 1:
                parameters.append((names[0], None))
            elif not names and _same(value, value_again):
                parameters.append((None, value))
            else:
                raise ValueError(f"Parameter {position + 1} ({value!r}) is neither one argument nor a constant.")
        unused = set(self._samples) - {name for name, _ in parameters}
        if unused:
            raise ValueError(f"Not parameters of the statement as sent (derived from?): {sorted(unused)}")
        self._parameters = parameters
        self._sql = sql
        return sql

    def params(self, values: dict) -> list:
        self.prepare()
        if set(values) != set(self._samples):
            raise TypeError(f"Expected the arguments {sorted(self._samples)}, got {sorted(values)}.")
        for name, value in values.items():
            if value is None:
                raise ValueError(f"{name} is None: the ORM would send another statement for None.")
        return [
            values[name] if name is not None else copy.copy(constant) if hasattr(constant, "adapted") else constant
            for name, constant in self._parameters
        ]

    def rows(self, **values) -> list[tuple]:
        sql = self.prepare()
        with connection.cursor() as cursor:
            cursor.execute(sql, self.params(values))
            return cursor.fetchall()


def _same(value, sample) -> bool:
    # The type too: 1 == True == 1.0 in Python. A driver's adapter (psycopg2's Json) by the value it adapts.
    return type(value) is type(sample) and getattr(value, "adapted", value) == getattr(sample, "adapted", sample)


class PreparedInsert:
    """INSERTs of a model's new rows, the statement written once per process (per number of rows).

    The values are what the ORM's own insert sends: each field's `pre_save(obj, add=True)` (defaults were set
    when the instance was made, auto_now here) through its `get_db_prep_save`; the primary key and the other
    returning fields come back onto the instances. As with bulk_create, the model's save() and its signals do
    not run: a model that overrides save() must say what its save() adds (BEFORE_INSERT, run on each instance
    first), and a test must show that the two write the same row. A value that is an expression, or a field
    left to its database default, is refused (the ORM writes SQL or DEFAULT for them).
    """

    def __init__(self, model, *, before_insert: Callable | None = None):
        from django.db.models import Model

        if model.save is not Model.save and before_insert is None:
            raise TypeError(f"{model.__name__} overrides save(): give BEFORE_INSERT, what it adds.")
        meta = model._meta
        self._fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
        if any(field.generated for field in self._fields):
            raise TypeError(f"{model.__name__} has generated fields: use the ORM.")
        self._returning = meta.db_returning_fields
        self._relations = [field for field in self._fields if field.is_relation]
        self._before_insert = before_insert
        self._model = model
        quote = connection.ops.quote_name
        self._head = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in self._fields)}) VALUES "
        )
        self._row = f"({', '.join(['%s'] * len(self._fields))})"
        self._tail = f" RETURNING {', '.join(quote(field.column) for field in self._returning)}"

    def insert(self, *objs) -> None:
        sql, params = self.statement(*objs)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            returned = cursor.fetchall()
        self.returned(objs, returned)

    def statement(self, *objs, parent=None, parent_cte: str = "") -> tuple[str, list]:
        """The INSERT ... RETURNING of OBJS, and its parameters.

        With PARENT (an instance not saved yet) and PARENT_CTE (the name of the WITH query that inserts it,
        returning its key), a foreign key of OBJS to PARENT takes that query's key: `(SELECT id FROM parent_cte)`.
        `returned` then sets it on the instances with their own keys.
        """
        quote = connection.ops.quote_name
        params = []
        rows = []
        for obj in objs:
            if type(obj) is not self._model:
                raise TypeError(f"Not a {self._model.__name__}: {obj!r}")
            if self._before_insert is not None:
                self._before_insert(obj)
            to_parent = self._foreign_keys_to(obj, parent) if parent is not None else ()
            # Each other related instance must be saved already (the ORM's own check).
            others = [field for field in self._relations if field not in to_parent]
            if others:
                obj._prepare_related_fields_for_save(operation_name="insert", fields=others)
            placeholders = []
            for field in self._fields:
                if field in to_parent:
                    placeholders.append(f"(SELECT {quote(parent._meta.pk.column)} FROM {parent_cte})")
                    continue
                value = field.pre_save(obj, add=True)
                if hasattr(value, "resolve_expression"):
                    # An expression, or a database default left to the database.
                    raise TypeError(f"{field.name} is an expression (or DEFAULT): use the ORM.")
                params.append(field.get_db_prep_save(value, connection=connection))
                placeholders.append("%s")
            rows.append(f"({', '.join(placeholders)})" if to_parent else self._row)
        return self._head + ", ".join(rows) + self._tail, params

    def _foreign_keys_to(self, obj, parent) -> list:
        """OBJ's foreign keys whose related instance is PARENT, itself not saved yet."""
        return [field for field in self._relations if field.is_cached(obj) and field.get_cached_value(obj) is parent]

    def returned(self, objs, rows) -> None:
        """Set the returned fields (the key) of each row on OBJS, and their foreign keys to a parent now saved."""
        for obj, row in zip(objs, rows, strict=True):
            for field, value in zip(self._returning, row, strict=True):
                setattr(obj, field.attname, value)
            for field in self._relations:
                if getattr(obj, field.attname) is None and field.is_cached(obj):
                    related = field.get_cached_value(obj)
                    if related is not None:
                        setattr(obj, field.attname, related.pk)
            obj._state.adding = False
            obj._state.db = connection.alias
