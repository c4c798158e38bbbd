from django.apps import AppConfig
from django.core import checks


class ArticlesConfig(AppConfig):
    name = "articles"

    def ready(self):
        checks.register(opening_hours_check)


def opening_hours_check(app_configs, **kwargs):
    """Opening hours that search engines cannot be given: the pages still show the text as it is."""
    from django.conf import settings

    from articles.structured_data import opening_hours_specification

    if opening_hours_specification(settings.CLINIC_OPENING_HOURS):
        return []
    return [
        checks.Warning(
            f"CLINIC_OPENING_HOURS {settings.CLINIC_OPENING_HOURS!r} cannot be read as opening hours, so the "
            "structured data for search engines leaves them out.",
            hint="Write it like 'Monday to Friday 08:30-18:00; Saturday 09:00-12:00'.",
            id="articles.W001",
        )
    ]
