"""The browser check as a test: headless Chromium runs a subscription in our GraphiQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("graphiql_subscription.py")


def test_graphiql_shows_a_live_send_offline(tmp_path: Path) -> None:
    screenshot = tmp_path / "graphiql.png"
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--screenshot", str(screenshot)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[-1] == "OK"
    assert sum("QUEUED -> SENDING -> SENT -> DELIVERED" in line for line in lines) == 3
    assert screenshot.stat().st_size > 10_000
