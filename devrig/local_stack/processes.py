"""Stopping the child processes the local stack starts."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen[bytes] | None, grace_seconds: float = 5) -> None:
    """Ask a child to end; kill it if it has not within the grace period."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
