"""Run a fake provider in a child process (outside the process under test)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def fake_process(provider: str, *args: str, startup_timeout: float = 20.0) -> Iterator[str]:
    """Start ``python -m tests.fakes <provider> <args>``; yields its base URL.

    The child is terminated (SIGTERM, then SIGKILL) when the block ends.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", provider, "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"fake {provider} did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
