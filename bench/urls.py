from django.http import HttpResponse
from django.urls import include, path

from staff.views import reception_required


def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


@reception_required
def signed_in_trivial(request):
    """The floor under every reception page: the staff checks (session, user, group, second factor, idle expiry)
    and nothing else. make bench compares the day view with it as well as with the trivial view."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/trivial", trivial),
    path("bench/signed-in", signed_in_trivial),
    path("", include("clinic.urls")),
]

handler500 = "clinic.views.server_error"
