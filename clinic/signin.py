"""Staff sign-in (our form and the admin's): an overlong username is a form error, never a database error.

django-axes records every failed sign-in's username in `AccessAttempt.username`, a varchar(255): a 10,000-character
username used to end in a DataError (500) from that record.
"""

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator

# The column django-axes writes the attempted username to.
AXES_USERNAME_COLUMN_LENGTH = 255


def axes_username(request, credentials=None) -> str | None:
    """The username django-axes records and counts (AXES_USERNAME_CALLABLE), cut to fit its column.

    The forms below refuse an overlong username before any sign-in is tried; this keeps any other way in
    (a future form, a direct `authenticate()` call) from reaching the database with one.
    """
    field = settings.AXES_USERNAME_FORM_FIELD
    username = credentials.get(field) if credentials else getattr(request, "POST", {}).get(field)
    return username[:AXES_USERNAME_COLUMN_LENGTH] if isinstance(username, str) else username


class _UsernameLengthMixin:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # AuthenticationForm sets max_length after the field is built, so it adds no validator: add it here.
        limit = get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD).max_length
        self.fields["username"].validators.append(
            MaxLengthValidator(limit, message=f"A username has at most {limit} characters.")
        )


class StaffAuthenticationForm(_UsernameLengthMixin, AuthenticationForm):
    pass


class StaffAdminAuthenticationForm(_UsernameLengthMixin, AdminAuthenticationForm):
    pass
