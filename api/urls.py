from django.urls import path, re_path

from api.api import api, not_found

urlpatterns = [
    path("v1/", api.urls),
    # Anything else under /api/ answers a problem (JSON), not the site's HTML page.
    re_path(r"^(?P<rest>.*)$", not_found),
]
