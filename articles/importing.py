"""Articles from Markdown files with a small front-matter block, as the clinic supplies them.

    ---
    title: How your hips can cause your lower back pain
    slug: how-your-hips-can-cause-your-lower-back-pain
    summary: One or two sentences for lists and link previews.
    topics: Hip, Lower back          (optional, comma-separated; missing topics are created)
    status: published                (optional: draft or published)
    author: Dr Priya Patel           (optional: a practitioner, by name as on the team page)
    reviewer: Dr Chidi Okafor        (optional, with reviewed_on: who checked the medical content)
    reviewed_on: 2026-11-20          (optional, with reviewer: the day of that check)
    ---
    The body, in Markdown.

The parser is deliberately tiny (one `key: value` per line) so that every error can name its line.
An author, reviewer or review date left out of a file leaves the article's own (set in the admin) as it is.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils.text import slugify

from articles.models import Article, Topic
from bookings.models import Practitioner

LAUNCH_CONTENT_DIR = Path(__file__).resolve().parent / "content"
FENCE = "---"
REQUIRED_KEYS = ("title", "slug", "summary")
OPTIONAL_KEYS = ("topics", "status", "author", "reviewer", "reviewed_on")
MAX_LENGTHS = {"title": 200, "slug": 200, "summary": 500}

Outcome = Literal["created", "updated", "unchanged", "kept"]


class ArticleFileError(Exception):
    """A file that cannot be imported, with the line to look at."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ArticleSource:
    path: Path
    title: str
    slug: str
    summary: str
    body_markdown: str
    topic_names: list[str] = field(default_factory=list)
    status: str | None = None
    author: Practitioner | None = None
    reviewer: Practitioner | None = None
    reviewed_on: date | None = None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _practitioner_named(name: str, path: Path, line: int) -> Practitioner:
    """The practitioner called NAME, with or without the title ("Dr Priya Patel" or "Priya Patel")."""
    matches = [
        practitioner
        for practitioner in Practitioner.objects.all()
        if name.casefold() in (practitioner.full_name.casefold(), practitioner.display_name.casefold())
    ]
    if not matches:
        raise ArticleFileError(path, line, f"no practitioner is called {name!r} (use the name on the team page)")
    if len(matches) > 1:
        raise ArticleFileError(path, line, f"{len(matches)} practitioners are called {name!r}: add the title")
    return matches[0]


def _review(values: dict[str, str], value_lines: dict[str, int], path: Path) -> tuple[Practitioner | None, date | None]:
    """The reviewer and the review date: both or neither, since a review is a person on a day."""
    if "reviewer" in values and "reviewed_on" not in values:
        raise ArticleFileError(path, value_lines["reviewer"], "a reviewer needs 'reviewed_on: YYYY-MM-DD' too")
    if "reviewed_on" in values and "reviewer" not in values:
        raise ArticleFileError(path, value_lines["reviewed_on"], "'reviewed_on' needs a 'reviewer' too")
    if "reviewer" not in values:
        return None, None
    try:
        reviewed_on = date.fromisoformat(values["reviewed_on"])
    except ValueError:
        message = f"reviewed_on must be a date like 2026-11-20, not {values['reviewed_on']!r}"
        raise ArticleFileError(path, value_lines["reviewed_on"], message) from None
    return _practitioner_named(values["reviewer"], path, value_lines["reviewer"]), reviewed_on


def parse_article_file(path: Path) -> ArticleSource:
    """Read one file, or raise ArticleFileError naming the line at fault."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ArticleFileError(path, line, "is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != FENCE:
        raise ArticleFileError(path, 1, f"expected '{FENCE}' to open the front matter")

    values: dict[str, str] = {}
    value_lines: dict[str, int] = {}
    closing_index = None
    for index, line in enumerate(lines[1:], start=1):
        number = index + 1
        stripped = line.strip()
        if stripped == FENCE:
            closing_index = index
            break
        if not stripped or stripped.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if not colon or not key:
            hint = f" (is the closing '{FENCE}' missing?)" if all(key in values for key in REQUIRED_KEYS) else ""
            raise ArticleFileError(path, number, f"expected 'key: value', found {stripped!r}{hint}")
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            allowed = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
            raise ArticleFileError(path, number, f"unknown front-matter key {key!r} (allowed: {allowed})")
        if key in values:
            raise ArticleFileError(path, number, f"{key!r} is given twice (first on line {value_lines[key]})")
        values[key] = _unquote(value.strip())
        value_lines[key] = number
    if closing_index is None:
        raise ArticleFileError(path, 1, f"the front matter opened here is never closed with '{FENCE}'")

    for key in REQUIRED_KEYS:
        if not values.get(key):
            line = value_lines.get(key, closing_index + 1)
            raise ArticleFileError(path, line, f"the front matter needs a non-empty {key!r}")
    for key, limit in MAX_LENGTHS.items():
        if len(values[key]) > limit:
            message = f"{key!r} is {len(values[key])} characters long (at most {limit})"
            raise ArticleFileError(path, value_lines[key], message)
    try:
        validate_slug(values["slug"])
    except ValidationError:
        raise ArticleFileError(
            path, value_lines["slug"], "the slug may only hold letters, numbers, hyphens and underscores"
        ) from None
    status = values.get("status")
    if status is not None and status not in Article.Status.values:
        raise ArticleFileError(path, value_lines["status"], f"status must be draft or published, not {status!r}")

    body = "\n".join(lines[closing_index + 1 :]).strip()
    if not body:
        raise ArticleFileError(path, closing_index + 1, "the article has no body after the front matter")
    topic_names = [name.strip() for name in values.get("topics", "").split(",") if name.strip()]
    for key in ("author", "reviewer", "reviewed_on"):
        if key in values and not values[key]:
            raise ArticleFileError(path, value_lines[key], f"{key!r} is empty (leave the line out instead)")
    author = _practitioner_named(values["author"], path, value_lines["author"]) if "author" in values else None
    reviewer, reviewed_on = _review(values, value_lines, path)
    return ArticleSource(
        path=path,
        title=values["title"],
        slug=values["slug"],
        summary=values["summary"],
        body_markdown=body + "\n",
        topic_names=topic_names,
        status=status,
        author=author,
        reviewer=reviewer,
        reviewed_on=reviewed_on,
    )


def _topics_named(names: list[str]) -> list[Topic]:
    topics = []
    for name in names:
        topic, _ = Topic.objects.get_or_create(slug=slugify(name), defaults={"name": name})
        topics.append(topic)
    return topics


def article_import(*, source: ArticleSource, publish: bool, now: datetime, keep_existing: bool = False) -> Outcome:
    """Create or update the article with the source's slug; save nothing when nothing changed.

    1. A new article is published at `now` when `publish` or its front matter says so, else a draft.
    2. An existing one takes the file's text and topics, and the author and review the file names (one
       it leaves out keeps the article's own). Its status changes only when the front matter names one,
       or `publish` finds a draft; a publication date is never moved, so a re-import does not bump the
       article to the top of the list.
    3. With `keep_existing` an existing article is left exactly as it is (launch content: editors' fixes win).
    """
    with transaction.atomic():
        article = Article.objects.select_for_update().filter(slug=source.slug).first()
        if article is not None and keep_existing:
            return "kept"
        topics = _topics_named(source.topic_names)
        wanted_status = source.status or (Article.Status.PUBLISHED if publish else None)

        if article is None:
            article = Article(slug=source.slug, status=wanted_status or Article.Status.DRAFT)
            if article.status == Article.Status.PUBLISHED:
                article.published_at = now
            outcome: Outcome = "created"
        else:
            outcome = "unchanged"

        new_values = {"title": source.title, "summary": source.summary, "body_markdown": source.body_markdown}
        if source.author is not None:
            new_values["author_id"] = source.author.pk
        if source.reviewer is not None:
            new_values |= {"reviewer_id": source.reviewer.pk, "reviewed_on": source.reviewed_on}
        if wanted_status and outcome == "unchanged":
            new_values["status"] = wanted_status
        for name, value in new_values.items():
            if getattr(article, name) != value:
                setattr(article, name, value)
                outcome = "updated" if outcome == "unchanged" else outcome
        if article.status == Article.Status.PUBLISHED and article.published_at is None:
            article.published_at = now
        if outcome != "unchanged":
            article.save()

        if {topic.pk for topic in topics} != set(article.topics.values_list("pk", flat=True)):
            article.topics.set(topics)
            if outcome == "unchanged":
                article.save(update_fields=["updated_at"])
                outcome = "updated"
    return outcome
