"""A DynamoDB stream event source mapping, as Lambda runs one.

It polls the stream, drops records the FilterCriteria do not keep, batches by
BatchSize and MaximumBatchingWindowInSeconds, and honours partial batch answers
(checkpointing at the first failed record), BisectBatchOnFunctionError,
MaximumRetryAttempts and the OnFailure destination.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from local_stack.runtime import FunctionError
from local_stack.template import REGION, dynamodb_filters, matches_filter

if TYPE_CHECKING:
    import boto3


_SEEN_LIMIT = 100_000  # eventIDs remembered: far more than moto's race can put between repeats


@dataclass(frozen=True)
class MappingConfig:
    """The event's Properties from the template, resolved."""

    stream_arn: str
    batch_size: int = 100
    batching_window: float = 0.0
    filters: tuple[dict[str, Any], ...] = ()
    report_item_failures: bool = False
    bisect: bool = False
    max_retries: int = -1  # -1: until the record expires, as Lambda's default
    on_failure_queue_url: str | None = None

    @classmethod
    def from_properties(cls, properties: dict[str, Any], queue_urls: dict[str, str]) -> MappingConfig:
        # Refused here, as Lambda refuses them at CreateEventSourceMapping: a pattern on a key
        # other than `dynamodb` would otherwise work locally and fail the first real deploy.
        filters = dynamodb_filters(properties.get("FilterCriteria"))
        destination = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        return cls(
            stream_arn=properties["Stream"],
            batch_size=int(properties.get("BatchSize", 100)),
            batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
            filters=filters,
            report_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            bisect=bool(properties.get("BisectBatchOnFunctionError", False)),
            max_retries=int(properties.get("MaximumRetryAttempts", -1)),
            on_failure_queue_url=queue_urls.get(destination) if destination else None,
        )


@dataclass
class MappingStats:
    records_read: int = 0
    records_filtered_out: int = 0
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    records_sent_to_on_failure: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class StreamMapping:
    def __init__(
        self,
        config: MappingConfig,
        invoke: Callable[[dict[str, Any]], Any],
        aws: boto3.Session,
        *,
        poll_interval: float = 0.1,
        log: Callable[[str], None] = lambda line: None,
        retry_pause: float = 0.05,
        function: str = "",
    ) -> None:
        self.config = config
        self.function = function  # the logical id of the function it feeds
        self._invoke = invoke
        self._streams = aws.client("dynamodbstreams")
        self._sqs = aws.client("sqs")
        self._poll_interval = poll_interval
        self._retry_pause = retry_pause
        self._log = log
        self.stats = MappingStats()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="stream-mapping")
        self._iterators: dict[str, str | None] = {}
        self._seen: dict[str, None] = {}  # recent eventIDs, oldest first

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_idle(self, timeout: float) -> bool:
        """Block until the stream is drained and nothing is in flight."""
        deadline = time.monotonic() + timeout
        self._idle.clear()
        while time.monotonic() < deadline:
            if self._idle.wait(0.05):
                return True
        return False

    # --- polling ---------------------------------------------------------------

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        first_pending_at = 0.0
        while not self._stop.is_set():
            try:
                fresh = self._poll()
            except Exception as error:  # the emulator may be going away; try again
                self._log(f"[local stack] stream poll failed: {type(error).__name__}: {error}")
                self._stop.wait(0.5)
                continue
            kept = [r for r in fresh if self._keep(r)]
            self.stats.records_read += len(fresh)
            self.stats.records_filtered_out += len(fresh) - len(kept)
            if kept and not pending:
                first_pending_at = time.monotonic()
            pending += kept
            # A batch goes when it is full or when the batching window has passed.
            while pending and (
                len(pending) >= self.config.batch_size
                or time.monotonic() - first_pending_at >= self.config.batching_window
            ):
                batch, pending = pending[: self.config.batch_size], pending[self.config.batch_size :]
                self._deliver(batch)
                first_pending_at = time.monotonic()
            if not fresh:
                if not pending:
                    self._idle.set()
                self._stop.wait(self._poll_interval)

    def _poll(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        description = self._streams.describe_stream(StreamArn=self.config.stream_arn)["StreamDescription"]
        for shard in description["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self.config.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue
            answer = self._streams.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard_id] = answer.get("NextShardIterator")
            records += [self._as_lambda_sees_it(r) for r in answer["Records"] if self._first_sight(r)]
        return records

    def _first_sight(self, record: dict[str, Any]) -> bool:
        """DynamoDB Streams shows each record once. moto numbers records without a lock, so two
        concurrent writes can share a sequence number and the iterator then returns one of them
        twice (same eventID): drop the repeat, as AWS would never send it."""
        event_id = record.get("eventID")
        if event_id is None:
            return True
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.pop(next(iter(self._seen)))
        return True

    def _as_lambda_sees_it(self, record: dict[str, Any]) -> dict[str, Any]:
        record = json.loads(json.dumps(record, default=_json_default))
        record.setdefault("eventSource", "aws:dynamodb")
        record.setdefault("awsRegion", REGION)
        record["eventSourceARN"] = self.config.stream_arn
        return record

    def _keep(self, record: dict[str, Any]) -> bool:
        return not self.config.filters or any(matches_filter(f, record) for f in self.config.filters)

    # --- delivering ------------------------------------------------------------

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        work = [(batch, 0)]
        while work and not self._stop.is_set():
            records, attempt = work.pop(0)
            failed_from = self._invoke_once(records)
            if failed_from is None:
                continue
            remaining = records[failed_from:]
            if 0 <= self.config.max_retries <= attempt:
                self._send_to_on_failure(remaining, attempt)
                continue
            self._stop.wait(self._retry_pause * (2**attempt))
            if failed_from == 0 and self.config.bisect and len(remaining) > 1:
                half = len(remaining) // 2
                work[:0] = [(remaining[:half], attempt + 1), (remaining[half:], attempt + 1)]
            else:
                work.insert(0, (remaining, attempt + 1))

    def _invoke_once(self, records: list[dict[str, Any]]) -> int | None:
        """Invoke; return the index to retry from, or None when the batch is done."""
        self.stats.invocations += 1
        self.stats.batch_sizes.append(len(records))
        try:
            answer = self._invoke({"Records": records})
        except FunctionError as error:
            self.stats.function_errors += 1
            self._log(f"[local stack] alert batch of {len(records)} failed: {error}")
            return 0
        if not self.config.report_item_failures or not isinstance(answer, dict):
            return None
        failures = answer.get("batchItemFailures") or []
        if not failures:
            return None
        self.stats.partial_failures += 1
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        identifiers = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(i not in sequence for i in identifiers):
            return 0  # an answer Lambda cannot use fails the whole batch
        return min(sequence.index(i) for i in identifiers)

    def _send_to_on_failure(self, records: list[dict[str, Any]], attempts: int) -> None:
        self.stats.records_sent_to_on_failure += len(records)
        if not self.config.on_failure_queue_url or not records:
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts + 1},
            "version": "1.0",
            "timestamp": datetime.now().astimezone().isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": next(iter(self._iterators), ""),
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": self.config.stream_arn,
            },
        }
        self._sqs.send_message(QueueUrl=self.config.on_failure_queue_url, MessageBody=json.dumps(message))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(value).decode()
    return str(value)


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message (ReceiveMessage with all attributes) as Lambda's SQS event record."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class QueueMapping:
    """An SQS event source mapping: receive, invoke, delete what succeeded (ReportBatchItemFailures)."""

    def __init__(
        self,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        aws: boto3.Session,
        *,
        batch_size: int = 10,
        report_item_failures: bool = True,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._invoke = invoke
        self._sqs = aws.client("sqs")
        self._batch_size = batch_size
        self._report_item_failures = report_item_failures
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="queue-mapping")
        self.invocations = 0
        self.deleted = 0

    @classmethod
    def from_properties(
        cls,
        properties: dict[str, Any],
        queue_urls: dict[str, str],
        invoke: Callable[[dict[str, Any]], Any],
        aws: boto3.Session,
        log: Callable[[str], None] = lambda line: None,
    ) -> QueueMapping:
        arn = properties["Queue"]
        return cls(
            queue_urls[arn],
            arn,
            invoke,
            aws,
            batch_size=int(properties.get("BatchSize", 10)),
            report_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            log=log,
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=min(self._batch_size, 10),
                    WaitTimeSeconds=1,
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as error:  # the emulator may be going away
                self._log(f"[local stack] queue poll failed: {type(error).__name__}")
                self._stop.wait(0.5)
                continue
            if messages:
                self._deliver(messages)

    def _deliver(self, messages: Sequence[Mapping[str, Any]]) -> None:
        self.invocations += 1
        try:
            answer = self._invoke({"Records": [sqs_record(m, self._queue_arn) for m in messages]})
        except FunctionError as error:
            self._log(f"[local stack] queue batch failed: {error}; the messages return after their visibility timeout")
            return
        failed: set[Any] = set()
        if self._report_item_failures and isinstance(answer, dict):
            failed = {f.get("itemIdentifier") for f in answer.get("batchItemFailures") or [] if isinstance(f, dict)}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
            self.deleted += len(done)
