from django.urls import path

from bookings import views

urlpatterns = [
    path("team/", views.team, name="team"),
    path("contact/", views.contact, name="contact"),
    path("book/", views.booking_start, name="booking_start"),
    path("book/time/", views.booking_time, name="booking_time"),
    path("book/details/", views.booking_details, name="booking_details"),
    path("book/confirmed/", views.booking_confirmed, name="booking_confirmed"),
    path("book/confirmed/forget/", views.booking_forget, name="booking_forget"),
    path("book/confirmed/consultation.ics", views.booking_confirmed_ics, name="booking_confirmed_ics"),
    path("manage/<str:token>/", views.manage, name="manage"),
    path("manage/<str:token>/cancel/", views.manage_cancel, name="manage_cancel"),
    path("manage/<str:token>/move/", views.manage_move, name="manage_move"),
    path("manage/<str:token>/consultation.ics", views.manage_ics, name="manage_ics"),
    path("manage/<str:token>/sooner/", views.manage_sooner, name="manage_sooner"),
    path("book/waiting-list/", views.waiting_list_join_view, name="waiting_list_join"),
    path("waiting-list/lost-link/", views.waiting_list_lost_link, name="waiting_list_lost_link"),
    path("waiting-list/offer/<str:token>/", views.waiting_list_offer, name="waiting_list_offer"),
    path("waiting-list/<str:token>/", views.waiting_list_entry, name="waiting_list_entry"),
    path("waiting-list/<str:token>/confirm/", views.waiting_list_confirm_view, name="waiting_list_confirm"),
    path("waiting-list/<str:token>/leave/", views.waiting_list_leave_view, name="waiting_list_leave"),
]
