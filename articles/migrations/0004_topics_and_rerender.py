from django.db import migrations

STARTING_TOPICS = [
    ("Hip", "hip"),
    ("Lower back", "lower-back"),
    ("Exercise", "exercise"),
    ("Posture", "posture"),
]


def add_starting_topics(apps, schema_editor):
    Topic = apps.get_model("articles", "Topic")
    for name, slug in STARTING_TOPICS:
        Topic.objects.get_or_create(slug=slug, defaults={"name": name})


def rerender_bodies(apps, schema_editor):
    # Historical models have no custom save(): fill the new derived fields of existing rows here.
    from articles.rendering import render_markdown

    Article = apps.get_model("articles", "Article")
    for article in Article.objects.only("pk", "body_markdown"):
        rendered = render_markdown(article.body_markdown)
        Article.objects.filter(pk=article.pk).update(
            body_html=rendered.html, toc=rendered.toc, reading_minutes=rendered.reading_minutes
        )


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0003_search_toc_reading_time"),
    ]

    operations = [
        migrations.RunPython(add_starting_topics, migrations.RunPython.noop),
        migrations.RunPython(rerender_bodies, migrations.RunPython.noop),
    ]
