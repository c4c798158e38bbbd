from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path

from articles.sitemaps import SITEMAPS
from articles.views import home
from clinic import views
from clinic.signin import StaffAdminAuthenticationForm, StaffAuthenticationForm

urlpatterns = [
    path("", home, name="home"),
    path("", include("articles.urls")),
    path("", include("bookings.urls")),
    path("staff/", include("staff.urls")),
    path("privacy/", views.privacy, name="privacy"),
    path("accessibility/", views.accessibility, name="accessibility"),
    path("healthz", views.healthz, name="healthz"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="django.contrib.sitemaps.views.sitemap"),
    path(
        "staff/login/",
        auth_views.LoginView.as_view(authentication_form=StaffAuthenticationForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("staff/logout/", views.SignOutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

# The admin's sign-in refuses an overlong username too (clinic/signin.py).
admin.site.login_form = StaffAdminAuthenticationForm

handler500 = "clinic.views.server_error"
