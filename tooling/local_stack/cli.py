"""`python -m local_stack demo|local`: the product on this machine (make demo / make local).

SIGINT (Ctrl-C) and SIGTERM stop the stack the same way however it was started: the custom
resources are deleted (CINNOX unsubscribed), then every child process is stopped. Exit status:
`local` 0 once stopped cleanly (1 if the unsubscribe failed); a signal during the start, a demo or
a load run 128 + the signal's number (130 for SIGINT, 143 for SIGTERM); 2 a port already in use.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cinnox_sms_cli.report import CountryLine, by_country, render, scan_since, since
from local_stack.demo import Account, AlertInbox, Check, check, percentile, run_demo, summary
from local_stack.httpserver import PortInUse
from local_stack.stack import LocalStack, StackError, StackOptions
from local_stack.template import Template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a day of simulated traffic through the stack and account for it")
    demo.add_argument("--sms", type=int, default=300, help="SMS to simulate (default 300)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the day's traffic")
    demo.add_argument("--senders", type=int, default=8, help="concurrent senders (default 8)")
    local = commands.add_parser("local", help="keep the stack running for manual use (Ctrl-C stops it)")
    load = commands.add_parser("load", help="a load run: many TDRs from many concurrent senders, then the account")
    load.add_argument("--tdrs", type=int, default=5000, help="TDRs to send, repeats included (default 5000)")
    load.add_argument("--senders", type=int, default=32, help="concurrent senders (default 32)")
    load.add_argument("--environments", type=int, default=4, help="webhook execution environments (default 4)")
    load.add_argument("--seed", type=int, default=11, help="random seed of the traffic")
    load.add_argument("--results", default=".local-stack/load.json", help="where to write the figures as JSON")
    for command, api, emulator, cinnox in ((demo, 0, 0, 0), (local, 3000, 5000, 8090), (load, 0, 0, 0)):
        command.add_argument("--api-port", type=int, default=api, help=f"HTTP API port (default {api or 'any free'})")
        command.add_argument(
            "--emulator-port",
            type=int,
            default=emulator,
            help=f"moto's port (default {emulator or 'any free'}); ignored with AWS_ENDPOINT_URL",
        )
        command.add_argument(
            "--cinnox-port", type=int, default=cinnox, help=f"CINNOX simulator port (default {cinnox or 'any free'})"
        )
        command.add_argument("--app-id", default="demo-app-0001", help="the CINNOX AppID the stack is deployed for")
    args = parser.parse_args(argv)

    options = StackOptions(
        api_port=args.api_port,
        emulator_port=args.emulator_port,
        cinnox_port=args.cinnox_port,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        app_id=args.app_id,
        concurrency={"WebhookFunction": 2},
    )
    stack = LocalStack(Template.load(), options, status=lambda line: print(f"  {line}", flush=True))
    run = Shutdown(stack)
    run.install()
    print("Starting the local stack (template.yaml, moto, CINNOX simulator)", flush=True)
    started = time.monotonic()
    try:
        try:
            stack.start()
        except PortInUse as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except (StackError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            print(f"logs: {options.log_dir}", file=sys.stderr)
            return 1
        print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
        if args.command == "demo":
            return _demo(run, args)
        if args.command == "load":
            return _load(run, args)
        return _local(run)
    except KeyboardInterrupt:  # only ever raised by Shutdown, once, on SIGINT or SIGTERM
        run.stop()
        return run.exit_status
    finally:
        run.stop()  # whatever happened above: no child outlives this process


class Shutdown:
    """SIGINT and SIGTERM handled explicitly, so the stack stops in order however it was started.

    A background job of a non-interactive shell (`make local &` in a script) starts with SIGINT
    ignored, and Python then never raises KeyboardInterrupt: Ctrl-C did nothing and a kill left
    moto's server running. The first signal interrupts whatever runs (a start, a demo, the wait);
    later ones, and any that arrive once stop() has begun, cannot cut the stop short.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.received: int | None = None
        self.requested = threading.Event()
        self._stopping = False
        self._answers: list[dict[str, Any]] | None = None

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = self.received is None
        if first:
            self.received = signum
        self.requested.set()
        if first and not self._stopping:
            raise KeyboardInterrupt
        # os.write, not print: the main thread may be inside a print to the same stream
        os.write(sys.stderr.fileno(), b"  already stopping: unsubscribing, then stopping every process\n")

    @property
    def exit_status(self) -> int:
        return 128 + (self.received or signal.SIGINT)

    def stop(self) -> list[dict[str, Any]]:
        """Delete the custom resources, then stop every child; once, however often it is called."""
        if self._answers is None:
            self._stopping = True
            self._answers = []  # a second call while the first runs finds it under way
            self._answers = self.stack.stop()
        return self._answers


def _demo(run: Shutdown, args: argparse.Namespace) -> int:
    stack = run.stack
    account = run_demo(stack, sms_count=args.sms, seed=args.seed, senders=args.senders)
    assert stack.aws is not None
    # The operators' report, read from the table before the emulator goes away.
    dynamodb = stack.aws.client("dynamodb")
    lines = by_country(scan_since(dynamodb, stack.output("TdrTableName"), since("24h")))
    report = render(lines, "table")
    answers = run.stop()
    unsubscribed = (
        bool(answers)
        and all(a.get("Status") == "SUCCESS" for a in answers)
        and bool(stack.cinnox and stack.cinnox.subscription and stack.cinnox.subscription["enabled"] is False)
    )
    check(account, unsubscribed)
    account.checks.append(report_check(account, lines))
    print(summary(account), flush=True)
    print(f"\nfunction logs: {stack.options.log_dir}")
    print("\nReport (cinnox-sms report --since 24h, on what the demo stored):")
    print(report, flush=True)
    return 0 if account.ok else 1


def report_check(account: Account, lines: list[CountryLine]) -> Check:
    """The operators' report, read from the table, must tell what the simulator sent."""
    truth: dict[str, Counter[str]] = {}
    for sms in account.messages:
        truth.setdefault(sms.country.code, Counter())[sms.outcome.value.lower()] += 1
    reported = {
        line.country: Counter(
            {k: getattr(line, k) for k in ("delivered", "undelivered", "rejected") if getattr(line, k)}
        )
        for line in lines
        if line.country != "all"
    }
    return Check(reported == truth, f"cinnox-sms report agrees with what was sent, country by country ({len(truth)})")


def _load(run: Shutdown, args: argparse.Namespace) -> int:
    """5,000 TDRs by default: 1 in 10 repeated, 1 in 20 terminal-before-Submitted, 32 senders at once."""
    repeat_rate = 0.10
    sms = round(args.tdrs / 2 / (1 + repeat_rate))
    account = run_demo(
        run.stack,
        sms_count=sms,
        seed=args.seed,
        senders=args.senders,
        repeat_rate=repeat_rate,
        out_of_order_rate=0.05,
        malformed=0,
    )
    answers = run.stop()
    unsubscribed = bool(answers) and all(a.get("Status") == "SUCCESS" for a in answers)
    check(account, unsubscribed)
    print(summary(account), flush=True)
    latencies = sorted(o.seconds for o in account.outcomes)
    figures = {
        "tdrs_sent": len(account.outcomes),
        "sms": len(account.messages),
        "senders": args.senders,
        "webhook_environments": args.environments,
        "seconds": round(account.seconds, 2),
        "tdrs_per_second": round(len(account.outcomes) / account.seconds, 1),
        "latency_ms": {p: round(percentile(latencies, p) * 1000, 1) for p in (50, 90, 99)},
        "stored": len(account.stored),
        "alerts": sum(account.alerts.values()),
        "duplicate_alerts": sum(n - 1 for n in account.alerts.values() if n > 1),
        "retried_by_sender": sum(1 for o in account.outcomes if o.attempts > 1),
        "all_accounted_for": account.ok,
    }
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures written to {results}")
    return 0 if account.ok else 1


def operator_command(stack: LocalStack, *arguments: str) -> str:
    """A `cinnox-sms ... --stack NAME` command line that works against this local stack."""
    environment = " ".join(f"{name}={shlex.quote(value)}" for name, value in stack.client_environment().items())
    command = shlex.join(["cinnox-sms", *arguments, "--stack", stack.options.stack_name])
    return f"env {environment} {command}"


def _local(run: Shutdown) -> int:
    stack = run.stack
    assert stack.aws is not None
    url = f"{stack.output('WebhookBaseUrl')}/{stack.secret('WebhookSecret')}"
    sample = {
        "Type": "tdr",
        "AppID": stack.options.app_id,
        "ServiceID": "svc-local",
        "TransactionID": "demo-0001",
        "RecipientNumber": 85298765432,
        "RecipientCountry": "HK",
        "ResponseCode": "400",
        "Status": "Rejected",
        "Exception": "sms send failed",
    }
    inbox = AlertInbox(stack.aws, stack.output("AlertTopicArn"))
    print(
        f"""
CINNOX SMS tracker, running locally (Ctrl-C to stop)
  webhook URL   {url}
  AppID         {stack.options.app_id}
  AWS emulator  {stack.endpoint}  (AWS_ENDPOINT_URL={stack.endpoint})
  table         {stack.output("TdrTableName")}
  alert topic   {stack.output("AlertTopicArn")}
  CINNOX        {stack.cinnox.base_url if stack.cinnox else "-"}  (simulator; the webhook is subscribed)
  logs          {stack.options.log_dir}

Post a TDR:
  curl -s -X POST {shlex.quote(url)} -d {shlex.quote(json.dumps(sample))}

Ask the operator's tool (the local stack answers CloudFormation's DescribeStacks):
  {operator_command(stack, "report", "--since", "1h")}

Alerts, as they are published:""",
        flush=True,
    )
    try:
        while not run.requested.is_set():
            for alert in inbox.receive(wait_seconds=1):
                recipient = alert.get("recipientNumber")
                print(
                    f"  {time.strftime('%H:%M:%S')}  {alert['status']:<11} {alert['transactionId']}  "
                    f"to {'+' + recipient.lstrip('+') if recipient else '?'} ({alert.get('recipientCountry', '?')})"
                    f"  {alert.get('exception', '')}",
                    flush=True,
                )
    except KeyboardInterrupt:  # the signal that stops `local`: its normal end
        pass
    print("\nstopping: unsubscribing from CINNOX, then stopping every process", flush=True)
    answers = run.stop()
    for answer in answers:
        print(f"  {answer.get('LogicalResourceId')}: {answer.get('Status')} ({answer.get('Reason')})", flush=True)
    return 0 if all(answer.get("Status") == "SUCCESS" for answer in answers) else 1
