from django.urls import path

from articles import feeds, views

app_name = "articles"

urlpatterns = [
    path("articles/", views.ArticleListView.as_view(), name="list"),
    # File-like names: they can never collide with an article's slug below.
    path("articles/feed.rss", feeds.LatestArticlesFeed(), name="feed_rss"),
    path("articles/feed.atom", feeds.LatestArticlesAtomFeed(), name="feed_atom"),
    path("articles/<slug:slug>/", views.ArticleDetailView.as_view(), name="detail"),
]
