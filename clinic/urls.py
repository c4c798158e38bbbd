from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path

from articles.sitemaps import SITEMAPS
from articles.views import home
from clinic import two_factor, views
from clinic.signin import StaffAdminAuthenticationForm, StaffAuthenticationForm
from clinic.two_factor import StaffLoginView

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
    path("staff/login/", StaffLoginView.as_view(authentication_form=StaffAuthenticationForm), name="login"),
    path("staff/login/code/", two_factor.two_factor_code, name="two_factor_code"),
    path("staff/two-factor/setup/", two_factor.two_factor_setup, name="two_factor_setup"),
    path("staff/two-factor/reset/", two_factor.two_factor_reset_own, name="two_factor_reset"),
    path("staff/logout/", views.SignOutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
]

# The admin's sign-in refuses an overlong username too (clinic/signin.py).
admin.site.login_form = StaffAdminAuthenticationForm

handler500 = "clinic.views.server_error"
