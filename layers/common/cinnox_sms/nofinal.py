"""SMS with no final status: found once the hour they were submitted in is past the deadline, reported once.

The hourly check (NoFinalStatusFunction) works from the rollups, never a Scan:

1. early final statuses whose Submitted TDR is now stored are paired (rollup.pair_early), so that an SMS
   whose TDRs came out of order is not taken for one without a final status;
2. the cohort hours now wholly older than the deadline (``NoFinalStatusHours``) and not checked before,
   up to LOOKBACK_HOURS back, are read from the rollup items: a country whose SMS sent that hour outnumber
   its final statuses has SMS to look at, the others cost nothing more;
3. for those, the hour's SMS lists name the SMS without a final status, each then read in the TDR table (the
   truth: a final status the metrics function has not counted yet still clears it);
4. each hour is claimed (an account item, written only if absent) *before* its messages are published:
   one message per SMS on the alert topic, status ``NoFinalStatus``, for machines; then one digest on the
   digest topic for people, for every hour claimed and not yet digested, itself claimed before it is sent.

So an SMS is reported at most once: a run that dies between a claim and SNS's answer leaves that hour
(or digest) unsent rather than sending it twice, and `cinnox-sms pending` still lists its SMS. SNS's own
refusals are retried; what SNS still refuses is counted as not published, and a refused digest is
unclaimed, so the next run sends it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.chat import CHAT_PROTOCOL, encoded, literal, notification
from cinnox_sms.neutral import line
from cinnox_sms.rollup import (
    COHORT_ATTRIBUTES,
    COUNT_ATTRIBUTES,
    DAY,
    EXPIRES_AT,
    MAX_BATCH_GET_KEYS,
    SLOT,
    RollupKey,
    batch_get,
    list_query,
    pair_early,
    slot_range,
    unfinished,
)
from cinnox_sms.status import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

    from cinnox_sms.settings import NoFinalStatusSettings

NO_FINAL_STATUS = "NoFinalStatus"  # the alert's status attribute, for subscription filter policies
ACCOUNT_DAY = "#nofinal"  # an account item per cohort hour checked: slot "2026-11-29T07"
LOOKBACK_HOURS = 48  # hours past the deadline a run still checks: a check stopped this long catches up
ACCOUNT_TTL = timedelta(days=7)
SNS_BATCH_SIZE = 10  # PublishBatch's maximum (SNS API Reference)
PUBLISH_ATTEMPTS = 3
LINES_SHOWN = 30  # country-and-hour lines in the digest's text; the rest summed on one line
CHAT_LINES_SHOWN = 10  # country-and-hour lines in the chat notification (cinnox_sms.chat)
SUBJECT_LIMIT = 100  # SNS Publish: at most 100 printable ASCII characters
MESSAGE_TYPE = "cinnox-sms-no-final-status"
_HOUR = timedelta(hours=1)
# The Submitted TDR's attributes an alert carries (the raw body stays in the table).
_TDR_ATTRIBUTES = ("transactionId", "status", "appId", "serviceId", "recipientNumber", "recipientCountry", "receivedAt")
_FINALS = (Status.DELIVERED, Status.UNDELIVERED, Status.REJECTED)


def hour_label(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H")


def due_hours(now: datetime, deadline_hours: int, lookback_hours: int = LOOKBACK_HOURS) -> list[datetime]:
    """The cohort hours whose every SMS is now older than the deadline, the newest lookback_hours of them,
    oldest first: hour H is due once H + 1 h + deadline has passed."""
    newest = (now.astimezone(UTC) - timedelta(hours=deadline_hours)).replace(minute=0, second=0, microsecond=0)
    newest -= _HOUR
    return [newest - _HOUR * back for back in reversed(range(lookback_hours))]


@dataclass(frozen=True)
class PendingSms:
    """An SMS past the deadline with no final status, as its Submitted TDR tells it."""

    transaction_id: str
    submitted_at: str
    country: str
    record: dict[str, str]  # the Submitted TDR's text attributes (raw body left out)

    def attributes(self) -> dict[str, Any]:
        """Message attributes, as a failed SMS's alert has them, for subscription filter policies."""
        values = {
            "status": NO_FINAL_STATUS,
            "country": self.country,
            "appId": self.record.get("appId"),
            "serviceId": self.record.get("serviceId"),
        }
        return {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}


@dataclass
class HourAccount:
    """What one cohort hour's check found: its SMS with no final status, by country."""

    hour: datetime
    pending: list[PendingSms] = field(default_factory=list)

    @property
    def by_country(self) -> Counter[str]:
        return Counter(sms.country for sms in self.pending)


@dataclass(frozen=True)
class CheckResult:
    hours_checked: int
    found: int  # SMS past the deadline with no final status, reported by this run
    published: int  # machine messages SNS accepted
    not_published: int  # machine messages SNS refused after retries
    digests: int  # people's messages sent (0 or 1)
    paired_early: int  # early final statuses paired with their Submitted TDR first


class DigestNotPublished(RuntimeError):
    """SNS refused the people's digest: it was unclaimed, and the next run sends it."""


class NoFinalStatusCheck:
    """The hourly check: finds, reports once, and accounts for SMS past the deadline with no final status."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        sns: SNSClient,
        *,
        rollup_table: str,
        tdr_table: str,
        alert_topic_arn: str,
        digest_topic_arn: str,
        deadline_hours: int,
        retention_days: int,
        stack_name: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._dynamodb = dynamodb
        self._sns = sns
        self._rollups = rollup_table
        self._tdrs = tdr_table
        self._alert_topic = alert_topic_arn
        self._digest_topic = digest_topic_arn
        self._deadline = deadline_hours
        self._retention_days = retention_days
        self._stack = stack_name
        self._now = now

    @classmethod
    def from_settings(
        cls,
        settings: NoFinalStatusSettings,
        dynamodb: DynamoDBClient,
        sns: SNSClient,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> NoFinalStatusCheck:
        return cls(
            dynamodb,
            sns,
            rollup_table=settings.rollup_table_name,
            tdr_table=settings.tdr_table_name,
            alert_topic_arn=settings.alert_topic_arn,
            digest_topic_arn=settings.digest_topic_arn,
            deadline_hours=settings.deadline_hours,
            retention_days=settings.retention_days,
            stack_name=settings.stack_name,
            now=now,
        )

    def run(self) -> CheckResult:
        if self._deadline <= 0:
            return CheckResult(0, 0, 0, 0, 0, 0)  # NoFinalStatusHours 0: the check is off
        paired = pair_early(self._dynamodb, self._rollups, self._tdrs, self._retention_days)
        hours = due_hours(self._now(), self._deadline)
        checked = self._checked(hours[0], hours[-1])
        found = published = refused = 0
        todo = [hour for hour in hours if hour_label(hour) not in checked]
        cohorts = self._cohorts_to_look_at(todo)
        for hour in todo:
            account = HourAccount(hour, self._pending(hour, cohorts.get(hour, [])))
            if not self._claim(account):
                continue  # another run has it
            if not account.pending:
                continue  # claimed as checked: nothing to tell
            accepted, failed = self._publish_alerts(account.pending)
            self._close(account, accepted, failed)
            found += len(account.pending)
            published += accepted
            refused += failed
        digests = self._send_digest()
        return CheckResult(len(todo), found, published, refused, digests, paired)

    # --- finding ---------------------------------------------------------------------------------

    def _checked(self, first: datetime, last: datetime) -> set[str]:
        """The hours of the window an earlier run claimed (one Query of the account partition)."""
        items = self._query(
            KeyConditionExpression="#day = :day AND #slot BETWEEN :first AND :last",
            ExpressionAttributeNames={"#day": DAY, "#slot": SLOT},
            ExpressionAttributeValues={
                ":day": {"S": ACCOUNT_DAY},
                ":first": {"S": hour_label(first)},
                ":last": {"S": hour_label(last)},
            },
            ProjectionExpression="#slot",
            ConsistentRead=True,
        )
        return {item[SLOT]["S"] for item in items}

    def _cohorts_to_look_at(self, hours: Sequence[datetime]) -> dict[datetime, list[RollupKey]]:
        """Per hour, the countries whose SMS sent then outnumber their final statuses: one Query per UTC day."""
        wanted = set(hours)
        by_day: dict[str, list[datetime]] = {}
        for hour in hours:
            by_day.setdefault(hour.strftime("%Y-%m-%d"), []).append(hour)
        found: dict[datetime, list[RollupKey]] = {}
        sent = COUNT_ATTRIBUTES[Status.SUBMITTED]
        names = {"#day": DAY, "#slot": SLOT, "#sent": sent} | {f"#{s.name}": a for s, a in COHORT_ATTRIBUTES.items()}
        for day, day_hours in by_day.items():
            low, high = slot_range(min(h.hour for h in day_hours), max(h.hour for h in day_hours))
            items = self._query(
                KeyConditionExpression="#day = :day AND #slot BETWEEN :low AND :high",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":day": {"S": day}, ":low": {"S": low}, ":high": {"S": high}},
                ProjectionExpression=", ".join(["#slot", "#sent", *(f"#{s.name}" for s in COHORT_ATTRIBUTES)]),
            )
            for item in items:
                key = RollupKey.from_item(day, item[SLOT]["S"])
                finals = sum(int(item[a]["N"]) for a in COHORT_ATTRIBUTES.values() if a in item)
                if key.hour in wanted and int(item.get(sent, {}).get("N", "0")) > finals:
                    found.setdefault(key.hour, []).append(key)
        return found

    def _pending(self, hour: datetime, cohorts: Iterable[RollupKey]) -> list[PendingSms]:
        candidates: dict[str, str] = {}  # transaction ID -> submitted at
        for key in cohorts:
            candidates |= unfinished(self._query(**list_query(key)))
        pending = self._still_pending(candidates)
        return sorted(pending, key=lambda sms: (sms.submitted_at, sms.transaction_id))

    def _still_pending(self, candidates: Mapping[str, str]) -> list[PendingSms]:
        """The candidates the TDR table still has no final status for, with their Submitted TDR (BatchGetItem,
        four keys an SMS: the metrics function may not have counted a final status stored a moment ago)."""
        ids = sorted(candidates)
        per_call = MAX_BATCH_GET_KEYS // 4
        pending: list[PendingSms] = []
        for start in range(0, len(ids), per_call):
            chunk = ids[start : start + per_call]
            keys = [
                {"transactionId": {"S": tid}, "status": {"S": status.value}}
                for tid in chunk
                for status in (Status.SUBMITTED, *_FINALS)
            ]
            items = self._batch_get(keys)
            final_ids = {i["transactionId"]["S"] for i in items if i["status"]["S"] != Status.SUBMITTED.value}
            submitted = {i["transactionId"]["S"]: i for i in items if i["status"]["S"] == Status.SUBMITTED.value}
            for tid in chunk:
                if tid in final_ids or tid not in submitted:
                    continue  # a final status after all, or the Submitted TDR expired
                record = {name: value["S"] for name, value in submitted[tid].items() if "S" in value}
                country = (record.get("recipientCountry") or "??").upper()
                pending.append(PendingSms(tid, record.get("receivedAt") or candidates[tid], country, record))
        return pending

    # --- reporting -------------------------------------------------------------------------------

    def _claim(self, account: HourAccount) -> bool:
        """Writes the hour's account only if no run wrote it: the claim that makes each report at most once."""
        countries = {country: {"N": str(n)} for country, n in account.by_country.items()}
        item: dict[str, Any] = {
            DAY: {"S": ACCOUNT_DAY},
            SLOT: {"S": hour_label(account.hour)},
            "found": {"N": str(len(account.pending))},
            "countries": {"M": countries},
            "state": {"S": "publishing" if account.pending else "done"},
            # Only an hour that found SMS waits for a digest: a sparse attribute, so the Query finds just those.
            EXPIRES_AT: {"N": str(int((self._now() + ACCOUNT_TTL).timestamp()))},
        }
        if account.pending:
            item["undigested"] = {"S": "yes"}
        try:
            self._dynamodb.put_item(
                TableName=self._rollups,
                Item=item,
                ConditionExpression="attribute_not_exists(#slot)",
                ExpressionAttributeNames={"#slot": SLOT},
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _close(self, account: HourAccount, published: int, not_published: int) -> None:
        self._dynamodb.update_item(
            TableName=self._rollups,
            Key={DAY: {"S": ACCOUNT_DAY}, SLOT: {"S": hour_label(account.hour)}},
            UpdateExpression="SET #state = :done, published = :p, notPublished = :n",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":done": {"S": "done"},
                ":p": {"N": str(published)},
                ":n": {"N": str(not_published)},
            },
        )

    def _publish_alerts(self, pending: Sequence[PendingSms]) -> tuple[int, int]:
        """One message per SMS on the alert topic, ten a PublishBatch; entries SNS refuses are sent again
        (a refusal is no delivery). Returns (accepted, refused)."""
        accepted = refused = 0
        for start in range(0, len(pending), SNS_BATCH_SIZE):
            entries = {str(i): sms for i, sms in enumerate(pending[start : start + SNS_BATCH_SIZE])}
            for _ in range(PUBLISH_ATTEMPTS):
                try:
                    answer = self._sns.publish_batch(
                        TopicArn=self._alert_topic,
                        PublishBatchRequestEntries=[
                            self._alert_entry(entry_id, sms)  # type: ignore[misc]
                            for entry_id, sms in entries.items()
                        ],
                    )
                except (ClientError, BotoCoreError):
                    # Unknown whether SNS took them: not sent again, so never twice.
                    break
                accepted += len(answer.get("Successful", []))
                failed_ids = {f["Id"] for f in answer.get("Failed", [])}
                entries = {entry_id: sms for entry_id, sms in entries.items() if entry_id in failed_ids}
                if not entries:
                    break
            refused += len(entries)
        return accepted, refused

    def _alert_entry(self, entry_id: str, sms: PendingSms) -> dict[str, Any]:
        record = {
            **sms.record,
            "status": NO_FINAL_STATUS,
            "submittedAt": sms.submitted_at,
            "noFinalStatusHours": self._deadline,
        }
        text = "\n".join(
            [
                f"An SMS sent through CINNOX has had no final status for {self._deadline} h: "
                "nobody knows whether it arrived.",
                "",
                f"Transaction ID:  {printable(sms.transaction_id)}",
                f"Country:         {printable(sms.country)}",
                f"Submitted:       {printable(sms.submitted_at)}",
                "",
                f"See it: cinnox-sms status {printable(sms.transaction_id)} --stack {self._stack}",
            ]
        )
        machine = json.dumps(record, sort_keys=True, ensure_ascii=False)
        message = {"default": text, "email": text} | {p: machine for p in ("sqs", "lambda", "http", "https")}
        return {
            "Id": entry_id,
            "Subject": subject(f"SMS with no final status ({sms.country}): {sms.transaction_id}"),
            "Message": json.dumps(message, ensure_ascii=False),
            "MessageStructure": "json",
            "MessageAttributes": sms.attributes(),
        }

    def _send_digest(self) -> int:
        """One message for people covering every claimed hour not yet digested: claimed (the attribute removed)
        before it is sent, put back if SNS refuses it."""
        undigested = self._query(
            KeyConditionExpression="#day = :day",
            FilterExpression="attribute_exists(undigested)",
            ExpressionAttributeNames={"#day": DAY},
            ExpressionAttributeValues={":day": {"S": ACCOUNT_DAY}},
            ConsistentRead=True,
        )
        claimed = [item for item in undigested if self._set_undigested(item, claim=True)]
        if not claimed:
            return 0
        try:
            self._sns.publish(
                TopicArn=self._digest_topic,
                Subject=subject(digest_subject(claimed, self._deadline)),
                Message=json.dumps(self._digest_message(claimed), ensure_ascii=False),
                MessageStructure="json",
                MessageAttributes={"type": {"DataType": "String", "StringValue": MESSAGE_TYPE}},
            )
        except (ClientError, BotoCoreError) as error:
            for item in claimed:
                self._set_undigested(item, claim=False)
            raise DigestNotPublished(f"the no-final-status digest was not published: {error}") from error
        return 1

    def _set_undigested(self, item: Mapping[str, Any], *, claim: bool) -> bool:
        key = {DAY: item[DAY], SLOT: item[SLOT]}
        try:
            if claim:
                self._dynamodb.update_item(
                    TableName=self._rollups,
                    Key=key,
                    UpdateExpression="REMOVE undigested",
                    ConditionExpression="attribute_exists(undigested)",
                )
            else:
                self._dynamodb.update_item(
                    TableName=self._rollups,
                    Key=key,
                    UpdateExpression="SET undigested = :yes",
                    ExpressionAttributeValues={":yes": {"S": "yes"}},
                )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _digest_message(self, accounts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        lines = digest_lines(accounts)
        total = sum(n for _, _, n in lines)
        command = f"cinnox-sms pending --stack {self._stack} --older-than {self._deadline}h"
        text = [
            f"{total} SMS sent through CINNOX have had no final status (Delivered, Undelivered or Rejected) "
            f"for {self._deadline} hours or more: nobody knows whether they arrived.",
            "",
            "By country and the hour they were submitted (UTC):",
            *(f"  {printable(country):<8} {hour}  {n:>7}" for hour, country, n in lines[:LINES_SHOWN]),
        ]
        if len(lines) > LINES_SHOWN:
            text.append(f"  (and {sum(n for _, _, n in lines[LINES_SHOWN:])} more in {len(lines) - LINES_SHOWN} lines)")
        text += [
            "",
            "List them:",
            f"  {command}",
            "",
            "Each is reported once; a final status arriving later counts in the report.",
        ]
        body = "\n".join(text)
        machine = json.dumps(
            {
                "type": MESSAGE_TYPE,
                "noFinalStatusHours": self._deadline,
                "total": total,
                "byCountryAndHour": [{"hour": h, "country": c, "sms": n} for h, c, n in lines],
                "command": command,
            },
            ensure_ascii=False,
        )
        # Chat channels (Slack, Teams) get the https entry: a custom notification, the countries through literal.
        chat = [
            f"*{total} SMS* sent through CINNOX have had no final status for {self._deadline} hours or more.",
            "*By country and the hour they were submitted (UTC):*",
            *(f"• {literal(country)} {hour} {n}" for hour, country, n in lines[:CHAT_LINES_SHOWN]),
        ]
        if len(lines) > CHAT_LINES_SHOWN:
            rest = lines[CHAT_LINES_SHOWN:]
            chat.append(f"• {sum(n for _, _, n in rest)} more in {len(rest)} lines")
        notified = notification(
            title=subject(digest_subject(accounts, self._deadline)),
            lines=chat,
            next_steps=[f"List them: `{command}`"],
            keywords=["CINNOX SMS", NO_FINAL_STATUS],
            event_type=MESSAGE_TYPE,
            context={"stack": self._stack, "total": str(total), "noFinalStatusHours": str(self._deadline)},
        )
        return {"default": body, "email": body, "sqs": machine, CHAT_PROTOCOL: encoded(notified)}

    # --- DynamoDB reads --------------------------------------------------------------------------

    def _query(self, **arguments: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments = {"TableName": self._rollups, **arguments}
        while True:
            page = self._dynamodb.query(**arguments)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = {f"#a{i}": name for i, name in enumerate(_TDR_ATTRIBUTES)}
        return batch_get(
            self._dynamodb, self._tdrs, keys, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
        )


def digest_lines(accounts: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """(hour, country, SMS) of the accounts, most first."""
    lines = [
        (item[SLOT]["S"], country, int(n["N"]))
        for item in accounts
        for country, n in item.get("countries", {}).get("M", {}).items()
    ]
    return sorted(lines, key=lambda line: (-line[2], line[0], line[1]))


def digest_subject(accounts: Sequence[Mapping[str, Any]], deadline_hours: int) -> str:
    total = sum(int(item.get("found", {}).get("N", "0")) for item in accounts)
    return f"{total} SMS with no final status after {deadline_hours} h"


def printable(text: str) -> str:
    """Text a sender wrote, shown on one line: its unsafe characters (controls, bidi controls, non-characters)
    as visible escapes, as in every text for people (cinnox_sms.neutral): no line of ours can be faked."""
    return line(text)


def subject(text: str) -> str:
    """An SNS subject: printable ASCII, no line breaks, at most 100 characters."""
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."
