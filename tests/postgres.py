"""PostgreSQL for tests: $SHADOW_TEST_POSTGRES if set, else a throwaway cluster of our own.

The cluster is made with initdb and started with pg_ctl from /usr/lib/postgresql/*/bin, in a
temporary folder, on a free loopback port, and removed at the end. initdb refuses to run as root,
so under root (CI) the server runs as the ``postgres`` user in a folder that user owns. When
PostgreSQL is missing the tests fail: they never skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = "SHADOW_TEST_POSTGRES"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if not found:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            f"apt-get install postgresql, or point {ENV} at a server"
        )
    return Path(found[-1]).parent


def _major(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
    """Run as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_owner(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        pytest.fail(f"PostgreSQL {what} failed: {' | '.join(tail)}")


def _make_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="shadow-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs a 'postgres' user to own the test cluster")
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A SQLAlchemy URL of a PostgreSQL server for the duration of the block."""
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    bin_dir = _bin_dir()
    folder = _make_folder()
    data = folder / "data"
    port = _free_port()
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        _run([*initdb, "-E", "UTF8", "--no-sync"], "initdb")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log")]
        _run([*pg_ctl, "-w", "-t", "60", "-o", options, "start"], "start")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([*pg_ctl, "-m", "fast", "-w", "stop"], "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
