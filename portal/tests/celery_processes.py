"""Real Celery processes for the tests that are about the worker (never eager mode).

A process started here runs against the test database and the run's Redis. Under pytest-xdist it
inherits PYTEST_XDIST_WORKER, so it uses this test worker's Redis key prefix (settings.py) and
never takes a task queued by another test worker. The clock of a test starts once the worker is
ready: starting Python, Django and Celery on a loaded CI machine can take many seconds, and
that start-up is not what the tests measure."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


def test_database_url() -> str:
    """The URL of the database this test runs against, for a subprocess."""
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test, despite its name


def process_env(tmp_path: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a worker or beat: this test's database and Redis, files in tmp_path."""
    env = {**os.environ, "DATABASE_URL": test_database_url(), "REDIS_URL": settings.REDIS_URL}
    if tmp_path is not None:
        env["MALLRUN_VAR_DIR"] = str(tmp_path)
    return env | extra


def start(kind: str, *, env: dict[str, str], log: Path, queue: str | None = None) -> subprocess.Popen:
    """Starts `celery worker` (solo pool, no gossip, mingle or heartbeat) or `celery beat`,
    appending its output to `log`."""
    command = [sys.executable, "-m", "celery", "-A", "portal", kind, "--loglevel", "INFO"]
    if kind == "worker":
        command += ["--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        if queue:
            command += ["-Q", queue]
    else:
        command += ["--schedule", str(log.with_suffix(".db"))]
    with log.open("a") as out:
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def stop(process: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM); SIGKILL when it has not ended after 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def purge(env: dict[str, str]) -> None:
    """Drops what earlier tests of this test worker left in the queue."""
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "portal", "purge", "-f"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        timeout=120,
    )


def wait_for(condition: Callable[[], bool], *, timeout: float, logs: list[Path], interval: float = 0.1) -> float:
    """Polls `condition` until it holds; returns the seconds it took, or fails the test with the
    end of each log."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"not within {timeout}s; logs:\n{tails}")


def wait_ready(log: Path, *, timeout: float = 120) -> None:
    """Waits until the worker writing `log` says it is ready to take tasks."""
    wait_for(lambda: log.exists() and " ready." in log.read_text(), timeout=timeout, logs=[log], interval=0.2)
