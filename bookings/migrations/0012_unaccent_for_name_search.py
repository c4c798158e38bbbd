from django.contrib.postgres.operations import UnaccentExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Reception's name search folds accents ("Zoe Muller" finds "Zoë Müller") with PostgreSQL's unaccent."""

    dependencies = [
        ("bookings", "0011_manage_link_token"),
    ]

    operations = [UnaccentExtension()]
