from django.http import HttpResponse
from django.urls import include, path


def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/trivial", trivial),
    path("", include("clinic.urls")),
]

handler500 = "clinic.views.server_error"
