"""The site's settings plus one extra page, /bench/trivial, for `make bench` (bench/run.py) only.

The trivial view is the ceiling the other pages are compared with: a Django view behind the same
middleware stack (sessions, CSRF, auth, messages, the 503 handling) that does no work of its own.
It lives in this settings module's URLconf, so the production URLconf never has it.
"""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
