from pathlib import Path

from django.core.management import BaseCommand, CommandError
from django.utils import timezone

from articles.importing import LAUNCH_CONTENT_DIR, ArticleFileError, article_import, parse_article_file


class Command(BaseCommand):
    help = (
        "Import articles from Markdown files with front matter (title, slug, summary; optional topics, status, "
        "author, reviewer with reviewed_on). "
        "Idempotent by slug: a re-import updates the article, never duplicates it, and saves nothing when "
        "nothing changed. A bad file is reported with its line and the other files still import."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="Markdown files or folders of them.")
        parser.add_argument("--publish", action="store_true", help="Publish new articles and drafts now.")
        parser.add_argument(
            "--launch-content",
            action="store_true",
            help=(
                "Import the clinic's launch articles (articles/content/*.md), published. Articles already there "
                "are left as they are, so edits made in the admin survive the next `make run`."
            ),
        )

    def handle(self, *args, paths, publish, launch_content, **options):
        files = self._article_files(paths)
        if launch_content:
            files += sorted(LAUNCH_CONTENT_DIR.glob("*.md"))
            publish = True
        if not files:
            raise CommandError("Name at least one Markdown file or folder, or use --launch-content.")

        now = timezone.now()
        counts = {"created": 0, "updated": 0, "unchanged": 0, "kept": 0, "failed": 0}
        for path in files:
            try:
                source = parse_article_file(path)
            except ArticleFileError as error:
                counts["failed"] += 1
                self.stderr.write(self.style.ERROR(f"failed     {error}"))
                continue
            except OSError as error:
                counts["failed"] += 1
                self.stderr.write(self.style.ERROR(f"failed     {path}: cannot be read ({error.strerror})"))
                continue
            outcome = article_import(source=source, publish=publish, now=now, keep_existing=launch_content)
            self.stdout.write(f"{outcome:<10} {source.slug} ({path})")
            counts[outcome] += 1

        summary = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count or outcome != "kept")
        self.stdout.write(f"Articles: {summary}.")
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} file(s) could not be imported; the others were.")

    def _article_files(self, paths: list[Path]) -> list[Path]:
        files = []
        for path in paths:
            if path.is_dir():
                files += sorted(path.glob("*.md"))
            else:
                files.append(path)
        return files
