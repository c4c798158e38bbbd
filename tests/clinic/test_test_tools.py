"""`make test` installs what its tests need (bin/install-test-tools); `.ci/run` only calls `make test`.

The script runs here in a copy of the checkout's layout, with apt-get, npm and id replaced by recorders, so that
nothing is installed and the root and non-root paths can both be taken.
"""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
SCRIPT = BASE_DIR / "bin" / "install-test-tools"
VNU_VERSION = "26.9.27"
TOOLS_THE_SCRIPT_USES = ["bash", "dirname", "sed", "grep", "head", "cut", "cat", "mkdir", "touch"]

# The script's runs below fake every install but Chromium's, which it looks for at its fixed path.
needs_chromium = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's Chromium present")


def _recorder(folder: Path, name: str, body: str = "") -> None:
    path = folder / name
    path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$CALLS"\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path):
    """A folder with the script in bin/ and a PATH of only the tools it uses, the recorders and (maybe) java."""
    (tmp_path / "bin").mkdir()
    shutil.copy(SCRIPT, tmp_path / "bin" / "install-test-tools")
    tools = tmp_path / "path"
    tools.mkdir()
    for name in TOOLS_THE_SCRIPT_USES:
        (tools / name).symlink_to(shutil.which(name))
    _recorder(tools, "apt-get")
    # npm "installs" the pinned version, as the real one would.
    _recorder(
        tools,
        "npm",
        "mkdir -p node_modules/vnu-jar/build/dist && touch node_modules/vnu-jar/build/dist/vnu.jar\n"
        f'echo \'{{"name": "vnu-jar", "version": "{VNU_VERSION}"}}\' > node_modules/vnu-jar/package.json',
    )
    return tmp_path


def run_script(checkout: Path, *, uid: int, java: bool) -> tuple[subprocess.CompletedProcess, list[str]]:
    tools = checkout / "path"
    _recorder(tools, "id", f"echo {uid}")
    if java:
        _recorder(tools, "java")
    elif (tools / "java").exists():
        (tools / "java").unlink()
    calls = checkout / "calls.txt"
    calls.write_text("")
    result = subprocess.run(
        [str(checkout / "bin" / "install-test-tools")],
        env={"PATH": str(tools), "CALLS": str(calls), "HOME": str(checkout)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, [line for line in calls.read_text().splitlines() if not line.startswith("id ")]


@needs_chromium
def test_it_installs_the_pinned_html_checker_once_and_then_only_checks(checkout):
    result, calls = run_script(checkout, uid=0, java=True)
    assert result.returncode == 0, result.stderr
    assert calls == [
        f"npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --silent vnu-jar@{VNU_VERSION}"
    ]

    again, calls = run_script(checkout, uid=0, java=True)
    assert again.returncode == 0, again.stderr
    assert calls == []


@needs_chromium
def test_it_installs_java_through_apt_when_it_runs_as_root(checkout):
    result, calls = run_script(checkout, uid=0, java=False)
    assert result.returncode == 0, result.stderr
    assert calls[:2] == [
        "apt-get update -qq",
        "apt-get install -y --no-install-recommends default-jre-headless -qq",
    ]


@needs_chromium
def test_without_root_it_stops_with_one_line_naming_the_command(checkout):
    result, calls = run_script(checkout, uid=1000, java=False)
    assert result.returncode != 0
    assert calls == []
    assert result.stderr.count("\n") == 1
    assert "apt-get install -y --no-install-recommends default-jre-headless" in result.stderr


def test_ci_runs_only_make_test_and_installs_nothing_itself():
    ci = (BASE_DIR / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert "make test" in commands
    assert not [line for line in commands if any(word in line for word in ("apt-get", "pip ", "npm "))]
    assert "CI=true" in ci


def test_make_test_runs_the_installer_before_pytest():
    plan = subprocess.run(
        ["make", "-n", "test"], cwd=BASE_DIR, capture_output=True, text=True, check=True, env=os.environ
    ).stdout.splitlines()
    assert "bin/install-test-tools" in plan
    assert plan.index("bin/install-test-tools") < plan.index(".venv/bin/pytest")
