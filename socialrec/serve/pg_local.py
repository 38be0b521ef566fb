"""A throwaway PostgreSQL server on this machine: ``initdb`` and ``pg_ctl`` in a temporary
directory, listening on a free loopback port, for the tests, the benchmarks and trying
``socialrec serve --store`` without a database server of one's own.

The server binaries are Debian's (``apt-get install postgresql``: /usr/lib/postgresql/<version>/bin)
or the first ``initdb`` on the PATH. PostgreSQL refuses to run as root: run as root, the server
runs as the ``postgres`` user the Debian package creates (through ``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "socialrec"


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (the newest Debian version first), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """``with LocalPostgres() as pg: url = pg.create_database("db")``. Raises RuntimeError saying
    why when the server cannot be set up (binaries missing, no unprivileged user, start failed).

    fsync: the server's fsync setting (on: a committed transaction is on disk, as in production)."""

    def __init__(self, *, bin_dir: Path | None = None, fsync: bool = True) -> None:
        self.bin_dir = bin_dir
        self.fsync = fsync
        self.directory: Path | None = None
        self.port = 0

    def _run(self, args: list[str], timeout: float = 60.0) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]  # type: ignore[operator]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")

    def start(self) -> "LocalPostgres":
        self.bin_dir = self.bin_dir or find_bin_dir()
        if self.bin_dir is None or not (self.bin_dir / "pg_ctl").exists():
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed; "
                               "install them with: apt-get install postgresql")
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, and there is no 'postgres' user to run the server as "
                                   "(PostgreSQL refuses root; apt-get install postgresql creates the user)") from None
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root without runuser: cannot start PostgreSQL as the postgres user")
        self.directory = Path(tempfile.mkdtemp(prefix="socialrec-pg-"))
        if owner is not None:
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        data = self.directory / "data"
        self.port = _free_port()
        try:
            self._run(["initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale",
                       "--no-sync"], timeout=120)
            options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                       f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=60")
            self._run(["pg_ctl", "-D", str(data), "-o", options, "-l", str(self.directory / "server.log"), "-w",
                       "-t", "60", "start"], timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def data_dir(self) -> Path:
        if self.directory is None:
            raise RuntimeError("the server is not started")
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediately: nothing of it is kept) and delete its directory."""
        if self.directory is None:
            return
        if (self.directory / "data" / "postmaster.pid").exists():
            try:
                self._run(["pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop"], timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
