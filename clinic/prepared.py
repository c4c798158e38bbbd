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

from django.db import connection
from django.db.models import QuerySet


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
        try:
            with connection.execute_wrapper(_capture):
                result = self._build(**values)
                if isinstance(result, QuerySet):
                    list(result)
        except _Captured as captured:
            return captured.sql, captured.params
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
