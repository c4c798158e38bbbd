from types import SimpleNamespace
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from articles.models import Article


class SiteUrlSitemap(Sitemap):
    """Addresses on settings.SITE_URL, like the canonical links, whatever host the sitemap was fetched on."""

    def get_urls(self, page=1, site=None, protocol=None):
        public = urlsplit(settings.SITE_URL)
        return super().get_urls(page=page, site=SimpleNamespace(domain=public.netloc), protocol=public.scheme)


class PagesSitemap(SiteUrlSitemap):
    changefreq = "weekly"

    def items(self):
        return ["home", "articles:list", "team", "contact"]

    def location(self, name):
        return reverse(name)


class ArticleSitemap(SiteUrlSitemap):
    changefreq = "monthly"

    def items(self):
        return Article.objects.published().only("slug", "updated_at").order_by("-published_at", "-pk")

    def lastmod(self, article):
        return article.updated_at


SITEMAPS = {"pages": PagesSitemap, "articles": ArticleSitemap}
