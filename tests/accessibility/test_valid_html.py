"""Every page, public and staff, is valid HTML by the Nu Html Checker (the W3C validator), run here with Java.

`make test` installs the checker (bin/install-test-tools). All pages go to one java run (the JVM starts slowly).
Warnings are allowed; errors are not.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

pytestmark = pytest.mark.django_db

VNU_JAR = Path(__file__).resolve().parents[2] / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def nu_html_checker() -> list[str]:
    java = shutil.which("java")
    if java is None or not VNU_JAR.exists():
        message = f"The Nu Html Checker cannot run (java: {java}, vnu.jar: {VNU_JAR.exists()}): run make test-tools"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return [java, "-jar", str(VNU_JAR)]


def test_every_page_is_valid_html(every_page, tmp_path, capsys):
    command = nu_html_checker()
    files = {}
    for name, page in every_page.items():
        path = tmp_path / (re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".html")
        path.write_text(page.html)
        files[path.resolve().as_uri().replace("file:///", "file:/")] = name
    result = subprocess.run(
        [*command, "--format", "json", "--also-check-css", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    messages = json.loads(result.stderr)["messages"]
    errors: dict[str, list[str]] = {}
    for message in messages:
        if message["type"] == "error" or message.get("subType") == "fatal":
            page = files.get(message.get("url"), message.get("url"))
            errors.setdefault(page, []).append(f"line {message.get('lastLine')}: {message['message']}")
    warnings = sum(1 for message in messages if message["type"] == "info")
    with capsys.disabled():
        print(f"\nNu Html Checker: {len(files)} pages, {sum(map(len, errors.values()))} errors, {warnings} warnings")
    assert errors == {}
