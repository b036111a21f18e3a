"""cinnox-sms: look up what happened to an SMS sent through CINNOX.

Works against a deployed stack (--stack NAME, which reads the table from the stack's
outputs) or any table (--table NAME), on AWS or on an emulator (--endpoint-url,
e.g. the one `make local` prints).

Exit status: 0 done, 1 not found (or left in a queue), 2 bad arguments, 3 AWS or CINNOX
refused (one line on stderr naming the operation and AWS's error code; no traceback),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from cinnox_sms.alert_ledger import AlertLedger
from cinnox_sms.alerts import AlertPublisher
from cinnox_sms.cinnox import EVENT_HOOKS_PATH, CinnoxClient, RetryPolicy, allowed_hosts, checked_base_url
from cinnox_sms.custom_resource import Redactor, app_token_from_secret
from cinnox_sms.errors import CinnoxError
from cinnox_sms.item import StoredTdr
from cinnox_sms.neutral import line
from cinnox_sms.overdue import OverdueAlerts
from cinnox_sms.query import SmsStatus, sms_status
from cinnox_sms.rollup import TTF_BUCKETS
from cinnox_sms.secret_label import mark_subscribed, read_current, read_webhook_secrets
from cinnox_sms.store import TdrStore
from cinnox_sms_cli import pending, rebuild
from cinnox_sms_cli.errors import AWS_ERRORS, LastCall, describe, naming_calls, one_line
from cinnox_sms_cli.progress import DaysRead
from cinnox_sms_cli.redrive import Redriven, redrive_alerts, redrive_parked
from cinnox_sms_cli.report import (
    HOUR,
    LONGEST_DAYS,
    VIEWS,
    Period,
    by_country,
    duration,
    moment,
    page,
    read_rollups,
    render,
)

NOT_FOUND = 1
FAILED = 3  # AWS (or the way to it) or CINNOX refused: one line on stderr, no traceback
INTERRUPTED = 130  # Ctrl-C, as a shell reports it


def _fail(reason: str) -> int:
    print(f"cinnox-sms: error: {one_line(reason)}", file=sys.stderr)
    return FAILED


def _table_options(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack's name (its TdrTableName output is used)")
    where.add_argument("--table", help="the TDR table's name")
    _aws_options(command)


def _aws_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--endpoint-url", help="an AWS endpoint, e.g. the local stack's emulator")
    command.add_argument("--region", help="the AWS region (default: your profile's)")


def _period_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--since",
        default="24h",
        help="how long ago (24h, 7d, 90m) or an ISO 8601 time; floored to its hour (default 24h)",
    )
    command.add_argument(
        "--until", default=None, help="the same forms; excluded, rounded up to the next hour (default: now)"
    )


def _rollup_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    rollups = command.add_mutually_exclusive_group(required=True)
    rollups.add_argument("--stack", help="a deployed stack's name (its RollupTableName output is used)")
    rollups.add_argument("--table", help="the rollup table's name (the stack's RollupTableName output, not the TDRs')")
    _aws_options(command)


def _missing(args: argparse.Namespace, names: list[str]) -> str | None:
    """Without --stack, every name must be given: the error for those that are not."""
    missing = [f"--{name.replace('_', '-')}" for name in names if not getattr(args, name)]
    return f"give --stack, or all of {', '.join(missing)}" if missing and not args.stack else None


_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-\d+")


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What no AWS call should be made with: the usage error for it (exit 2), or None."""
    endpoint = getattr(args, "endpoint_url", None)
    if endpoint is not None:
        parts = urllib.parse.urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"--endpoint-url {endpoint!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:4566)"
    region = getattr(args, "region", None)
    if region is not None and not _REGION.fullmatch(region):
        return f"--region {region!r} is not an AWS region name such as eu-west-1"
    if args.command == "status" and not args.transaction_id.strip():
        return "TRANSACTION_ID is empty"
    if (days := getattr(args, "retention_days", None)) is not None and days < 1:
        return f"--retention-days {days} must be 1 or more (the stack's TdrRetentionDays allows 1 to 36500)"
    if (minutes := getattr(args, "grace_minutes", None)) is not None and minutes < 0:
        return f"--grace-minutes {minutes} must be 0 or more"
    return None


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
    _table_options(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    report = commands.add_parser(
        "report",
        help="delivery by country over a period",
        description="Per country: SMS sent, delivered, undelivered, rejected, still pending, the delivery rate, and "
        "the median and 90th percentile time from Submitted to Delivered, from the stack's hourly rollups (one Query "
        "per UTC day, never a Scan). sent = the Submitted TDRs received in the period. The cohort view (default) "
        "tells what became of those SMS: delivered/undelivered/rejected = how many of them have that final status so "
        "far, pending = the rest. The arrival view counts each TDR in the hour it was received: "
        "delivered/undelivered/rejected = TDRs of that status received in the period (a late one in its own hour, "
        "whenever its SMS was sent), pending = sent less those three (never below 0). p50_est and p90_est are of the "
        "SMS sent in the period in either view, estimated from time buckets "
        f"({' '.join(label for _, label in TTF_BUCKETS[:-1])}; above the last: >{TTF_BUCKETS[-2][1]}).",
    )
    _period_options(report)
    report.add_argument(
        "--view",
        choices=VIEWS,
        default="cohort",
        help="cohort: the SMS sent in the period and their final status so far (default); "
        "arrival: the TDRs received in the period",
    )
    report.add_argument(
        "--by", choices=["day", "hour"], help="one line per UTC day or hour and country (default: the whole period)"
    )
    report.add_argument(
        "--html",
        metavar="FILE",
        help="also write the dashboard widget's table (per country over the whole period, worst first) to FILE: "
        "a page that stands alone (inline CSS, no script, nothing fetched)",
    )
    _rollup_options(report)
    waiting = commands.add_parser(
        "pending",
        help="the SMS sent in a period still without a final status",
        description="List the SMS whose Submitted TDR was received in the period and that have no final status "
        "(Delivered, Undelivered, Rejected) yet: transaction ID, country and when it was submitted, oldest first. "
        "Reads the stack's rollup table only: one Query per UTC day, then one per hour and country with SMS pending.",
    )
    _period_options(waiting)
    waiting.add_argument(
        "--older-than",
        default="0",
        help="only those submitted at least this long ago (90m, 6h, 2d; default 0: all)",
    )
    waiting.add_argument("--country", help="only SMS to this recipient country (e.g. VE)")
    _rollup_options(waiting)
    redrive = commands.add_parser(
        "redrive",
        help="send parked TDRs and overdue alerts back through the product",
        description="Write the TDRs waiting in the parking queue, and publish the alerts of failed SMS not alerted "
        "within the grace period, at any age, from the table (what the schedule's sweep does every 10 minutes); "
        "each is done once, so running it again does nothing new.",
    )
    redrive.add_argument("--stack", help="a deployed stack's name (table, queues and topic from its outputs)")
    redrive.add_argument("--table", help="the TDR table's name (without --stack)")
    redrive.add_argument("--parking-queue-url", help="the parking queue (without --stack)")
    redrive.add_argument("--failure-queue-url", help="the alert failure queue (without --stack)")
    redrive.add_argument("--topic-arn", help="the alert topic (without --stack)")
    redrive.add_argument(
        "--grace-minutes",
        type=int,
        help="alert the failures received at least this long ago (the stream's until then): with --stack, the "
        "stack's AlertGraceMinutes; without, 30 (the template's default)",
    )
    redrive.add_argument(
        "--retention-days",
        type=int,
        help="days a written TDR is kept (its TTL): with --stack, the stack's TdrRetentionDays; without, 400 "
        "(the template's default)",
    )
    _aws_options(redrive)
    hooks = commands.add_parser(
        "subscription",
        help="what CINNOX has subscribed for the app; --resend subscribes the webhook again",
        description="List the app's event hooks as CINNOX reports them (webhook secrets hidden: the webhook secret's "
        "values are read first and never printed, whatever shape CINNOX gives the URL), and with --resend PATCH the "
        "outbound-SMS subscription to the stack's webhook URL again. The AppToken is sent to the base URL's host "
        "alone: https:// to a host CinnoxAllowedHosts allows (http:// only for localhost), no redirect followed.",
    )
    hooks.add_argument("--stack", help="a deployed stack's name (CINNOX settings and webhook from it)")
    hooks.add_argument("--base-url", help="CINNOX's API base URL (without --stack)")
    hooks.add_argument("--app-id", help="the CINNOX AppID (without --stack)")
    hooks.add_argument("--token-secret", help="the Secrets Manager secret holding the AppToken (without --stack)")
    hooks.add_argument("--webhook-url", help="the webhook base URL, for --resend (without --stack)")
    hooks.add_argument(
        "--webhook-secret-id", help="the webhook secret, whose values are never printed (without --stack)"
    )
    hooks.add_argument(
        "--allowed-hosts",
        help="hosts the base URL may name, as the stack's CinnoxAllowedHosts (without --stack; default *.cinnox.com)",
    )
    hooks.add_argument("--resend", action="store_true", help="subscribe the webhook URL again")
    hooks.add_argument("--list-path", default=EVENT_HOOKS_PATH, help=f"the event-hook list path ({EVENT_HOOKS_PATH})")
    _aws_options(hooks)
    rollups = commands.add_parser("rollups", help="maintain the rollups the report and pending read")
    rollup_commands = rollups.add_subparsers(dest="rollups_command", required=True, metavar="ROLLUPS_COMMAND")
    rebuilding = rollup_commands.add_parser(
        "rebuild",
        help="recompute the rollups of whole hours from the TDR table",
        description="Recompute the rollups (arrival and cohort counts, time-to-final buckets, SMS lists) of the whole "
        "UTC hours from --since to --until from the TDR table: a Scan in parallel segments, its read cost printed "
        "before it starts. Idempotent, and safe while MetricsFunction counts: the TDRs of those hours received before "
        "the rebuild's fence are counted by the rebuild, those after it by the stream (docs/operations.md).",
    )
    rebuilding.add_argument(
        "--since", required=True, help="how long ago (24h, 7d) or an ISO 8601 time; floored to its hour"
    )
    rebuilding.add_argument("--until", help="the same forms; excluded, rounded up to the next hour (default: now)")
    rebuild.add_options(rebuilding)
    _aws_options(rebuilding)
    args = parser.parse_args(argv)
    if problem := _usage_problem(args):
        (rebuilding if args.command == "rollups" else commands.choices[args.command]).error(problem)
    if args.command == "subscription":
        resend = ["webhook_url"] if args.resend else []
        if problem := _missing(args, ["base_url", "app_id", "token_secret", "webhook_secret_id", *resend]):
            hooks.error(problem)
    redrive_names = ["table", "parking_queue_url", "failure_queue_url", "topic_arn"]
    if args.command == "redrive" and (problem := _missing(args, redrive_names)):
        redrive.error(problem)
    if args.command == "rollups" and (problem := _missing(args, ["table", "rollup_table"])):
        rebuilding.error(problem)
    if args.command in ("report", "pending", "rollups"):
        command = {"report": report, "pending": waiting}.get(args.command, rebuilding)
        try:
            now = datetime.now(UTC)
            period = Period.covering(moment(args.since, now), moment(args.until, now) if args.until else now)
            if args.command != "rollups" and period.end - period.start > timedelta(days=LONGEST_DAYS):
                queries = ((period.end - HOUR).date() - period.start.date()).days + 1
                raise ValueError(
                    f"{period} is longer than {LONGEST_DAYS} days: {queries:,} Queries of the rollup table (one per "
                    f"UTC day), whose items go with the TDRs (TdrRetentionDays); split it into periods of "
                    f"{LONGEST_DAYS} days or less"
                )
            if args.command == "pending":
                age = duration(args.older_than)
        except ValueError as error:
            command.error(str(error))
    last_call = LastCall()
    try:
        session = session or boto3.Session(region_name=args.region)
        with naming_calls(session) as last_call:
            if args.command == "subscription":
                return run_subscription(session, args)
            if args.command == "report":
                return run_report(session, args, period)
            if args.command == "pending":
                return run_pending(session, args, period, age, now)
            if args.command == "rollups":
                return run_rebuild(session, args, period)
            table = args.table or stack_output(session, args.endpoint_url, args.stack, "TdrTableName")
            dynamodb = session.client("dynamodb", endpoint_url=args.endpoint_url)
            if args.command == "redrive":
                return run_redrive(session, args, table, dynamodb)
            found = sms_status(dynamodb, table, args.transaction_id)
    except AWS_ERRORS as error:
        return _fail(describe(error, last_call.operation))
    except LookupError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print("cinnox-sms: interrupted", file=sys.stderr)
        return INTERRUPTED
    if found is None:
        print(f"cinnox-sms: no TDR stored for TransactionID {args.transaction_id!r} in {table}", file=sys.stderr)
        return NOT_FOUND
    print(json.dumps(as_json(found), indent=2) if args.json else as_text(found))
    return 0


def run_report(session: boto3.Session, args: argparse.Namespace, period: Period) -> int:
    table = args.table or stack_output(session, args.endpoint_url, args.stack, "RollupTableName")
    dynamodb = session.client("dynamodb", endpoint_url=args.endpoint_url)
    try:
        counts = list(read_rollups(dynamodb, table, DaysRead(period)))
    except ClientError as error:
        return _not_rollups(table, error)
    lines = by_country(counts, args.by, args.view)
    if args.html:  # the widget's table: per country over the whole period, whatever --by prints
        Path(args.html).write_text(page(by_country(counts, None, args.view), period, args.view), encoding="utf-8")
        print(f"cinnox-sms: wrote {args.html}", file=sys.stderr)
    if lines or args.format != "table":  # machine output stays parseable when empty
        print(render(lines, args.format, period, args.by, args.view))
    else:
        print(f"no SMS in {table} for {period}")
    return 0


def run_pending(session: boto3.Session, args: argparse.Namespace, period: Period, age: timedelta, now: datetime) -> int:
    table = args.table or stack_output(session, args.endpoint_url, args.stack, "RollupTableName")
    dynamodb = session.client("dynamodb", endpoint_url=args.endpoint_url)
    country = args.country.strip().upper() if args.country else None
    try:
        found = pending.read_pending(dynamodb, table, DaysRead(period), country=country, age=age, now=now)
    except ClientError as error:
        return _not_rollups(table, error)
    print(pending.render(found, args.format, period, age=age, country=country))
    return 0


def run_rebuild(session: boto3.Session, args: argparse.Namespace, period: Period) -> int:
    tdr_table = args.table or stack_output(session, args.endpoint_url, args.stack, "TdrTableName")
    rollup_table = args.rollup_table or stack_output(session, args.endpoint_url, args.stack, "RollupTableName")
    retention = args.retention_days
    if retention is None:  # the rollups expire with the TDRs: the stack's retention, not a guess
        retention = (
            int(stack_parameter(session, args.endpoint_url, args.stack, "TdrRetentionDays")) if args.stack else 400
        )
    dynamodb = session.client("dynamodb", endpoint_url=args.endpoint_url)
    return rebuild.run(dynamodb, tdr_table, rollup_table, retention, period, args)


def _not_rollups(table: str, error: ClientError) -> int:
    """A Query the table refused as invalid: usually the TDR table given where the rollups are (its keys
    are not day/slot); anything else goes up as any AWS error does."""
    if error.response.get("Error", {}).get("Code") != "ValidationException":
        raise error
    return _fail(
        f"{table} is not a rollup table (keys day and slot): give the stack's RollupTableName output "
        f"({describe(error, 'dynamodb Query')})"
    )


def run_redrive(session: boto3.Session, args: argparse.Namespace, table: str, dynamodb: Any) -> int:
    def where(flag: str, output: str) -> str:
        return str(getattr(args, flag) or stack_output(session, args.endpoint_url, args.stack, output))

    sqs = session.client("sqs", endpoint_url=args.endpoint_url)
    done = Redriven()
    # A parked TDR is written with the TTL the webhook would have given it: the stack's, not a guess.
    retention = args.retention_days
    if retention is None:
        retention = (
            int(stack_parameter(session, args.endpoint_url, args.stack, "TdrRetentionDays")) if args.stack else 400
        )
    redrive_parked(sqs, where("parking_queue_url", "ParkingQueueUrl"), TdrStore(dynamodb, table, retention), done)
    grace = args.grace_minutes
    if grace is None:  # what the stream is left before the sweep takes a failure: the stack's, not a guess
        grace = int(stack_parameter(session, args.endpoint_url, args.stack, "AlertGraceMinutes")) if args.stack else 30
    sweep = OverdueAlerts(
        AlertLedger(dynamodb, table),
        AlertPublisher(session.client("sns", endpoint_url=args.endpoint_url), where("topic_arn", "AlertTopicArn")),
        timedelta(minutes=grace),
    )
    redrive_alerts(sqs, where("failure_queue_url", "AlertFailureQueueUrl"), sweep, done)
    print("\n".join(done.lines()))
    return 0 if not done.left_in_queue else NOT_FOUND


def run_subscription(session: boto3.Session, args: argparse.Namespace) -> int:
    secrets = session.client("secretsmanager", endpoint_url=args.endpoint_url)
    redact = Redactor()  # CINNOX may quote the URL or the token back: neither is printed
    try:
        settings = subscription_settings(session, args)
        hosts = allowed_hosts(settings["allowed_hosts"])
        checked_base_url(settings["base_url"], hosts)  # before the AppToken is read: it goes there alone
        # The webhook secret is hidden by its values (the current one, CINNOX's, the one before), whatever
        # shape CINNOX gives the URL back in: read before anything CINNOX says can be printed.
        webhook = read_webhook_secrets(secrets, settings["webhook_secret_id"])
        for value in (webhook.current, webhook.subscribed, previous_webhook_secret(secrets, settings)):
            if value:
                redact.add(value, urllib.parse.quote(value, safe=""))
        token = app_token_from_secret(secrets.get_secret_value(SecretId=settings["token_secret"])["SecretString"])
        redact.add(token)
        client = CinnoxClient(settings["base_url"], token, retry=RetryPolicy(3, 0.5, 4.0), allowed=hosts)
        if args.resend:
            current = read_current(secrets, settings["webhook_secret_id"])
            redact.add(current.value)
            state = client.set_outbound_sms_subscription(
                settings["app_id"], enabled=True, url=f"{settings['webhook_url'].rstrip('/')}/{current.value}"
            )
            # As the deploy does: only now that CINNOX has this URL does the webhook stop taking the one before.
            mark_subscribed(secrets, settings["webhook_secret_id"], current.version_id)
            print(f"subscribed again (updatedAt {state.updated_at or 'not given'})")
        listed = client.event_hooks(settings["app_id"], args.list_path)
    except (CinnoxError, ValueError) as error:
        return _fail(f"CINNOX: {redact(str(error))}")
    print(redact(json.dumps(hide_url_secrets(redacted(listed, redact)), indent=2)))
    return 0


def previous_webhook_secret(secrets: Any, settings: dict[str, str]) -> str | None:
    """The value before the current one (AWSPREVIOUS), which CINNOX may still hold; None when there is none."""
    try:
        answer = secrets.get_secret_value(SecretId=settings["webhook_secret_id"], VersionStage="AWSPREVIOUS")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return str(answer["SecretString"]).strip()


def redacted(value: Any, redact: Redactor) -> Any:
    """Every string of a JSON value (keys too) with the known secrets replaced by ***."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, redact) for v in value]
    return value


def subscription_settings(session: boto3.Session, args: argparse.Namespace) -> dict[str, str]:
    if not args.stack:
        names = ("base_url", "app_id", "token_secret", "webhook_url", "webhook_secret_id", "allowed_hosts")
        return {k: getattr(args, k) or "" for k in names}
    cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url)
    [described] = cloudformation.describe_stacks(StackName=args.stack)["Stacks"]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    try:
        return {
            "base_url": parameters["CinnoxBaseUrl"],
            "app_id": parameters["CinnoxAppId"],
            "token_secret": parameters["CinnoxAppTokenSecret"],
            "webhook_url": outputs["WebhookBaseUrl"],
            "webhook_secret_id": outputs["WebhookSecretArn"],
            # A stack from before the parameter: CINNOX's hosts alone, as its custom resource now allows.
            "allowed_hosts": parameters.get("CinnoxAllowedHosts", ""),
        }
    except KeyError as missing:
        raise LookupError(f"stack {args.stack} has no {missing.args[0]}") from None


def hide_url_secrets(value: Any) -> Any:
    """Webhook URLs end in the secret: show them without it (a second guard: the secret's values are redacted
    before, whatever the URL's shape)."""
    if (
        isinstance(value, str)
        and value.lower().startswith(("http://", "https://"))
        and value.rstrip("/").count("/") > 3
    ):
        return value.rstrip("/").rsplit("/", 1)[0] + "/***"
    if isinstance(value, dict):
        return {k: hide_url_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [hide_url_secrets(v) for v in value]
    return value


def stack_parameter(session: boto3.Session, endpoint_url: str | None, stack: str, name: str) -> str:
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for parameter in described.get("Parameters", []):
        if parameter["ParameterKey"] == name:
            return str(parameter.get("ParameterValue", ""))
    raise LookupError(f"stack {stack} has no parameter {name}")


def stack_output(session: boto3.Session, endpoint_url: str | None, stack: str, name: str) -> str:
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in described.get("Outputs", []):
        if output["OutputKey"] == name:
            return str(output["OutputValue"])
    raise LookupError(f"stack {stack} has no output {name}")


# Shown by the item's attribute names; the raw body is long and the TTL is the table's business.
# receivedAt is always shown ("" when the item has none).
_NOT_SHOWN = {"transaction_id", "status", "raw", "expires_at"}


def as_json(found: SmsStatus) -> dict[str, Any]:
    # A status we do not know is shown as stored, with "knownStatus": false; "outOfShape" (an attribute)
    # names the fields kept as received.
    return {
        StoredTdr.attribute("transaction_id"): found.transaction_id,
        "currentStatus": str(found.current),
        "failed": found.failed,
        "history": [
            {"status": str(r.status)}
            | ({} if r.known else {"knownStatus": False})
            | r.stored.model_copy(update={"received_at": r.received_at}).as_record(_NOT_SHOWN)
            for r in found.history
        ],
    }


def as_text(found: SmsStatus) -> str:
    """For the terminal: what a sender wrote (and a hand edit) on one line, unsafe characters as visible escapes."""
    latest = found.history[-1].stored
    unknown = "" if found.history[-1].known else " (a status we do not know)"
    lines = [
        f"SMS {line(found.transaction_id)}: {line(str(found.current))}"
        f"{' (not delivered)' if found.failed else ''}{unknown}",
        f"  recipient  {line(latest.recipient or 'unknown')} ({line(latest.recipient_country or 'country unknown')})",
        "  history",
    ]
    for report in found.history:
        stored = report.stored
        notes = [
            stored.exception,
            stored.response_code and f"response code {stored.response_code}",
            None if report.known else "a status we do not know",
            stored.out_of_shape and f"out of shape: {stored.out_of_shape.replace(',', ', ')}",
        ]
        details = line(", ".join(note for note in notes if note))
        status = line(str(report.status))
        lines.append(f"    {status:<12} received {line(report.received_at)}{'  ' + details if details else ''}")
    return "\n".join(lines)
