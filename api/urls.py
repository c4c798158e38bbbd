from django.urls import path

from api.api import api, not_found

urlpatterns = [
    path("v1/", api.urls),
    # Anything else under /api/ answers a problem (JSON), not the site's HTML page.
    path("", not_found),
    path("<path:rest>", not_found),
]
