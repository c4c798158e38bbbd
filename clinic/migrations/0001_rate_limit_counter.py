from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="RateLimitCounter",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "bucket", "address", "window_start", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("bucket", models.CharField(max_length=40)),
                ("address", models.CharField(max_length=64)),
                ("window_start", models.DateTimeField()),
                ("count", models.PositiveIntegerField(default=0)),
            ],
        ),
        # Counters are worth no WAL: no flush on commit, nothing to replicate; a crash empties the table.
        migrations.RunSQL(
            "ALTER TABLE clinic_ratelimitcounter SET UNLOGGED",
            reverse_sql="ALTER TABLE clinic_ratelimitcounter SET LOGGED",
        ),
    ]
