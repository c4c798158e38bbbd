from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_staff_groups(sender, using="default", **kwargs):
    """The groups are created by migrations (0002; the Clinic manager's with the Insights counts); this puts
    them back after a database flush (which emits post_migrate), so role checks never meet a missing group."""
    from django.contrib.auth.models import Group

    from bookings.models import MANAGER_GROUP, PRACTITIONER_GROUP, RECEPTION_GROUP

    for name in (RECEPTION_GROUP, PRACTITIONER_GROUP, MANAGER_GROUP):
        Group.objects.using(using).get_or_create(name=name)


class BookingsConfig(AppConfig):
    name = "bookings"

    def ready(self):
        post_migrate.connect(ensure_staff_groups, sender=self)
