"""SMS with no final status: found once their hour is past NoFinalStatusHours, reported once to machines
(one alert each) and once in all to people (one digest per check), never again, also when a final status
comes later.

The TDRs go through the real metrics function (rollups, cohort counts, SMS lists) and the check runs with
its clock moved past the deadline, against moto's DynamoDB and SNS.

AWS rules relied on:
- SNS API Reference, PublishBatch: at most 10 entries; each entry answered in Successful or Failed.
- DynamoDB API Reference, PutItem: a ConditionExpression that fails writes nothing (the hour's claim).
- SNS Developer Guide, "Amazon SNS subscription filter policies": the digest queue's policy on `status` keeps
  NoFinalStatus alerts out of the failed-SMS digests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cinnox_sms.item import StoredTdr
from cinnox_sms.model import Tdr
from cinnox_sms.nofinal import NO_FINAL_STATUS, CheckResult, DigestNotPublished, NoFinalStatusCheck, due_hours
from cinnox_sms.settings import NoFinalStatusSettings
from cinnox_sms_cli.main import main
from local_stack.template import ROOT, load_function_module
from support import LambdaContext, Stack, emf, stream_records, tdr

HOUR = datetime(2026, 11, 29, 7, tzinfo=UTC)
DEADLINE = int(NoFinalStatusSettings.model_fields["deadline_hours"].default)


def store(stack: Stack, transaction_id: str, status: str, country: str, received_at: datetime) -> None:
    body = tdr(TransactionID=transaction_id, Status=status, RecipientCountry=country)
    item = StoredTdr.item_from_tdr(Tdr.model_validate(body), "{}", received_at, received_at + timedelta(days=400))
    boto3.client("dynamodb").put_item(TableName=stack.table_name, Item=item)


def count_stream(metrics_function: ModuleType, stack: Stack, context: LambdaContext) -> None:
    """What the Stored mapping does: the stream's records to the metrics function (a replay skips what it counted)."""
    records = stream_records(stack)
    shard = boto3.client("dynamodbstreams").describe_stream(StreamArn=stack.attrs["TdrTable.StreamArn"])
    shard_id = shard["StreamDescription"]["Shards"][0]["ShardId"]
    metrics_function.lambda_handler(
        {"Records": records, "shardId": shard_id, "state": {}, "window": {}, "isFinalInvokeForWindow": False},
        context,
    )


class ScheduledCheck:
    """The check as the function builds it, with its clock at a chosen moment, run through the function's
    handler as its schedule runs it (so the IAM rehearsal judges its calls against its role)."""

    def __init__(self, module: ModuleType, context: LambdaContext, at: datetime) -> None:
        settings = NoFinalStatusSettings.from_env()
        self.check = NoFinalStatusCheck.from_settings(
            settings, boto3.client("dynamodb"), boto3.client("sns"), now=lambda: at
        )
        self._module = module
        self._context = context

    def run(self) -> CheckResult:
        self._module.check = lambda: self.check  # type: ignore[attr-defined]
        return CheckResult(**self._module.lambda_handler({}, self._context))


CheckAt = Callable[[datetime], ScheduledCheck]


@pytest.fixture
def check_at(no_final_status: ModuleType, context: LambdaContext) -> CheckAt:
    return lambda at: ScheduledCheck(no_final_status, context, at)


@pytest.fixture
def no_final_status(
    template: Any, stack: Stack, monkeypatch: pytest.MonkeyPatch, metrics_function: ModuleType
) -> ModuleType:
    """The check function's environment (from the template), after the metrics function's."""
    for name, value in stack.environment("NoFinalStatusFunction").items():
        monkeypatch.setenv(name, value)
    module = load_function_module(template, "NoFinalStatusFunction")
    module.check.cache_clear()
    return module


PAST = HOUR + timedelta(hours=DEADLINE + 1, minutes=5)  # 07:00's SMS are all past the deadline


def counted_past_the_deadline(stack: Stack, metrics_function: ModuleType, context: LambdaContext) -> set[str]:
    """two_countries' SMS stored and counted by the metrics function: the IDs of those without a final status."""
    pending = two_countries(stack)
    count_stream(metrics_function, stack, context)
    return pending


def two_countries(stack: Stack) -> set[str]:
    """SMS to HK and VE submitted at 07:xx; some with a final status. The IDs of those without one."""
    plan = {
        "hk-1": "Delivered",
        "hk-2": None,
        "hk-3": "Undelivered",
        "ve-1": None,
        "ve-2": None,
        "ve-3": "Rejected",
        "ve-4": "Delivered",
    }
    for index, (sms, final) in enumerate(plan.items()):
        country = sms[:2].upper()
        store(stack, sms, "Submitted", country, HOUR + timedelta(minutes=index))
        if final:
            store(stack, sms, final, country, HOUR + timedelta(minutes=index, seconds=30))
    return {sms for sms, final in plan.items() if final is None}


def test_sms_without_a_final_status_are_reported_once_to_machines_and_people(
    no_final_status: ModuleType,
    metrics_function: ModuleType,
    stack: Stack,
    context: LambdaContext,
    alert_inbox: Callable[[], list[dict[str, Any]]],
    digest_inbox: Callable[[], list[dict[str, Any]]],
    check_at: CheckAt,
) -> None:
    # Given SMS in two countries, some with a final status, counted by the metrics function
    pending = counted_past_the_deadline(stack, metrics_function, context)
    # When the check runs before the deadline, then twice past it
    before = check_at(HOUR + timedelta(hours=DEADLINE)).run()
    past = PAST
    first, second = check_at(past).run(), check_at(past + timedelta(hours=1)).run()
    # Then nothing before the deadline; past it, each SMS without a final status is one alert, for machines
    assert before.found == 0
    alerts = alert_inbox()
    assert sorted(json.loads(a["Message"])["transactionId"] for a in alerts) == sorted(pending)
    assert {a["MessageAttributes"]["status"]["Value"] for a in alerts} == {NO_FINAL_STATUS}
    assert {a["MessageAttributes"]["country"]["Value"] for a in alerts} == {"HK", "VE"}
    # And one digest in all for people, counting them by country and hour, with the command that lists them
    [digest] = digest_inbox()
    assert digest["total"] == len(pending)
    assert {(line["country"], line["hour"], line["sms"]) for line in digest["byCountryAndHour"]} == {
        ("HK", "2026-11-29T07", 1),
        ("VE", "2026-11-29T07", 2),
    }
    assert digest["command"].startswith("cinnox-sms pending --stack ")
    # And the second run reported nothing again
    assert (first.found, first.published, first.digests) == (len(pending), len(pending), 1)
    assert (second.found, second.published, second.digests) == (0, 0, 0)


def test_a_final_status_after_the_report_counts_in_the_report_and_is_not_reported(
    capsys: pytest.CaptureFixture[str],
    no_final_status: ModuleType,
    metrics_function: ModuleType,
    stack: Stack,
    context: LambdaContext,
    alert_inbox: Callable[[], list[dict[str, Any]]],
    digest_inbox: Callable[[], list[dict[str, Any]]],
    check_at: CheckAt,
) -> None:
    # Given SMS reported as having no final status
    pending = counted_past_the_deadline(stack, metrics_function, context)
    past = PAST
    check_at(past).run()
    assert len(alert_inbox()) == len(pending)
    digest_inbox()
    # When one's Delivered TDR arrives a day late, is counted, and the check runs again
    store(stack, "ve-1", "Delivered", "VE", past + timedelta(minutes=30))
    count_stream(metrics_function, stack, context)
    again = check_at(past + timedelta(hours=1)).run()
    # Then it is not reported again, and nothing else is
    assert again.found == 0
    assert alert_inbox() == []
    assert digest_inbox() == []
    # And its cohort (07:00, VE) counts it delivered, in the "more" bucket (over 12 h)
    item = boto3.client("dynamodb").get_item(
        TableName=stack.refs["RollupTable"], Key={"day": {"S": "2026-11-29"}, "slot": {"S": "07#VE"}}
    )["Item"]
    assert item["cohortDelivered"]["N"] == "2"
    assert item["ttfDelivered#more"]["N"] == "1"
    # And the report (its default, the cohort view) counts it delivered among the SMS sent that hour
    capsys.readouterr()
    period = ["--since", "2026-11-29T07:00:00Z", "--until", "2026-11-29T08:00:00Z", "--format", "json"]
    assert main(["report", "--table", stack.refs["RollupTable"], *period]) == 0
    [ve] = [line for line in json.loads(capsys.readouterr().out) if line["country"] == "VE"]
    assert (ve["view"], ve["sent"], ve["delivered"], ve["rejected"], ve["pending"]) == ("cohort", 4, 2, 1, 1)


def test_the_handler_emits_one_metric_per_check_and_is_off_at_zero_hours(
    no_final_status: ModuleType,
    metrics_function: ModuleType,
    stack: Stack,
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given nothing stored: a quiet check
    capsys.readouterr()
    # When the function runs from its schedule, with events/nofinal-schedule.json (what `sam local invoke
    # NoFinalStatusFunction -e` sends; a ScheduleV2 event without Input: the handler reads nothing of it)
    event = json.loads((ROOT / "events" / "nofinal-schedule.json").read_text())
    answer = no_final_status.lambda_handler(event, context)
    # Then it says so with one datapoint, zero, that the alarm watches
    [blob] = [b for b in emf(capsys.readouterr().out) if "SmsWithNoFinalStatus" in b]
    assert blob["SmsWithNoFinalStatus"] == [0.0]
    assert blob["service"] == "cinnox-sms-nofinal"
    assert answer["found"] == 0
    # And with NoFinalStatusHours 0 it reads nothing at all
    monkeypatch.setenv("NO_FINAL_STATUS_HOURS", "0")
    no_final_status.check.cache_clear()
    assert no_final_status.lambda_handler({}, context)["hours_checked"] == 0


def test_an_hour_claimed_by_a_run_that_died_is_not_reported_again(
    no_final_status: ModuleType,
    metrics_function: ModuleType,
    stack: Stack,
    context: LambdaContext,
    alert_inbox: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    check_at: CheckAt,
) -> None:
    # Given SMS past the deadline, and a run that dies after claiming their hour, before SNS answered
    counted_past_the_deadline(stack, metrics_function, context)
    past = PAST
    dying = check_at(past)

    def die(*_: Any, **__: Any) -> Any:
        raise SystemExit("the execution environment stopped")

    monkeypatch.setattr(dying.check, "_publish_alerts", die)
    with pytest.raises(SystemExit):
        dying.run()
    # When the next run comes
    result = check_at(past + timedelta(hours=1)).run()
    # Then the claimed hour is not reported again (at most once), and nothing went out twice
    assert result.found == 0
    assert alert_inbox() == []


def test_due_hours_are_whole_hours_older_than_the_deadline() -> None:
    # Given 2026-11-30 08:05 and a 24-hour deadline
    hours = due_hours(datetime(2026, 11, 30, 8, 5, tzinfo=UTC), 24, lookback_hours=3)
    # Then the newest due hour is 2026-11-29 07:00 (all its SMS are 24 h old by 08:00), oldest first
    assert hours == [datetime(2026, 11, 29, h, tzinfo=UTC) for h in (5, 6, 7)]


def test_no_final_status_alerts_stay_out_of_the_failed_sms_digests(template: Any) -> None:
    """SNS Developer Guide, "Amazon SNS subscription filter policies"."""
    # Given the digest queue's subscription to the alert topic
    properties = template.resource("DigestSubscription")["Properties"]
    # Then it takes failed SMS only: the no-final-status check sends people its own digest
    assert properties["FilterPolicy"] == {"status": ["Undelivered", "Rejected"]}
    assert NO_FINAL_STATUS not in properties["FilterPolicy"]["status"]


class RefusingSns:
    """An SNS client that refuses chosen things: PublishBatch entries of some SMS (always, as a policy would),
    and the first digest Publish (as a throttle would)."""

    def __init__(self, refuse_ids: set[str], refuse_first_digest: bool) -> None:
        self._client = boto3.client("sns")
        self._refuse_ids = refuse_ids
        self._refuse_digest = refuse_first_digest
        self.batch_entries = 0

    def publish_batch(self, **arguments: Any) -> Any:
        entries = arguments["PublishBatchRequestEntries"]
        self.batch_entries += len(entries)
        refused = [
            e for e in entries if json.loads(json.loads(e["Message"])["sqs"])["transactionId"] in self._refuse_ids
        ]
        kept = [e for e in entries if e not in refused]
        answer: dict[str, Any] = {}
        if kept:
            answer = dict(self._client.publish_batch(**{**arguments, "PublishBatchRequestEntries": kept}))
        failed = [
            {"Id": e["Id"], "Code": "KMSAccessDenied", "Message": "injected", "SenderFault": True} for e in refused
        ]
        return {"Successful": answer.get("Successful", []), "Failed": failed}

    def publish(self, **arguments: Any) -> Any:
        if self._refuse_digest:
            self._refuse_digest = False
            raise ClientError({"Error": {"Code": "Throttling", "Message": "injected"}}, "Publish")
        return self._client.publish(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_what_sns_refuses_is_counted_never_sent_twice_and_a_refused_digest_comes_with_the_next_run(
    no_final_status: ModuleType,
    metrics_function: ModuleType,
    stack: Stack,
    context: LambdaContext,
    alert_inbox: Callable[[], list[dict[str, Any]]],
    digest_inbox: Callable[[], list[dict[str, Any]]],
    check_at: CheckAt,
) -> None:
    # Given SMS past the deadline, and SNS refusing one SMS's alert each time and the first digest
    pending = counted_past_the_deadline(stack, metrics_function, context)
    past = PAST
    sns = RefusingSns({"hk-2"}, refuse_first_digest=True)
    scheduled = check_at(past)
    scheduled.check._sns = sns  # type: ignore[assignment]
    # When the check runs: the digest is refused
    with pytest.raises(DigestNotPublished):
        scheduled.run()
    # Then the other alerts went out once; the refused one was tried again, then counted as not published
    assert sorted(json.loads(a["Message"])["transactionId"] for a in alert_inbox()) == sorted(pending - {"hk-2"})
    assert sns.batch_entries == len(pending) + 2  # its two more attempts (PUBLISH_ATTEMPTS)
    assert digest_inbox() == []
    # When the next run comes
    later = check_at(past + timedelta(hours=1)).run()
    # Then no alert is sent again, and the digest that SNS refused goes out now, once, with every SMS found
    assert alert_inbox() == []
    [digest] = digest_inbox()
    assert digest["total"] == len(pending)
    assert (later.found, later.digests) == (0, 1)
    assert check_at(past + timedelta(hours=2)).run().digests == 0
    assert digest_inbox() == []


def test_an_sms_whose_final_status_came_before_its_submitted_tdr_is_not_taken_for_one_without(
    no_final_status: ModuleType,
    metrics_function: ModuleType,
    stack: Stack,
    context: LambdaContext,
    alert_inbox: Callable[[], list[dict[str, Any]]],
    check_at: CheckAt,
) -> None:
    # Given an SMS whose Delivered TDR was counted before its Submitted TDR was stored, then the Submitted
    store(stack, "ooo-1", "Delivered", "HK", HOUR + timedelta(seconds=10))
    count_stream(metrics_function, stack, context)
    store(stack, "ooo-1", "Submitted", "HK", HOUR + timedelta(seconds=20))
    count_stream(metrics_function, stack, context)
    # When the check runs past the deadline
    result = check_at(HOUR + timedelta(hours=DEADLINE + 1, minutes=5)).run()
    # Then it paired the early final first, and found nothing to report
    assert (result.paired_early, result.found) == (1, 0)
    assert alert_inbox() == []
