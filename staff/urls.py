"""Staff pages, included under /staff/: reception under reception/, a practitioner's own under me/."""

from django.urls import path

from staff import views

urlpatterns = [
    path("", views.staff_home, name="staff_home"),
    path("reception/", views.reception_day, name="reception_day"),
    path("reception/week/<int:practitioner_id>/", views.reception_week, name="reception_week"),
    path("reception/next-free/", views.reception_next_free, name="reception_next_free"),
    path("reception/book/", views.reception_book, name="reception_book"),
    path("reception/appointments/<int:pk>/", views.reception_appointment, name="reception_appointment"),
    path(
        "reception/appointments/<int:pk>/status/",
        views.reception_appointment_status,
        name="reception_appointment_status",
    ),
    path(
        "reception/appointments/<int:pk>/cancel/",
        views.reception_appointment_cancel,
        name="reception_appointment_cancel",
    ),
    path("reception/appointments/<int:pk>/move/", views.reception_appointment_move, name="reception_appointment_move"),
    path("reception/slots/<int:pk>/block/", views.reception_slot_block, name="reception_slot_block"),
    path("reception/slots/<int:pk>/unblock/", views.reception_slot_unblock, name="reception_slot_unblock"),
    path("reception/hours/", views.reception_hours, name="reception_hours"),
    path(
        "reception/hours/<int:practitioner_id>/",
        views.reception_practitioner_hours,
        name="reception_practitioner_hours",
    ),
    path(
        "reception/hours/<int:practitioner_id>/time-off/",
        views.reception_time_off_add,
        name="reception_time_off_add",
    ),
    path("reception/time-off/<int:pk>/delete/", views.reception_time_off_delete, name="reception_time_off_delete"),
    path("reception/search/", views.reception_search, name="reception_search"),
    path("reception/export/", views.reception_export, name="reception_export"),
    path("reception/patients/<int:pk>/", views.reception_patient_data, name="reception_patient_data"),
    path(
        "reception/patients/<int:pk>/data.json", views.reception_patient_data_json, name="reception_patient_data_json"
    ),
    path("reception/patients/<int:pk>/erase/", views.reception_patient_erase, name="reception_patient_erase"),
    path("reception/privacy-notices/<str:version>/", views.reception_privacy_notice, name="reception_privacy_notice"),
    path("reception/callbacks/", views.reception_callbacks, name="reception_callbacks"),
    path("reception/callbacks/<int:pk>/done/", views.reception_callback_done, name="reception_callback_done"),
    path("reception/callbacks/<int:pk>/reopen/", views.reception_callback_reopen, name="reception_callback_reopen"),
    path("reception/waiting-list/", views.reception_waiting_list, name="reception_waiting_list"),
    path("reception/waiting-list/add/", views.reception_waiting_list_add, name="reception_waiting_list_add"),
    path(
        "reception/waiting-list/<int:pk>/remove/",
        views.reception_waiting_list_remove,
        name="reception_waiting_list_remove",
    ),
    path(
        "reception/waiting-list/<int:pk>/offer/",
        views.reception_waiting_list_offer,
        name="reception_waiting_list_offer",
    ),
    path("insights/", views.insights, name="insights"),
    path("insights/refresh/", views.insights_refresh_now, name="insights_refresh"),
    path("insights/<slug:table>.csv", views.insights_csv, name="insights_csv"),
    path("me/", views.practitioner_day, name="practitioner_day"),
    path("me/upcoming/", views.practitioner_upcoming, name="practitioner_upcoming"),
    path("me/appointments/<int:pk>/", views.practitioner_appointment, name="practitioner_appointment"),
    path("me/calendar/", views.practitioner_calendar, name="practitioner_calendar"),
    path("me/calendar/reset/", views.practitioner_calendar_reset, name="practitioner_calendar_reset"),
    # No sign-in: a phone's calendar app cannot sign in. The unguessable token is the key (redacted in logs).
    path("calendar-feed/<str:token>.ics", views.practitioner_calendar_feed, name="practitioner_calendar_feed"),
]
