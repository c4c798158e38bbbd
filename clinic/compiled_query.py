"""A QuerySet's SQL, compiled once per process and run again with other values.

Why: building and compiling a QuerySet with subqueries (`Slot.objects.bookable()`) costs about a
millisecond of Python each time, more than PostgreSQL takes to answer it. The statement is the
same on every request; only its values change (the time now, a week's bounds, a practitioner).

How it stays the QuerySet's: the SQL is not written by hand. `build` makes the QuerySet from the
rule it already uses (a visibility rule stays a QuerySet method), called with stand-in values;
the parameters Django compiled for the stand-ins are swapped for the real values at each run.
It is built twice, with two different sets of stand-ins, and refused unless the SQL is the same
and every parameter that differs is a stand-in itself: a value computed from one (`now + notice`)
would otherwise be kept, frozen, in the statement.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from threading import Lock

from django.db import connection
from django.db.models import QuerySet

# Stand-ins by type: far from any real value, and different in the two builds.
_STAND_INS = {
    datetime: (
        lambda n: datetime(1901, 1, 1, tzinfo=UTC) + timedelta(days=n),
        lambda n: datetime(1902, 6, 1, tzinfo=UTC) + timedelta(days=n),
    ),
    int: (lambda n: -1_000_001 - n, lambda n: -2_000_001 - n),
}


class CompiledQuery:
    """BUILD(**values) -> QuerySet, compiled on first use; `rows(**values)` runs it (a list of tuples).

    `kinds` names each value and its type (datetime or int), e.g. `CompiledQuery(build, now=datetime)`.
    """

    def __init__(self, build: Callable[..., QuerySet], **kinds: type):
        self._build = build
        self._kinds = kinds
        self._compiled: tuple[str, list] | None = None
        self._lock = Lock()

    def _stand_ins(self, which: int) -> dict:
        return {name: _STAND_INS[kind][which](n) for n, (name, kind) in enumerate(self._kinds.items())}

    def _compile(self) -> tuple[str, list]:
        first, second = self._stand_ins(0), self._stand_ins(1)
        sql, params = self._build(**first).query.sql_with_params()
        other_sql, other_params = self._build(**second).query.sql_with_params()
        if sql != other_sql or len(params) != len(other_params):
            raise ValueError(f"{self._build}: the statement's shape depends on its values")
        # Each parameter: a constant of the statement, or the name of the value it takes.
        by_stand_in = {(first[name], second[name]): name for name in self._kinds}
        slots = []
        for one, other in zip(params, other_params, strict=True):
            if one == other and (one, other) not in by_stand_in:
                slots.append((False, one))
            elif (one, other) in by_stand_in:
                slots.append((True, by_stand_in[one, other]))
            else:
                raise ValueError(f"{self._build}: a parameter is computed from a value ({one!r}): pass it in instead")
        return sql, slots

    def rows(self, **values) -> list[tuple]:
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._compile()
        sql, slots = self._compiled
        params = [values[value] if named else value for named, value in slots]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
