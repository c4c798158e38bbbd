"""The site's settings plus two extra pages, /bench/trivial and /bench/signed-in, for `make bench` (bench/run.py) only.

The trivial view is the ceiling the other pages are compared with: a Django view behind the same
middleware stack (sessions, CSRF, auth, messages, the 503 handling) that does no work of its own.
/bench/signed-in is the same behind reception's checks: the floor under every staff page.
They live in this settings module's URLconf, so the production URLconf never has them.
"""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
