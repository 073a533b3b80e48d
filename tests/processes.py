"""Servers the tests start as processes: waiting until one answers, and stopping its whole process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, log: Path, timeout_s: float, what: str) -> None:
    """Returns once `url` answers 200; AssertionError with the log's end if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {process.returncode}" if process.poll() is not None else f"no answer in {timeout_s} s"
            raise AssertionError(f"{what}: {state}\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_group(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM to the process's group (it was started with start_new_session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
