"""The commands a newcomer types, run as real processes in both modes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import REDIS_TEST_URL, _create_postgres_database, _drop_postgres_database

VIEWER = {"query": "{ viewer { organization { id name creditBalance } member { id email } } }"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mensajero.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _spawn(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mensajero.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base_url: str, process: subprocess.Popen[str], *, workers: int = 1) -> dict:
    # Generous: a loaded machine can take tens of seconds just to import the app.
    deadline = time.monotonic() + 180
    last: dict = {}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2)
            last = response.json()
            if response.status_code == 200 and last.get("workers", 0) >= workers:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server never became ready: {last}")


def _stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _check_bootstrap_and_viewer(env: dict[str, str], cwd: Path, base_url: str) -> None:
    result = _run(
        env,
        cwd,
        "bootstrap",
        "--org",
        "Clínica Andes",
        "--email",
        "Ana@Example.com",
        "--credits",
        "500",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"organizationId", "memberId", "apiKey"}
    assert created["apiKey"].startswith("mk_live_")

    answer = httpx.post(
        f"{base_url}/graphql", json=VIEWER, headers={"Authorization": f"Bearer {created['apiKey']}"}
    )
    assert answer.status_code == 200, answer.text
    viewer = answer.json()["data"]["viewer"]
    assert viewer["organization"]["name"] == "Clínica Andes"
    assert viewer["organization"]["creditBalance"] == 500
    assert viewer["member"]["email"] == "ana@example.com"

    assert httpx.post(f"{base_url}/graphql", json=VIEWER).status_code == 401


@pytest.fixture
def base_env() -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENSAJERO_")}
    yield env


def test_embedded_mode_serves_with_nothing_else_set_up(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    # No settings at all: the defaults are the embedded mode, files in the cwd.
    port = _free_port()
    server = _spawn(base_env, tmp_path, "serve", "--port", str(port))
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}", server)
        assert ready["database"] == "ok" and ready["redis"] == "ok"
        assert (tmp_path / "mensajero.db").exists()
        _check_bootstrap_and_viewer(base_env, tmp_path, f"http://127.0.0.1:{port}")
    finally:
        _stop(server)


def test_embedded_mode_refuses_a_separate_worker_and_several_processes(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    worker = _run(base_env, tmp_path, "worker")
    assert worker.returncode == 2
    assert "memory://" in worker.stderr
    serve = _run(base_env, tmp_path, "serve", "--workers", "2")
    assert serve.returncode == 2


def test_production_mode_with_migrate_and_a_separate_worker(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    database_url = asyncio.run(_create_postgres_database())
    redis_url = REDIS_TEST_URL
    # Heartbeats of an earlier run's workers live on for a while: start empty.
    redis.Redis.from_url(redis_url).flushdb()
    env = {**base_env, "MENSAJERO_DATABASE_URL": database_url, "MENSAJERO_REDIS_URL": redis_url}
    port = _free_port()
    processes: list[subprocess.Popen[str]] = []
    try:
        migrate = _run(env, tmp_path, "migrate")
        assert migrate.returncode == 0, migrate.stderr
        processes.append(_spawn(env, tmp_path, "worker"))
        processes.append(_spawn(env, tmp_path, "serve", "--port", str(port), "--workers", "2"))
        # workers == 1 proves the separate worker process is alive: the API
        # processes run none of their own in production mode.
        ready = _wait_ready(f"http://127.0.0.1:{port}", processes[1], workers=1)
        assert ready["workers"] == 1
        assert not (tmp_path / "mensajero.db").exists()
        _check_bootstrap_and_viewer(env, tmp_path, f"http://127.0.0.1:{port}")
    finally:
        _stop(*processes)
        asyncio.run(_drop_postgres_database(database_url))
