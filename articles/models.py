from datetime import datetime

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from articles.rendering import render_markdown, split_after_introduction

# Columns a list of articles never shows: the bodies are the bulk of each row.
LIST_DEFERRED = ("body_markdown", "body_html", "toc", "search_vector")

# The text search configuration for stemming and stop words: the site is written in English.
SEARCH_CONFIG = "english"


class Topic(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ArticleQuerySet(models.QuerySet):
    def published(self, *, now: datetime | None = None):
        """The one rule of who sees what: published, and not dated in the future."""
        return self.filter(status=Article.Status.PUBLISHED, published_at__lte=now or timezone.now())

    def scheduled_after(self, now: datetime):
        """Articles set to go live after NOW, soonest first."""
        return self.filter(status=Article.Status.PUBLISHED, published_at__gt=now).order_by("published_at")

    def search(self, terms: str):
        """Articles matching the words a patient typed (web-search syntax), most relevant first.

        Title words weigh most (A), then the summary (B), then the body (C): see Article.search_vector.
        """
        query = SearchQuery(terms, search_type="websearch", config=SEARCH_CONFIG)
        return (
            self.filter(search_vector=query)
            .annotate(rank=SearchRank(F("search_vector"), query))
            .order_by("-rank", "-published_at", "-pk")
        )


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class Article(models.Model):
    Status = ArticleStatus

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    summary = models.TextField(
        max_length=500, help_text="One or two sentences: shown in lists, search results and link previews."
    )
    body_markdown = models.TextField("body (Markdown)")
    body_html = models.TextField(editable=False, blank=True)
    # Both derived from the body at save, like body_html, so pages do not render Markdown.
    toc = models.JSONField("table of contents", default=list, editable=False, blank=True)
    reading_minutes = models.PositiveSmallIntegerField(default=1, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="Publishing with this empty sets it to now. A future time schedules it."
    )
    updated_at = models.DateTimeField(auto_now=True)
    author = models.ForeignKey(
        "bookings.Practitioner", null=True, blank=True, on_delete=models.SET_NULL, related_name="articles_written"
    )
    reviewer = models.ForeignKey(
        "bookings.Practitioner",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="articles_reviewed",
        help_text="The practitioner who checked the article's medical content.",
    )
    reviewed_on = models.DateField(null=True, blank=True)
    topics = models.ManyToManyField(Topic, blank=True, related_name="articles")
    # Kept by PostgreSQL itself, so it can never disagree with the text, whichever way a row is written.
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("summary", weight="B", config=SEARCH_CONFIG)
        + SearchVector("body_markdown", weight="C", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status=ArticleStatus.DRAFT) | Q(published_at__isnull=False),
                name="article_published_has_date",
            ),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="article_search_vector_gin"),
            models.Index(fields=["status", "-published_at"], name="article_status_published"),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        rendered = render_markdown(self.body_markdown)
        self.body_html = rendered.html
        self.toc = rendered.toc
        self.reading_minutes = rendered.reading_minutes
        self._date_if_publishing()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            # The derived fields always travel with the ones they derive from.
            update_fields = set(update_fields)
            if "body_markdown" in update_fields:
                update_fields |= {"body_html", "toc", "reading_minutes"}
            if "status" in update_fields:
                update_fields.add("published_at")
            kwargs["update_fields"] = update_fields
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("articles:detail", args=[self.slug])

    def clean(self):
        # Before the constraint check, so the admin can publish with the date left empty.
        self._date_if_publishing()

    def _date_if_publishing(self):
        if self.status == self.Status.PUBLISHED and self.published_at is None:
            self.published_at = timezone.now()

    def is_published(self, *, now: datetime | None = None) -> bool:
        """The instance mirror of ArticleQuerySet.published(), for the admin and for staff previews."""
        return (
            self.status == self.Status.PUBLISHED
            and self.published_at is not None
            and self.published_at <= (now or timezone.now())
        )

    @property
    def body_parts(self) -> tuple[str, str]:
        """The introduction and the rest of the body, so a call to action can sit between them."""
        return split_after_introduction(self.body_html)
