"""Hosts a function as Lambda does: processes running AWS's runtime client (awslambdaric)
that poll a Lambda Runtime API served here for their next event.

Each function gets one Runtime API endpoint and one or more processes (execution
environments). An invocation waits for an answer until the function's timeout; a
process that crashes or overruns is killed and replaced, as Lambda would.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from local_stack.httpserver import JsonHandler, QuietServer
from local_stack.processes import stop

API_PREFIX = "/2018-06-01/runtime"


class FunctionError(Exception):
    """The function raised, crashed or timed out; ``payload`` is Lambda's error object."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}")
        self.payload = payload


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    timeout: float = 3.0
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    result: bytes | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """What Lambda needs to start a function: from the template, resolved."""

    name: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int = 256
    region: str = "us-east-1"
    account: str = "123456789012"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"


class FunctionHost:
    """One function: a queue of invocations and ``concurrency`` execution environments."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        concurrency: int = 1,
        log: Callable[[str, str], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.spec = spec
        self._log = log or (lambda name, line: None)
        self._python = python
        self.pending: queue.Queue[_Invocation] = queue.Queue()
        self.closing = threading.Event()
        self._environments = [_Environment(self) for _ in range(concurrency)]
        self.invocations = 0
        self.errors = 0

    def start(self) -> None:
        for environment in self._environments:
            environment.start()

    def close(self) -> None:
        self.closing.set()
        for environment in self._environments:
            environment.close()
        # An invocation under way or queued fails now rather than waiting out its timeout: whoever waits on it
        # (a scheduled run, a mapping) is let go as the stack stops.
        stopped = {"errorType": "Runtime.Stopped", "errorMessage": "the local stack stopped the function"}
        waiting = [environment.current for environment in self._environments]
        while True:
            try:
                waiting.append(self.pending.get_nowait())
            except queue.Empty:
                break
        for invocation in waiting:
            if invocation is not None and not invocation.done.is_set():
                invocation.error = stopped
                invocation.done.set()

    def log(self, line: str) -> None:
        self._log(self.spec.name, line)

    def invoke(self, event: Any) -> Any:
        """Invoke synchronously; return the decoded result or raise FunctionError."""
        timeout = self.spec.timeout_seconds
        invocation = _Invocation(str(uuid.uuid4()), json.dumps(event).encode(), 0)
        invocation.timeout = timeout
        self.invocations += 1
        self.pending.put(invocation)
        if not invocation.done.wait(timeout + 30):  # the run time, plus time queued
            invocation.done.set()
            self.errors += 1
            raise FunctionError({"errorType": "Sandbox.Timedout", "errorMessage": "no environment took the event"})
        if invocation.error is not None:
            self.errors += 1
            raise FunctionError(invocation.error)
        return json.loads(invocation.result or b"null")

    def command(self) -> list[str]:
        return [self._python, "-m", "awslambdaric", self.spec.handler]

    def environment_variables(self, runtime_api: str) -> dict[str, str]:
        spec = self.spec
        path = os.pathsep.join(str(p) for p in (spec.code_dir, *spec.layer_dirs))
        inherited = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "SYSTEMROOT", "TMPDIR")}
        return {
            **inherited,
            **spec.environment,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex[:8]}",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1",
        }


class _Environment:
    """One execution environment: a runtime process and its own Runtime API endpoint."""

    def __init__(self, host: FunctionHost) -> None:
        self.host = host
        self.current: _Invocation | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), _runtime_api(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def start(self) -> None:
        runtime_api = f"127.0.0.1:{self._server.server_port}"
        self.process = subprocess.Popen(
            self.host.command(),
            cwd=self.host.spec.code_dir,
            env=self.host.environment_variables(runtime_api),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, in order
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._pump_output, args=(self.process,), daemon=True).start()
        threading.Thread(target=self._watch, args=(self.process,), daemon=True).start()

    def _pump_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.host.log(raw.decode("utf-8", "replace").rstrip("\n"))

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        if self.host.closing.is_set():
            return
        with self._lock:
            invocation, self.current = self.current, None
        if invocation is not None and not invocation.done.is_set():
            invocation.error = {"errorType": "Runtime.ExitError", "errorMessage": f"the runtime exited ({code})"}
            if invocation.timed_out:
                invocation.error = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {invocation.timeout:.2f} seconds",
                }
            invocation.done.set()
        self.host.log(f"[local stack] runtime exited ({code}); starting a fresh environment")
        self.start()

    def take(self) -> _Invocation | None:
        """Block until an event is queued (the runtime's long poll)."""
        while not self.host.closing.is_set():
            try:
                invocation = self.host.pending.get(timeout=0.5)
            except queue.Empty:
                continue
            if invocation.done.is_set():
                continue
            invocation.deadline_ms = int((time.time() + invocation.timeout) * 1000)
            with self._lock:
                self.current = invocation
            timer = threading.Timer(invocation.timeout, self._time_out, args=(invocation,))
            timer.daemon = True
            timer.start()
            return invocation
        return None

    def _time_out(self, invocation: _Invocation) -> None:
        if not invocation.done.is_set() and self.current is invocation and self.process is not None:
            invocation.timed_out = True
            self.process.kill()  # as Lambda does: the environment is discarded

    def finish(self, request_id: str, *, result: bytes | None = None, error: dict[str, Any] | None = None) -> bool:
        with self._lock:
            invocation = self.current
            if invocation is None or invocation.request_id != request_id:
                return False
            self.current = None
        invocation.result, invocation.error = result, error
        invocation.done.set()
        return True

    def close(self) -> None:
        stop(self.process)
        self._server.shutdown()
        self._server.server_close()


def _runtime_api(environment: _Environment) -> type[BaseHTTPRequestHandler]:
    host = environment.host

    class RuntimeApi(JsonHandler):
        def do_GET(self) -> None:
            if self.path != f"{API_PREFIX}/invocation/next":
                return self.reply(404, b'{"errorMessage": "not found"}')
            invocation = environment.take()
            if invocation is None:  # shutting down
                return self.reply(410, b"{}")
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", host.spec.arn)
            self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(invocation.payload)))
            self.end_headers()
            self.wfile.write(invocation.payload)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.removeprefix(API_PREFIX).strip("/").split("/")
            if parts[:1] == ["init"]:
                host.log(f"[local stack] init error: {body.decode(errors='replace')}")
                return self.reply(202, b'{"status": "OK"}')
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                if parts[2] == "response":
                    found = environment.finish(parts[1], result=body)
                else:
                    try:
                        error = json.loads(body or b"{}")
                    except ValueError:
                        error = {"errorMessage": body.decode(errors="replace")}
                    found = environment.finish(parts[1], error=error)
                if found:
                    return self.reply(202, b'{"status": "OK"}')
                return self.reply(400, b'{"errorMessage": "unknown request id"}')
            return self.reply(404, b'{"errorMessage": "not found"}')

    return RuntimeApi
