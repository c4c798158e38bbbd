from datetime import datetime

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


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


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    summary = models.TextField(max_length=500)
    body_markdown = models.TextField("body (Markdown)")
    body_html = models.TextField(editable=False, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
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

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="article_published_has_date",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("articles:detail", args=[self.slug])
