"""The local stack stops on SIGINT and SIGTERM however it was started; CLI errors are one line."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cinnox_sms_cli.main import FAILED
from local_stack.httpserver import free_port
from local_stack.template import REGION, ROOT
from support import ENV, LOCAL_STACK

# --- the local stack, started as a background job of a script ----------------------


def _background_job(*command: str) -> list[str]:
    """`command &` in a non-interactive shell: POSIX has such a job start with SIGINT ignored."""
    return ["bash", "-c", '"$@" & echo "background job pid $!"; wait "$!"', "bash", *command]


def _descendants(pid: int) -> dict[int, bytes]:
    """Every process under pid (the stack starts its children in sessions of their own), with its command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, bytes] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes()
        except OSError:
            continue
        todo += children.get(child, [])
    return found


def _still_running(processes: dict[int, bytes]) -> dict[int, bytes]:
    alive = {}
    for pid, cmdline in processes.items():
        try:
            same = (Path("/proc") / str(pid) / "cmdline").read_bytes() == cmdline
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if same and state != "Z":
            alive[pid] = cmdline
    return alive


def test_a_background_job_of_a_script_starts_with_sigint_ignored() -> None:
    # Given the way the next test starts the stack, running a command that shows its signal mask
    done = subprocess.run(
        _background_job("grep", "SigIgn", "/proc/self/status"), capture_output=True, text=True, check=True
    )
    [mask] = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("SigIgn:")]
    ignored = int(mask, 16)
    # Then SIGINT is ignored in it: Python would never raise KeyboardInterrupt there
    assert ignored & (1 << (signal.SIGINT - 1))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_local_started_from_a_script_stops_on_a_signal_and_leaves_no_process(signum: signal.Signals) -> None:
    # Given `python -m local_stack local` started as a background job of a script, and ready
    port = free_port()
    command = [*LOCAL_STACK, "local", "--api-port", "0", "--cinnox-port", "0", "--emulator-port", str(port)]
    job = subprocess.Popen(
        _background_job(*command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT
    )
    printed: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in job.stdout or []:
            printed.put(line)

    threading.Thread(target=read, daemon=True).start()
    children: dict[int, bytes] = {}
    stack_pid = 0
    try:
        line = ""
        while not line.startswith("Alerts, as they are published"):  # the stack is ready
            line = printed.get(timeout=120)
            if line.startswith("background job pid "):  # the shell's line, among the stack's
                stack_pid = int(line.split()[-1])
        assert stack_pid
        children = _descendants(stack_pid)
        assert any(b"moto_server" in cmdline for cmdline in children.values())
        assert sum(b"awslambdaric" in cmdline for cmdline in children.values()) >= 3  # one per function at least
        # When the signal is sent to the stack's process alone (as `kill`, or Ctrl-C, would)
        os.kill(stack_pid, signum)
        job.wait(timeout=120)
    finally:
        if job.poll() is None:  # the test failed: leave nothing behind for the next one
            for pid in [stack_pid, *_still_running(children)] if stack_pid else []:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            job.kill()
            job.wait()
    rest = ""
    while not printed.empty():
        rest += printed.get()
    # Then it unsubscribed from CINNOX, stopped, and exited 0 (stopping is what `local` is for)
    assert "CinnoxSubscription: SUCCESS" in rest, rest
    assert job.returncode == 0, rest
    # and no child outlived it: moto's server and every function runtime are gone
    assert _still_running(children) == {}
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert "Traceback" not in rest


# --- cinnox-sms: every AWS error is one line -----------------------------------------


class _Answers500(BaseHTTPRequestHandler):
    """What the local emulator answered to CloudFormation calls: an HTML 500 page."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answers_500() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers500)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _cli_env(**changes: str | None) -> dict[str, str]:
    env = {
        **ENV,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",  # the answer, not botocore's retries, is under test
    }
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _cinnox_sms(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "cinnox_sms_cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    return done.returncode, done.stderr


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("cinnox-sms: error: ")
    return lines[0]


def test_stack_against_an_emulator_that_answers_500_is_one_line(answers_500: str) -> None:
    # Given an endpoint answering CloudFormation (an XML protocol) with an HTML 500 page
    code, stderr = _cinnox_sms(
        "status", "txn", "--stack", "cinnox-sms-local", "--endpoint-url", answers_500, env=_cli_env()
    )
    # Then one line names the operation and says the answer is not AWS's, and the exit is 3
    line = _one_error_line(stderr)
    assert "cloudformation DescribeStacks" in line
    assert "not an AWS response" in line
    assert code == FAILED


def test_a_500_to_a_json_protocol_call_is_one_line(answers_500: str) -> None:
    # Given the same endpoint asked by DynamoDB (a JSON protocol: botocore makes it a ClientError)
    code, stderr = _cinnox_sms("report", "--table", "t", "--endpoint-url", answers_500, env=_cli_env())
    # Then its HTML body does not spill over several lines
    line = _one_error_line(stderr)
    assert "dynamodb Query: HTTP 500" in line
    assert code == FAILED


def test_a_refused_port_is_one_line() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for argv in (["status", "txn", "--stack", "s"], ["status", "txn", "--table", "t"]):
        code, stderr = _cinnox_sms(*argv, "--endpoint-url", endpoint, env=_cli_env())
        line = _one_error_line(stderr)
        assert "EndpointConnectionError: Could not connect to the endpoint URL" in line
        assert code == FAILED


def test_no_region_and_no_credentials_are_one_line(answers_500: str) -> None:
    code, stderr = _cinnox_sms("report", "--table", "t", env=_cli_env(AWS_DEFAULT_REGION=None))
    assert "NoRegionError: You must specify a region" in _one_error_line(stderr)
    assert code == FAILED
    no_keys = _cli_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    code, stderr = _cinnox_sms("report", "--table", "t", "--endpoint-url", answers_500, env=no_keys)
    assert "dynamodb Query: NoCredentialsError: Unable to locate credentials" in _one_error_line(stderr)
    assert code == FAILED
