from datetime import datetime

from django.db.models import Count, Q
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.generic import DetailView, ListView

from articles import structured_data
from articles.models import LIST_DEFERRED, Article, Topic
from clinic.page_cache import MAX_AGE, PageCache, Rendering, TableVersion

# The home page, the article list (unless searching) and each article, as every visitor sees them.
_article_pages = PageCache("articles")
CONTENT_VERSION = TableVersion("articles_contentversion")


def _served_from_cache(request, key, render_page):
    """RENDER_PAGE's response, kept until an article, topic or practitioner changes or one is due to go live."""
    now = timezone.now()

    def next_publication() -> datetime:
        upcoming = Article.objects.scheduled_after(now).values_list("published_at", flat=True).first()
        return upcoming or now + MAX_AGE

    def rendering() -> Rendering:
        return Rendering(render_page(), dependency=CONTENT_VERSION, expires_at=next_publication)

    return _article_pages.serve(request, key, now=now, render=rendering)


def home(request):
    def render_page():
        latest = Article.objects.published().defer(*LIST_DEFERRED)[:3]
        return render(
            request,
            "articles/home.html",
            {"latest_articles": latest, "structured_data": structured_data.home_graph()},
        )

    return _served_from_cache(request, "home", render_page)


def _can_preview_drafts(user) -> bool:
    return user.is_staff and user.has_perm("articles.view_article")


class ArticleListView(ListView):
    paginate_by = 10
    template_name = "articles/article_list.html"
    context_object_name = "articles"

    def get(self, request, *args, **kwargs):
        topic, page = request.GET.get("topic", ""), request.GET.get("page", "")
        if request.GET.get("q", "").strip() or len(topic) > 100 or len(page) > 6:
            # Searches (and odd values) are not worth keeping, and a search box shows what was typed:
            # no browser or proxy keeps it either.
            response = super().get(request, *args, **kwargs)
            add_never_cache_headers(response)
            return response
        key = ("list", topic, page)
        return _served_from_cache(request, key, lambda: super(ArticleListView, self).get(request, *args, **kwargs))

    def get_queryset(self):
        self.search_terms = self.request.GET.get("q", "").strip()[:200]
        self.topic_slug = self.request.GET.get("topic", "").strip()
        articles = Article.objects.published().defer(*LIST_DEFERRED).prefetch_related("topics")
        if self.topic_slug:
            articles = articles.filter(topics__slug=self.topic_slug)
        if self.search_terms:
            articles = articles.search(self.search_terms)
        return articles

    def get_context_data(self, **kwargs):
        # Only topics that have something to show; the chosen one is picked from this list, not queried again.
        topics = list(Topic.objects.filter(articles__in=Article.objects.published()).distinct())
        selected_topic = next((topic for topic in topics if topic.slug == self.topic_slug), None)
        return super().get_context_data(
            topics=topics,
            selected_topic=selected_topic,
            topic_slug=self.topic_slug,
            search_terms=self.search_terms,
            is_filtered=bool(self.search_terms or self.topic_slug),
            **kwargs,
        )


class ArticleDetailView(DetailView):
    template_name = "articles/article_detail.html"

    def get(self, request, *args, **kwargs):
        key = ("detail", kwargs.get("slug"))
        return _served_from_cache(request, key, lambda: super(ArticleDetailView, self).get(request, *args, **kwargs))

    def get_queryset(self):
        # Staff who edit articles preview drafts and scheduled ones on the public URL; anyone else gets a 404.
        articles = Article.objects.all() if _can_preview_drafts(self.request.user) else Article.objects.published()
        return articles.select_related("author", "reviewer").prefetch_related("topics").defer("search_vector")

    def get_context_data(self, **kwargs):
        article = self.object
        topic_ids = [topic.pk for topic in article.topics.all()]
        # Articles sharing the most topics first, then the newest: always three when there are three to show.
        related = (
            Article.objects.published()
            .exclude(pk=article.pk)
            .defer(*LIST_DEFERRED)
            .annotate(shared_topics=Count("topics", filter=Q(topics__in=topic_ids)))
            .order_by("-shared_topics", "-published_at", "-pk")[:3]
        )
        introduction, rest = article.body_parts
        return super().get_context_data(
            related_articles=related,
            introduction_html=introduction,
            rest_html=rest,
            is_preview=not article.is_published(),
            structured_data=structured_data.article_graph(article),
            **kwargs,
        )

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        if context["is_preview"]:
            # A draft must not be cached by a proxy or indexed if its URL leaks.
            add_never_cache_headers(response)
            response["X-Robots-Tag"] = "noindex"
        return response
