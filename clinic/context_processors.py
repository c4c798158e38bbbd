from django.conf import settings


def clinic(request):
    return {
        "clinic": {
            "name": settings.CLINIC_NAME,
            "address": settings.CLINIC_ADDRESS,
            "phone": settings.CLINIC_PHONE,
            "email": settings.CLINIC_EMAIL,
            "opening_hours": settings.CLINIC_OPENING_HOURS,
            "directions": settings.CLINIC_DIRECTIONS,
            "emergency_guidance": settings.CLINIC_EMERGENCY_GUIDANCE,
            "consultation_minutes": settings.CONSULTATION_MINUTES,
            "manage_cutoff_hours": int(settings.MANAGE_CUTOFF.total_seconds() // 3600),
        },
        "site_url": settings.SITE_URL,
    }
