"""The header's, footer's and assets' URLs, worked out once per process (clinic.context_processors.site_urls)."""

import re

from django.templatetags.static import static
from django.urls import reverse, set_script_prefix

from clinic.context_processors import clinic


def test_every_page_links_its_header_and_footer_where_reverse_and_static_say(client, rita):
    expected_links = [reverse(name) for name in ("home", "articles:list", "team", "contact", "login", "booking_start")]
    expected_links += [reverse("privacy"), reverse("accessibility")]
    assets = [
        static(path)
        for path in (
            "img/favicon.svg",
            "vendor/bootstrap/css/bootstrap.min.css",
            "css/site.css",
            "vendor/bootstrap/js/bootstrap.bundle.min.js",
            "vendor/htmx/htmx.min.js",
            "js/site.js",
        )
    ]
    page = client.get("/").content.decode()
    for url in expected_links + assets:
        assert f'"{url}"' in page, url
    assert not re.search(r'(href|src|action)=""', page)

    client.force_login(rita)
    signed_in = client.get(reverse("contact")).content.decode()
    for url in (reverse("staff_home"), reverse("logout")):
        assert f'"{url}"' in signed_in, url
    assert not re.search(r'(href|src|action)=""', signed_in)


def test_the_urls_follow_the_script_prefix_the_site_is_served_under(rf):
    # Served under a path (SCRIPT_NAME, which the server sets as each request's script prefix): each prefix
    # gets the URLs reverse() gives under it, not the first one the process saw.
    assert clinic(rf.get("/"))["site_urls"]["articles"] == reverse("articles:list") == "/articles/"
    set_script_prefix("/clinic/")
    try:
        assert clinic(rf.get("/"))["site_urls"]["articles"] == reverse("articles:list") == "/clinic/articles/"
    finally:
        set_script_prefix("/")
    assert clinic(rf.get("/"))["site_urls"]["articles"] == "/articles/"
