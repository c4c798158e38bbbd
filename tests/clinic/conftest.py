"""Helpers for tests that start real processes: embedded PostgreSQL servers in a tmp folder, app servers.

Every server a test starts lives in its own data folder under pytest's tmp_path and is stopped by a
finalizer, so the shared development server in var/pgdata is never touched.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from clinic.embedded_db import EmbeddedServer

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
MANAGE = str(BASE_DIR / "manage.py")


def app_env(pgdata: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a development process on the embedded database in PGDATA.

    Without this run's own settings, and without DJANGO_ALLOW_ASYNC_UNSAFE, which only the browser tests need.
    """
    leave_out = {"DATABASE_URL", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {key: value for key, value in os.environ.items() if key not in leave_out}
    env["PYTHONUNBUFFERED"] = "1"
    if pgdata is not None:
        env["EMBEDDED_PGDATA"] = str(pgdata)
    env.update(extra)
    return env


def postmaster_pids(pgdata: Path) -> list[int]:
    """Live postmasters (not zombies) serving PGDATA, found from their command lines."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state in {"Z", "X"} or not argv[0].endswith(b"/postgres"):
            continue
        if b"-D" in argv and argv[argv.index(b"-D") + 1] == str(pgdata).encode():
            pids.append(int(proc.name))
    return pids


def children_of(pid: int) -> list[int]:
    children = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(proc.name))
    return children


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def kill_postgres_of(pgdata: Path) -> None:
    """Last resort after a failed stop: kill the postmasters of PGDATA (and their children) that a test started."""
    for pid in postmaster_pids(pgdata):
        for victim in [*children_of(pid), pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)


def stop_embedded(pgdata: Path, run_as: str | None = None) -> None:
    if run_as:
        command = ["runuser", "-u", run_as, "--", PYTHON, "-m", "clinic.embedded_db", "stop", "--pgdata", str(pgdata)]
        subprocess.run(command, cwd=BASE_DIR, env=app_env(), capture_output=True, timeout=60, check=False)
    else:
        # The folder is thrown away next: an immediate shutdown (SIGQUIT) skips the shutdown checkpoint,
        # which is what makes a clean stop slow on a busy disk.
        for pid in postmaster_pids(pgdata):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while postmaster_pids(pgdata) and time.monotonic() < deadline:
            time.sleep(0.02)
    kill_postgres_of(pgdata)
    remove_socket_dir(pgdata, uid=pwd.getpwnam(run_as).pw_uid if run_as else os.geteuid())


def remove_socket_dir(pgdata: Path, uid: int) -> None:
    """The helper leaves the (empty) socket folder of a stopped server behind, as a service would; tests tidy up."""
    ours = EmbeddedServer.for_pgdata(pgdata).socket_dir
    with contextlib.suppress(OSError):
        ours.with_name(ours.name.replace(f"clinic-pg-{os.geteuid()}-", f"clinic-pg-{uid}-")).rmdir()


@contextlib.contextmanager
def server_folder():
    """A fresh folder for embedded servers, removed afterwards.

    Not pytest's tmp_path: as root the server runs as the service user, who must be able to walk
    down to its data folder, and every pytest session started as root (someone else's, in parallel)
    resets /tmp/pytest-of-root to mode 0700.
    """
    path = Path(tempfile.mkdtemp(prefix="clinic-pgtest-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_tmp():
    with server_folder() as path:
        yield path


@pytest.fixture(scope="module")
def reused_pgdata():
    """One cluster for the tests of a module that are not about creating one: initdb is the slow part of a start."""
    with server_folder() as folder:
        path = folder / "pgdata"
        yield path
        stop_embedded(path)


@pytest.fixture
def pgdata(server_tmp):
    """A data folder of our own for an embedded server; whatever runs in it is stopped afterwards."""
    path = server_tmp / "pgdata"
    yield path
    stop_embedded(path)


def run_helper(action: str, pgdata: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "clinic.embedded_db", action, "--pgdata", str(pgdata)],
        cwd=BASE_DIR,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, MANAGE, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HttpAnswer:
    status: int
    headers: dict
    body: str


def http_get(url: str, timeout: float = 10) -> HttpAnswer:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback server
            return HttpAnswer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, dict(error.headers), error.read().decode())


def wait_for_status(url: str, expected: int, timeout: float, process: subprocess.Popen | None = None) -> HttpAnswer:
    """Poll URL until it answers EXPECTED; fail with the last answer (or the server's exit) after TIMEOUT."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before {url} answered {expected}")
        try:
            answer = http_get(url, timeout=5)
        except OSError as error:
            last = error
        else:
            if answer.status == expected:
                return answer
            last = answer
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {expected} within {timeout} s; last: {last}")


class AppServer:
    """A web server subprocess in its own process group, so a signal can reach all of it, as Ctrl-C would."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, port: int):
        self.command, self.env, self.log_path, self.port = command, env, log_path, port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "AppServer":
        log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            self.command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send SIGNUM to the whole process group; SIGKILL it if it lingers. Returns the exit status."""
        if self.process is None:
            return 0
        self.signal_group(signum)
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            returncode = self.process.wait(timeout=10)
        # The autoreloader's child may outlive its parent for a moment: make sure the group is gone.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(self.process.pid):
            time.sleep(0.05)
        self.signal_group(signal.SIGKILL)
        self._log.close()
        self.process = None
        return returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _group_alive(pgid: int) -> bool:
    """True while a process of the group runs (zombies do not count: nobody may ever reap them here)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
                    return True
    return False


@pytest.fixture
def app_servers():
    """Starts app servers on free ports; stops any still running at the end."""
    started: list[AppServer] = []

    def start(command: Callable[[int], list[str]], env: dict[str, str], log_path: Path) -> AppServer:
        """COMMAND builds the command line from the free port chosen for it."""
        port = free_port()
        server = AppServer(command(port), env, log_path, port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGKILL, timeout=5)


def runserver_command(port: int, *extra: str) -> list[str]:
    return [PYTHON, MANAGE, "runserver", f"127.0.0.1:{port}", *extra]


def embedded(pgdata: Path) -> EmbeddedServer:
    return EmbeddedServer.for_pgdata(pgdata)
