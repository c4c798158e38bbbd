"""Markdown to safe HTML for article bodies, done once at save time.

Editors write Markdown, which may contain raw HTML. The rendered HTML goes through nh3 with an
explicit allow-list, so a `<script>`, an `onerror=` or a `javascript:` link never reaches a page.
"""

import html
import math
import re
from dataclasses import dataclass

import markdown
import nh3

# Average adult silent reading speed for non-fiction; a round, slightly cautious figure.
WORDS_PER_MINUTE = 200

ALLOWED_TAGS = {
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "br",
    "hr",
    "blockquote",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "sub",
    "sup",
    "abbr",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "caption",
}
ALLOWED_ATTRIBUTES = {
    # Heading ids come from the toc extension: the table of contents links to them.
    **{f"h{level}": {"id"} for level in range(1, 7)},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
}
# Relative links (to other pages of the site) are kept; any other scheme, javascript: above all, is dropped.
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel"}


@dataclass(frozen=True)
class RenderedBody:
    html: str
    toc: list[dict]
    reading_minutes: int


def _toc_entries(tokens: list[dict], max_level: int = 3) -> list[dict]:
    """The toc extension's nested tokens, cut to h2/h3, with names as plain text (they arrive HTML-escaped)."""
    entries = []
    for token in tokens:
        if token["level"] > max_level:
            continue
        entries.append(
            {
                "id": token["id"],
                "name": html.unescape(re.sub(r"<[^>]+>", "", token["name"])),
                "level": token["level"],
                "children": _toc_entries(token["children"], max_level),
            }
        )
    return entries


def _flatten_to_h2(tokens: list[dict]) -> list[dict]:
    # A body that starts its sections at h1 still gets h2-level entries in the table of contents.
    if tokens and all(token["level"] == 1 for token in tokens):
        return [child for token in tokens for child in token["children"]]
    return tokens


def sanitise_html(unsafe_html: str) -> str:
    return nh3.clean(
        unsafe_html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer",
    )


def render_markdown(source: str) -> RenderedBody:
    converter = markdown.Markdown(
        extensions=["tables", "sane_lists", "toc"],
        extension_configs={"toc": {"permalink": False}},
        output_format="html",
    )
    body_html = sanitise_html(converter.convert(source))
    toc = _toc_entries(_flatten_to_h2(converter.toc_tokens))
    words = len(re.findall(r"\w+", re.sub(r"<[^>]+>", " ", body_html)))
    return RenderedBody(html=body_html, toc=toc, reading_minutes=max(1, math.ceil(words / WORDS_PER_MINUTE)))


def split_after_introduction(body_html: str) -> tuple[str, str]:
    """The body cut before its first h2: the introduction, then the rest (empty when there is no h2)."""
    position = body_html.find("<h2")
    if position <= 0:
        return body_html, ""
    return body_html[:position], body_html[position:]


# A section whose h2 reads like one of these holds questions (its h3s) and their answers.
FAQ_HEADING = re.compile(r"^\s*(frequently asked questions|faqs?)\b", re.IGNORECASE)
# The HTML Google reads in an FAQ answer; anything else (a table) keeps only its text.
FAQ_ANSWER_TAGS = {
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "br",
    "ol",
    "ul",
    "li",
    "a",
    "p",
    "div",
    "b",
    "strong",
    "i",
    "em",
}


def _plain_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def _table_as_paragraphs(table: re.Match) -> str:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), flags=re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S) for row in rows]
    return "".join(f"<p>{' – '.join(cell.strip() for cell in row)}</p>" for row in cells if row)


def _faq_answer_html(fragment: str) -> str:
    # A table row becomes a paragraph of its cells, so that its words do not run together once the table goes.
    fragment = re.sub(r"<table[^>]*>.*?</table>", _table_as_paragraphs, fragment, flags=re.S)
    cleaned = nh3.clean(fragment, tags=FAQ_ANSWER_TAGS, attributes={"a": {"href"}}, link_rel=None)
    return re.sub(r"\n\s*\n", "\n", cleaned).strip()


def faq_entries(body_html: str) -> list[tuple[str, str]]:
    """The questions and answers of the body's FAQ section, as (question text, answer HTML).

    1. The FAQ section is the first h2 that reads "Frequently asked questions" (or "FAQ"), up to the next h2.
    2. In it, each h3 is a question, and everything up to the next h3 is its answer.
    3. A question without an answer is left out. No such section: an empty list.
    """
    sections = re.split(r"(<h2[^>]*>.*?</h2>)", body_html, flags=re.S)
    for index in range(1, len(sections), 2):
        if FAQ_HEADING.match(_plain_text(sections[index])):
            section = sections[index + 1]
            break
    else:
        return []
    parts = re.split(r"<h3[^>]*>(.*?)</h3>", section, flags=re.S)
    entries = []
    for question, answer in zip(parts[1::2], parts[2::2], strict=True):
        question, answer = _plain_text(question), _faq_answer_html(answer)
        if question and _plain_text(answer):
            entries.append((question, answer))
    return entries
