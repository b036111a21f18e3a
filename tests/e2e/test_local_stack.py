"""The local stack end to end: functions in their own processes, its ports, `make local` live, and the demo."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.httpserver import free_port
from local_stack.runtime import FunctionError, FunctionHost, FunctionSpec
from local_stack.stack import LocalStack, StackOptions
from local_stack.template import ROOT, Template
from local_stack.traffic import http_post
from support import tdr

LOCAL_STACK = [sys.executable, "-m", "local_stack"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "devrig"), str(ROOT / "layers" / "common")])}


# --- the demo, end to end ------------------------------------------------------


def test_demo_accounts_for_every_tdr_and_alerts_each_failure_once() -> None:
    # Given a small day of traffic through the whole local stack (real processes, real HTTP), with a carrier outage,
    # replayed in 20 s (the carriers' delays scaled with it), 2 SMS to ID whose final status is withheld
    done = subprocess.run(
        [*LOCAL_STACK, "demo", "--sms", "60", "--burst", "20", "--senders", "4", "--seconds", "20"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    # Then it exits 0, every check holds, and CINNOX saw the unsubscribe
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All accounted for." in done.stdout
    assert "FAIL" not in done.stdout
    assert "stored in DynamoDB  158" in done.stdout  # (60 + 20 SMS) x (Submitted + terminal), less 2 withheld
    # and people got digests, each failure in exactly one, machines an alert per failure
    assert "carrier outage      20 SMS to VE Undelivered within a minute: 20 alerts" in done.stdout
    assert "ok    every Undelivered/Rejected SMS is in exactly one digest" in done.stdout
    assert "ok    at most 2 digests per batching window" in done.stdout
    # and the no-final-status check, run on its schedule at start and then with its clock moved, reported exactly
    # the withheld SMS once each, in one digest, nothing on its second run, nothing in the failed-SMS digests
    assert "ok    NoFinalStatusFunction ran on its schedule (rate(1 hour)) as the stack started" in done.stdout
    assert "reported exactly the 2 SMS whose final status the simulator withheld (ID 2)" in done.stdout
    assert "ok    one no-final-status digest for people (DigestTopic), counting them by country: 1 digest(s), ID 2" in (
        done.stdout
    )
    assert "ok    a second run reported nothing again: 0 SMS, 0 alerts, 0 digests" in done.stdout
    assert "ok    NoFinalStatus alerts stayed out of the failed-SMS digests" in done.stdout
    account = done.stdout.split("  no final status    withheld")[1].split("Checks")[0].splitlines()[1:]
    assert [line.split() for line in account if line.strip()] == [["ID", "2", "2", "2"], ["all", "2", "2", "2"]]
    # and it ends with the operators' report (cohort view): every SMS counted once, the withheld ones pending,
    # the fast carriers' country quicker than the slow one's
    assert "ok    cinnox-sms report ranks the countries by their carriers' delays" in done.stdout
    report = done.stdout.split("Report (cinnox-sms report")[1]
    assert "view cohort" in report
    totals = [line.split() for line in report.splitlines() if line.startswith("all ")]
    assert [row[:2] for row in totals] == [["all", "80"]]
    assert totals[0][5] == "2"  # pending


def test_the_stack_runs_a_schedulev2_function_on_its_schedule_and_not_when_disabled(tmp_path: Path) -> None:
    """EventBridge Scheduler User Guide, Schedule types: rate-based schedules (a rate schedule without a StartDate
    invokes its target at once, then at its rate); AWS::Scheduler::Schedule State DISABLED invokes nothing."""
    saved = dict(os.environ)
    lines: list[str] = []
    try:
        for hours, every in (("24", 1.0), ("0", 1.0)):
            options = StackOptions(
                stack_name=f"schedules-{hours}",
                log_dir=tmp_path / hours,
                parameters={"NoFinalStatusHours": hours},
                schedule_every=every,
            )
            stack = LocalStack(Template.load(), options, status=lines.append)
            try:
                stack.start()
                time.sleep(3.5)
                invocations = stack.hosts["NoFinalStatusFunction"].invocations
                runs = [run for s in stack.schedules if s.function == "NoFinalStatusFunction" for run in s.runs]
                sweeps = [run for s in stack.schedules if s.function == "OverdueAlertFunction" for run in s.runs]
            finally:
                stack.stop()
            # The overdue sweep (always ENABLED) ran too, on its own schedule, and found nothing owed
            assert sweeps
            assert all(run.ok and run.result["found"] == 0 for run in sweeps)
            if hours == "24":
                # Given NoFinalStatusHours 24 (State ENABLED), compressed to every second: it ran at once, then on
                # its schedule, through the function's own runtime, each run answering the check's figures
                assert [s.function for s in stack.schedules] == ["NoFinalStatusFunction", "OverdueAlertFunction"]
                assert 3 <= len(runs) <= 7
                assert invocations == len(runs)
                assert all(run.ok and run.result["found"] == 0 for run in runs)
                assert runs[0].result["hours_checked"] == 48
                assert "NoFinalStatusFunction: schedule Hourly, rate(1 hour), every 1 s here (first run now)" in lines
            else:
                # Given NoFinalStatusHours 0 (State DISABLED): no schedule, never invoked
                assert [s.function for s in stack.schedules] == ["OverdueAlertFunction"]
                assert invocations == 0
                assert "NoFinalStatusFunction: schedule Hourly (rate(1 hour)) is DISABLED" in lines
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- the runtime: functions in their own processes, through awslambdaric ----------


@pytest.fixture
def toy_function(tmp_path: Path) -> Iterator[FunctionHost]:
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""
        import os, time
        def handler(event, context):
            if event.get("raise"):
                raise ValueError("bad event")
            if event.get("sleep"):
                time.sleep(event["sleep"])
            if event.get("exit"):
                os._exit(3)
            return {"event": event, "name": context.function_name, "left_ms": context.get_remaining_time_in_millis(),
                    "greeting": os.environ["GREETING"]}
    """)
    )
    lines: list[str] = []
    spec = FunctionSpec("Toy", tmp_path, "app.handler", (), {"GREETING": "hello"}, timeout_seconds=1.5)
    host = FunctionHost(spec, log=lambda name, line: lines.append(line))
    host.start()
    yield host
    host.close()


def test_function_runs_in_its_own_process_with_its_environment(toy_function: FunctionHost) -> None:
    result = toy_function.invoke({"n": 1})
    assert result["event"] == {"n": 1}
    assert (result["name"], result["greeting"]) == ("Toy", "hello")
    assert 0 < result["left_ms"] <= 1500


def test_function_that_raises_reports_the_error_and_keeps_serving(toy_function: FunctionHost) -> None:
    with pytest.raises(FunctionError) as raised:
        toy_function.invoke({"raise": True})
    assert raised.value.payload["errorType"] == "ValueError"
    assert raised.value.payload["errorMessage"] == "bad event"
    assert toy_function.invoke({"n": 2})["event"] == {"n": 2}


def test_function_that_times_out_or_exits_is_replaced(toy_function: FunctionHost) -> None:
    with pytest.raises(FunctionError) as timed_out:
        toy_function.invoke({"sleep": 5})
    assert timed_out.value.payload["errorType"] == "Sandbox.Timedout"
    with pytest.raises(FunctionError) as exited:
        toy_function.invoke({"exit": True})
    assert exited.value.payload["errorType"] == "Runtime.ExitError"
    assert toy_function.invoke({"n": 3})["event"] == {"n": 3}


# --- ports -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--api-port", "--cinnox-port", "--emulator-port"])
def test_a_port_already_taken_gives_a_clear_message(flag: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {"--api-port": "0", "--cinnox-port": "0", "--emulator-port": "0", flag: str(port)}
        done = subprocess.run(
            [*LOCAL_STACK, "local", *(x for kv in ports.items() for x in kv)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
            check=False,
            cwd=ROOT,
        )
    assert done.returncode == 2
    assert f"port {port}" in done.stderr
    assert "already in use" in done.stderr


def _processes_using(marker: str) -> list[int]:
    """Processes whose environment mentions marker (the stack gives its children the emulator's URL)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_local_serves_alerts_live_and_stops_cleanly_on_ctrl_c() -> None:
    # Given `make local` running, with its emulator on a port of our choosing
    port = free_port()
    command = [*LOCAL_STACK, "local", "--api-port", "0", "--cinnox-port", "0", "--emulator-port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    assert process.stdout is not None
    printed_lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or []:
            printed_lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    lines: list[str] = []
    rest = ""
    try:
        while not lines or not lines[-1].startswith("Alerts, as they are published"):
            lines.append(printed_lines.get(timeout=60))
        printed = "".join(lines)
        url = next(line.split()[-1] for line in lines if line.strip().startswith("webhook URL"))
        app_id = next(line.split()[-1] for line in lines if line.strip().startswith("AppID"))
        assert "curl -s -X POST" in printed
        # When a Rejected TDR and a challenge are posted to the printed URL
        body = json.dumps(tdr(AppID=app_id, TransactionID="live-0001", Status="Rejected", ResponseCode="400"))
        status, answer = http_post(url, body.encode(), {"Content-Type": "application/json"})
        assert status == 200
        assert json.loads(answer)["result"]["duplicate"] is False
        assert http_post(url, b'{"challenge": "c-live"}', {})[1] == b'{"code":0,"result":{"challenge":"c-live"}}'
        # Then its alert is printed within seconds, and so is the hourly check's first run, at once as the stack
        # started (a rate schedule without a StartDate starts at once: EventBridge Scheduler User Guide, Schedule
        # types: rate-based schedules)
        after: list[str] = []
        first_run = "scheduled   NoFinalStatusFunction: 0 SMS with no final status (48 hours checked"
        while not any("live-0001" in line for line in after) or not any(first_run in line for line in after):
            after.append(printed_lines.get(timeout=10))
        alert = next(line for line in after if "live-0001" in line)
        assert "Rejected" in alert
    finally:
        # And Ctrl-C unsubscribes and leaves no process behind
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        while not printed_lines.empty():
            rest += printed_lines.get()
    assert process.returncode == 0
    assert rest.count("CinnoxSubscription: SUCCESS") == 1  # once: the status line, not again in a summary
    assert "schedule      NoFinalStatusFunction rate(1 hour); NoFinalStatusHours 24" in printed
    assert _processes_using(f"127.0.0.1:{port}") == []
