"""Choices are spelled once: a constraint or index condition takes its values from the TextChoices class.

A value retyped as a string ("cancelled") goes on matching after the choice is renamed in one place
only, and the database then holds a rule about a status that no longer exists (issue 15).
"""

import enum

from django.apps import apps
from django.db.models import Q


def _lookups(condition: Q):
    for child in condition.children:
        if isinstance(child, Q):
            yield from _lookups(child)
        else:
            yield child


def conditions_with_retyped_choices(model) -> list[str]:
    """The named constraints and indexes of MODEL whose condition compares a choices field with a plain string."""
    found = []
    for rule in [*model._meta.constraints, *model._meta.indexes]:
        condition = getattr(rule, "condition", None)
        if not isinstance(condition, Q):
            continue
        for lookup, value in _lookups(condition):
            field = model._meta.get_field(lookup.split("__")[0])
            values = value if isinstance(value, list | tuple) else [value]
            if field.choices and any(isinstance(each, str) and not isinstance(each, enum.Enum) for each in values):
                found.append(f"{model.__name__}.{rule.name}: {lookup}={value!r}")
    return found


def test_every_condition_on_a_choices_field_takes_its_values_from_the_choices_class():
    models = [*apps.get_app_config("bookings").get_models(), *apps.get_app_config("articles").get_models()]
    assert [found for model in models for found in conditions_with_retyped_choices(model)] == []


def test_a_condition_with_a_retyped_status_is_found():
    from bookings.models import Appointment

    class RetypedMeta:
        constraints = [type("Rule", (), {"name": "retyped", "condition": ~Q(status="cancelled")})()]
        indexes = []

        @staticmethod
        def get_field(name):
            return Appointment._meta.get_field(name)

    class Retyped:
        __name__ = "Retyped"
        _meta = RetypedMeta

    assert conditions_with_retyped_choices(Retyped) == ["Retyped.retyped: status='cancelled'"]
