"""clinic.compiled_query: a QuerySet compiled once runs again with other values, and nothing else changes."""

from datetime import UTC, datetime, timedelta

import pytest

from bookings.models import Slot
from clinic.compiled_query import CompiledQuery
from tests.helpers import make_slot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def test_a_compiled_query_answers_like_its_queryset_for_each_value(dr_patel, dr_okafor):
    for hours in (1, 2, 3):
        make_slot(dr_patel, NOW + timedelta(hours=hours))
        make_slot(dr_okafor, NOW + timedelta(hours=hours))
    compiled = CompiledQuery(
        lambda after, practitioner: (
            Slot.objects.filter(starts_at__gt=after, practitioner=practitioner)
            .order_by("starts_at")
            .values_list("pk", "starts_at")
        ),
        after=datetime,
        practitioner=int,
    )
    for after in (NOW, NOW + timedelta(hours=1, minutes=30), NOW + timedelta(hours=5)):
        for practitioner in (dr_patel, dr_okafor):
            expected = Slot.objects.filter(starts_at__gt=after, practitioner=practitioner).order_by("starts_at")
            assert compiled.rows(after=after, practitioner=practitioner.pk) == list(
                expected.values_list("pk", "starts_at")
            )


def test_a_value_computed_inside_the_queryset_is_refused_not_frozen_into_the_statement(dr_patel):
    # bookable() adds the minimum notice to `now`: compiled, that sum would be the stand-in's, forever.
    compiled = CompiledQuery(lambda now: Slot.objects.bookable(now=now).values_list("pk"), now=datetime)
    with pytest.raises(ValueError, match="computed from a value"):
        compiled.rows(now=NOW)


def test_a_statement_whose_shape_depends_on_a_value_is_refused(dr_patel):
    compiled = CompiledQuery(
        lambda after: Slot.objects.filter(starts_at__gt=after).values_list("pk")[: after.year % 10],
        after=datetime,
    )
    with pytest.raises(ValueError, match="shape"):
        compiled.rows(after=NOW)
