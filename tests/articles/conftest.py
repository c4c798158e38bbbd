"""A small hand-written factory for articles, in the spirit of djangoproject.com's blog tests."""

from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

_numbers = count(1)


@pytest.fixture
def make_article(db):
    from articles.models import Article, Topic

    def make(*, title=None, status="published", published_at="now", topics=(), **fields):
        number = next(_numbers)
        title = title or f"Article number {number}"
        if published_at == "now":
            published_at = timezone.now() - timedelta(minutes=number)
        article = Article.objects.create(
            title=title,
            slug=fields.pop("slug", f"article-number-{number}"),
            summary=fields.pop("summary", f"The summary of article {number}."),
            body_markdown=fields.pop("body_markdown", "An introduction.\n\n## A section\n\nSome text."),
            status=status,
            published_at=published_at,
            **fields,
        )
        for name in topics:
            topic, _ = Topic.objects.get_or_create(slug=name.lower().replace(" ", "-"), defaults={"name": name})
            article.topics.add(topic)
        return article

    return make
