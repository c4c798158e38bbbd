import getpass

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError
from django.utils import timezone

from clinic.models import TwoFactorEvent
from clinic.two_factor import two_factor_reset


class Command(BaseCommand):
    help = "Remove a staff member's authenticator app and backup codes (a lost phone); they enrol again at sign-in."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        try:
            subject = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user is called {username!r}.") from None
        two_factor_reset(
            subject=subject,
            actor=None,
            kind=TwoFactorEvent.Kind.RESET_BY_COMMAND,
            now=timezone.now(),
            note=f"manage.py reset_2fa, run as {getpass.getuser()}"[:200],
        )
        self.stdout.write(f"Reset the second factor of {username}: they set up an app at their next sign-in.")
