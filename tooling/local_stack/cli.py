"""`python -m local_stack demo|local`: the product on this machine (make demo / make local)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from typing import Any

from local_stack.demo import AlertInbox, check, run_demo, summary
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
    for command, api, emulator, cinnox in ((demo, 0, 0, 0), (local, 3000, 5000, 8090)):
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
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    print("Starting the local stack (template.yaml, moto, CINNOX simulator)", flush=True)
    started = time.monotonic()
    try:
        stack.start()
    except PortInUse as error:
        print(f"error: {error}", file=sys.stderr)
        stack.stop()
        return 2
    except (StackError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        print(f"logs: {options.log_dir}", file=sys.stderr)
        stack.stop()
        return 1
    except KeyboardInterrupt:
        stack.stop()
        return 130
    print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
    if args.command == "demo":
        return _demo(stack, args)
    return _local(stack, stopping)


def _demo(stack: LocalStack, args: argparse.Namespace) -> int:
    try:
        account = run_demo(stack, sms_count=args.sms, seed=args.seed, senders=args.senders)
    except KeyboardInterrupt:
        stack.stop()
        return 130
    except BaseException:
        stack.stop()
        raise
    answers = stack.stop()
    unsubscribed = (
        bool(answers)
        and all(a.get("Status") == "SUCCESS" for a in answers)
        and bool(stack.cinnox and stack.cinnox.subscription and stack.cinnox.subscription["enabled"] is False)
    )
    check(account, unsubscribed)
    print(summary(account), flush=True)
    print(f"\nfunction logs: {stack.options.log_dir}")
    return 0 if account.ok else 1


def _local(stack: LocalStack, stopping: threading.Event) -> int:
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

Alerts, as they are published:""",
        flush=True,
    )
    try:
        while not stopping.is_set():
            for alert in inbox.receive(wait_seconds=1):
                recipient = alert.get("recipientNumber")
                print(
                    f"  {time.strftime('%H:%M:%S')}  {alert['status']:<11} {alert['transactionId']}  "
                    f"to {'+' + recipient.lstrip('+') if recipient else '?'} ({alert.get('recipientCountry', '?')})"
                    f"  {alert.get('exception', '')}",
                    flush=True,
                )
    except KeyboardInterrupt:
        pass
    print("\nstopping: unsubscribing from CINNOX, then stopping every process", flush=True)
    answers = stack.stop()
    for answer in answers:
        print(f"  {answer.get('LogicalResourceId')}: {answer.get('Status')} ({answer.get('Reason')})")
    return 0
