from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from bookings.models import PRACTITIONER_GROUP, RECEPTION_GROUP, Practitioner


def team(request):
    practitioners = Practitioner.objects.listed()
    return render(request, "bookings/team.html", {"practitioners": practitioners})


def contact(request):
    return render(request, "bookings/contact.html")


@login_required
def staff_home(request):
    groups = set(request.user.groups.values_list("name", flat=True))
    return render(
        request,
        "bookings/staff_home.html",
        {"is_reception": RECEPTION_GROUP in groups, "is_practitioner": PRACTITIONER_GROUP in groups},
    )


def booking_start(request):
    return redirect("home")
