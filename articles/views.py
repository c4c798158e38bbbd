from django.shortcuts import render
from django.views.generic import DetailView, ListView

from articles.models import Article


def home(request):
    latest = Article.objects.published().only("title", "slug", "summary", "published_at")[:3]
    return render(request, "articles/home.html", {"latest_articles": latest})


class ArticleListView(ListView):
    paginate_by = 10
    template_name = "articles/article_list.html"

    def get_queryset(self):
        return Article.objects.published()


class ArticleDetailView(DetailView):
    template_name = "articles/article_detail.html"

    def get_queryset(self):
        return Article.objects.published()
