from django.urls import path

from bookings import views

urlpatterns = [
    path("team/", views.team, name="team"),
    path("contact/", views.contact, name="contact"),
    path("staff/", views.staff_home, name="staff_home"),
    path("book/", views.booking_start, name="booking_start"),
]
