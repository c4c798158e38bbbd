from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from articles.models import Article, Topic


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


class VisibilityFilter(admin.SimpleListFilter):
    """What the public sees right now, which status alone does not say (a published article may be scheduled)."""

    title = "visible to the public"
    parameter_name = "visible"

    def lookups(self, request, model_admin):
        return [("yes", "Live now"), ("scheduled", "Scheduled"), ("no", "Not visible")]

    def queryset(self, request, queryset):
        live = Article.objects.published()
        if self.value() == "yes":
            return queryset.filter(pk__in=live)
        if self.value() == "scheduled":
            return queryset.filter(status=Article.Status.PUBLISHED).exclude(pk__in=live)
        if self.value() == "no":
            return queryset.exclude(pk__in=live)
        return queryset


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "published_at", "is_live", "author", "reviewer", "reviewed_on", "updated_at"]
    list_filter = [VisibilityFilter, "status", "topics", "author", "reviewer", "published_at"]
    list_select_related = ["author", "reviewer"]
    search_fields = ["title", "slug", "summary", "body_markdown"]
    prepopulated_fields = {"slug": ["title"]}
    date_hierarchy = "published_at"
    filter_horizontal = ["topics"]
    readonly_fields = ["updated_at", "reading_minutes", "public_link", "rendered_preview"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "summary", "topics"]}),
        ("Body", {"fields": ["body_markdown", "rendered_preview"]}),
        ("Publishing", {"fields": ["status", "published_at", "public_link", "updated_at", "reading_minutes"]}),
        ("People", {"fields": ["author", "reviewer", "reviewed_on"]}),
    ]
    actions = ["publish_now"]

    @admin.display(boolean=True, description="Live")
    def is_live(self, article):
        return article.is_published()

    @admin.display(description="Public page")
    def public_link(self, article):
        if not article.pk:
            return "Save the article first."
        note = "" if article.is_published() else " (only staff can see it until it is published)"
        return format_html('<a href="{}">{}</a>{}', article.get_absolute_url(), article.get_absolute_url(), note)

    @admin.display(description="Preview (as last saved)")
    def rendered_preview(self, article):
        if not article.pk:
            return "Save the article to see it rendered."
        # body_html was sanitised with nh3 when the article was saved: safe to show as HTML.
        return format_html(
            '<div class="article-preview">{}</div>',
            mark_safe(article.body_html),  # noqa: S308
        )

    @admin.action(description="Publish the selected articles now")
    def publish_now(self, request, queryset):
        published = 0
        for article in queryset.filter(status=Article.Status.DRAFT):
            article.status = Article.Status.PUBLISHED
            article.save()
            published += 1
        self.message_user(request, f"{published} article(s) published.")
