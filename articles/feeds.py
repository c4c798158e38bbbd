from django.conf import settings
from django.contrib.syndication.views import Feed
from django.urls import reverse_lazy
from django.utils.feedgenerator import Atom1Feed

from articles.models import LIST_DEFERRED, Article

FEED_LENGTH = 20


class LatestArticlesFeed(Feed):
    link = reverse_lazy("articles:list")
    description = "Patient-education articles on hip and lower-back pain from our physiotherapists."

    def title(self):
        return f"{settings.CLINIC_NAME}: articles"

    def items(self):
        return (
            Article.objects.published()
            .select_related("author")
            .prefetch_related("topics")
            .defer(*LIST_DEFERRED)[:FEED_LENGTH]
        )

    def item_title(self, article):
        return article.title

    def item_description(self, article):
        return article.summary

    def item_pubdate(self, article):
        return article.published_at

    def item_updateddate(self, article):
        return article.updated_at

    def item_author_name(self, article):
        return article.author.full_name if article.author else settings.CLINIC_NAME

    def item_categories(self, article):
        return [topic.name for topic in article.topics.all()]


class LatestArticlesAtomFeed(LatestArticlesFeed):
    feed_type = Atom1Feed
    subtitle = LatestArticlesFeed.description
