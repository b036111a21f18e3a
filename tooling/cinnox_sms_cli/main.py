"""cinnox-sms: look up what happened to an SMS sent through CINNOX.

Works against a deployed stack (--stack NAME, which reads the table from the stack's
outputs) or any table (--table NAME), on AWS or on an emulator (--endpoint-url,
e.g. the one `make local` prints).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.alerts import AlertPublisher
from cinnox_sms.query import SmsStatus, sms_status
from cinnox_sms.store import TdrStore
from cinnox_sms_cli.redrive import Redriven, redrive_alert_failures, redrive_parked
from cinnox_sms_cli.report import by_country, render, scan_since, since

NOT_FOUND = 1
FAILED = 3  # the command could not ask AWS


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cinnox-sms", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status",
        help="one SMS's history and current status",
        description="Print every status stored for one SMS and its current status.",
    )
    status.add_argument("transaction_id", metavar="TRANSACTION_ID", help="the SMS's TransactionID")
    where = status.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack's name (its TdrTableName output is used)")
    where.add_argument("--table", help="the TDR table's name")
    status.add_argument("--endpoint-url", help="an AWS endpoint, e.g. the local stack's emulator")
    status.add_argument("--region", help="the AWS region (default: your profile's)")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    report = commands.add_parser(
        "report",
        help="delivery by country over a period",
        description="Per country: SMS sent, delivered, undelivered, rejected, still pending, "
        "and the delivery rate, for SMS whose TDRs arrived in the period.",
    )
    report.add_argument("--since", default="24h", help="a period (24h, 7d, 90m) or an ISO 8601 time (default 24h)")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    where = report.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack's name (its TdrTableName output is used)")
    where.add_argument("--table", help="the TDR table's name")
    report.add_argument("--endpoint-url", help="an AWS endpoint, e.g. the local stack's emulator")
    report.add_argument("--region", help="the AWS region (default: your profile's)")
    redrive = commands.add_parser(
        "redrive",
        help="send parked TDRs and failed alerts back through the product",
        description="Write the TDRs waiting in the parking queue, and publish the alerts whose stream records wait in "
        "the alert failure queue; each message is deleted once done, so running it again does nothing new.",
    )
    redrive.add_argument("--stack", help="a deployed stack's name (table, queues and topic from its outputs)")
    redrive.add_argument("--table", help="the TDR table's name (without --stack)")
    redrive.add_argument("--parking-queue-url", help="the parking queue (without --stack)")
    redrive.add_argument("--failure-queue-url", help="the alert failure queue (without --stack)")
    redrive.add_argument("--topic-arn", help="the alert topic (without --stack)")
    redrive.add_argument("--retention-days", type=int, default=400, help="TTL of written TDRs (default 400)")
    redrive.add_argument("--endpoint-url", help="an AWS endpoint, e.g. the local stack's emulator")
    redrive.add_argument("--region", help="the AWS region (default: your profile's)")
    args = parser.parse_args(argv)
    if args.command == "redrive" and not args.stack:
        missing = [
            f"--{n.replace('_', '-')}"
            for n in ("table", "parking_queue_url", "failure_queue_url", "topic_arn")
            if not getattr(args, n)
        ]
        if missing:
            redrive.error(f"give --stack, or all of {', '.join(missing)}")
    if args.command == "report":
        try:
            start = since(args.since)
        except ValueError as error:
            report.error(str(error))
    session = session or boto3.Session(region_name=args.region)
    try:
        table = args.table or stack_output(session, args.endpoint_url, args.stack, "TdrTableName")
        dynamodb = session.client("dynamodb", endpoint_url=args.endpoint_url)
        if args.command == "redrive":
            return run_redrive(session, args, table, dynamodb)
        if args.command == "report":
            lines = by_country(scan_since(dynamodb, table, start))
            print(render(lines, args.format) if lines else f"no SMS in {table} since {start.isoformat()}")
            return 0
        found = sms_status(dynamodb, table, args.transaction_id)
    except (ClientError, BotoCoreError, LookupError) as error:
        print(f"cinnox-sms: {error}", file=sys.stderr)
        return FAILED
    if found is None:
        print(f"cinnox-sms: no TDR stored for TransactionID {args.transaction_id!r} in {table}", file=sys.stderr)
        return NOT_FOUND
    print(json.dumps(as_json(found), indent=2) if args.json else as_text(found))
    return 0


def run_redrive(session: boto3.Session, args: argparse.Namespace, table: str, dynamodb: Any) -> int:
    def where(flag: str, output: str) -> str:
        return str(getattr(args, flag) or stack_output(session, args.endpoint_url, args.stack, output))

    sqs = session.client("sqs", endpoint_url=args.endpoint_url)
    done = Redriven()
    redrive_parked(
        sqs, where("parking_queue_url", "ParkingQueueUrl"), TdrStore(dynamodb, table, args.retention_days), done
    )
    publisher = AlertPublisher(
        session.client("sns", endpoint_url=args.endpoint_url), where("topic_arn", "AlertTopicArn")
    )
    redrive_alert_failures(
        sqs,
        where("failure_queue_url", "AlertFailureQueueUrl"),
        session.client("dynamodbstreams", endpoint_url=args.endpoint_url),
        publisher,
        done,
    )
    print("\n".join(done.lines()))
    return 0 if not done.left_in_queue else NOT_FOUND


def stack_output(session: boto3.Session, endpoint_url: str | None, stack: str, name: str) -> str:
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in described.get("Outputs", []):
        if output["OutputKey"] == name:
            return str(output["OutputValue"])
    raise LookupError(f"stack {stack} has no output {name}")


def as_json(found: SmsStatus) -> dict[str, Any]:
    return {
        "transactionId": found.transaction_id,
        "currentStatus": found.current.value,
        "failed": found.failed,
        "history": [
            {
                "status": r.status.value,
                "receivedAt": r.received_at,
                **{k: v for k, v in r.item.items() if k not in ("raw", "transactionId", "status")},
            }
            for r in found.history
        ],
    }


def as_text(found: SmsStatus) -> str:
    latest = found.history[-1].item
    recipient = latest.get("recipientNumber")
    lines = [
        f"SMS {found.transaction_id}: {found.current.value}{' (not delivered)' if found.failed else ''}",
        f"  recipient  {'+' + recipient.lstrip('+') if recipient else 'unknown'}"
        f" ({latest.get('recipientCountry', 'country unknown')})",
        "  history",
    ]
    for report in found.history:
        details = ", ".join(
            v
            for v in (
                report.item.get("exception"),
                report.item.get("responseCode") and f"response code {report.item['responseCode']}",
            )
            if v
        )
        lines.append(f"    {report.status.value:<12} received {report.received_at}{'  ' + details if details else ''}")
    return "\n".join(lines)
