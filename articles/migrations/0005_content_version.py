"""The articles' content version: one counter PostgreSQL bumps on any change to what an article page shows.

The home page, the article list and the article pages are rendered once and served from memory
until this counter moves (clinic/page_cache.py). Triggers keep it, in the same transaction as the
change, whichever code path writes (the admin, import_articles, SQL by hand). Articles, topics,
the article-topic links and the practitioners (authors and reviewers, by name) all count.
Edits are rare, so one row is enough.
"""

from django.db import migrations

TABLES = ["articles_article", "articles_topic", "articles_article_topics", "bookings_practitioner"]

FORWARD = [
    """
    CREATE TABLE articles_contentversion (
        id smallint PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL
    );
    INSERT INTO articles_contentversion (id, version) VALUES (1, 1);

    CREATE FUNCTION articles_content_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE articles_contentversion SET version = version + 1 WHERE id = 1;
        RETURN NULL;
    END $$;
    """,
    *(
        f"CREATE TRIGGER content_version_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION articles_content_changed();"
        for table in TABLES
    ),
]

BACKWARD = [
    *(f"DROP TRIGGER content_version_{table} ON {table};" for table in TABLES),
    "DROP FUNCTION articles_content_changed(); DROP TABLE articles_contentversion;",
]


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0004_topics_and_rerender"),
        ("bookings", "0006_availability_version"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
