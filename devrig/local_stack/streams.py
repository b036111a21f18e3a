"""A DynamoDB stream event source mapping, as Lambda runs one.

It polls the stream, drops records the FilterCriteria do not keep, batches by
BatchSize and MaximumBatchingWindowInSeconds, and honours partial batch answers
(checkpointing at the first failed record), BisectBatchOnFunctionError,
MaximumRetryAttempts, the OnFailure destination and TumblingWindowInSeconds (Lambda Developer
Guide, "Using AWS Lambda with Amazon DynamoDB", tumbling windows: the event carries shardId,
window, state and the final-invoke flags; an answer without "state" is a failed invocation).
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
from local_stack.template import REGION, check_stream_mapping, dynamodb_filters, matches_filter

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
    tumbling_window: int = 0  # seconds; 0: none (no shardId, window or state in the event)
    parallelization_factor: int = 1  # one batch at a time per shard here, whatever the factor

    @classmethod
    def from_properties(cls, properties: dict[str, Any], queue_urls: dict[str, str]) -> MappingConfig:
        # Refused here, as Lambda refuses them at CreateEventSourceMapping: a pattern on a key
        # other than `dynamodb` would otherwise work locally and fail the first real deploy.
        filters = dynamodb_filters(properties.get("FilterCriteria"))
        check_stream_mapping(properties, f"DynamoDB event on {properties.get('Stream')}")
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
            tumbling_window=int(properties.get("TumblingWindowInSeconds", 0)),
            parallelization_factor=int(properties.get("ParallelizationFactor", 1)),
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
    final_invokes: int = 0  # tumbling windows closed


@dataclass
class _Window:
    """A shard's open tumbling window: its start (epoch seconds) and the state the function returned."""

    start: int
    state: Any = field(default_factory=dict)


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
        self._seen: dict[str, str] = {}  # recent eventIDs (oldest first) -> their shard
        self._windows: dict[str, _Window] = {}  # by shard: the open tumbling window

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
                self._close_windows(time.time())
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
            records += [self._as_lambda_sees_it(r) for r in answer["Records"] if self._first_sight(r, shard_id)]
        return records

    def _first_sight(self, record: dict[str, Any], shard_id: str = "") -> bool:
        """DynamoDB Streams shows each record once. moto numbers records without a lock, so two
        concurrent writes can share a sequence number and the iterator then returns one of them
        twice (same eventID): drop the repeat, as AWS would never send it."""
        event_id = record.get("eventID")
        if event_id is None:
            return True
        if event_id in self._seen:
            return False
        self._seen[event_id] = shard_id
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
        if not self.config.tumbling_window:
            self._deliver_batch(batch)
            return
        # A batch holds one shard's records of one window: split where either changes.
        runs: list[list[dict[str, Any]]] = []
        for record in batch:
            if runs and self._window_of(runs[-1][0]) == self._window_of(record):
                runs[-1].append(record)
            else:
                runs.append([record])
        for run in runs:
            shard, start = self._window_of(run[0])
            window = self._windows.get(shard)
            if window is not None and window.start != start:
                self._final_invoke(shard)
            self._windows.setdefault(shard, _Window(start))
            self._deliver_batch(run)

    def _shard_of(self, record: dict[str, Any]) -> str:
        return self._seen.get(record.get("eventID", ""), "") or next(iter(self._iterators), "")

    def _window_of(self, record: dict[str, Any]) -> tuple[str, int]:
        """The record's shard and the start of its tumbling window (by its ApproximateCreationDateTime)."""
        created = int(record.get("dynamodb", {}).get("ApproximateCreationDateTime") or time.time())
        return self._shard_of(record), created - created % self.config.tumbling_window

    def _window_event(self, records: list[dict[str, Any]], shard: str, *, final: bool = False) -> dict[str, Any]:
        window = self._windows[shard]
        iso = "%Y-%m-%dT%H:%M:%SZ"
        return {
            "Records": records,
            "window": {
                "start": time.strftime(iso, time.gmtime(window.start)),
                "end": time.strftime(iso, time.gmtime(window.start + self.config.tumbling_window)),
            },
            "state": window.state,
            "shardId": shard,
            "eventSourceARN": self.config.stream_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": False,
        }

    def _close_windows(self, now: float) -> None:
        for shard, window in list(self._windows.items()):
            if window.start + self.config.tumbling_window <= now:
                self._final_invoke(shard)

    def _final_invoke(self, shard: str) -> None:
        """The window's last invoke, no records, its state: retried until it succeeds (or max_retries), as
        Lambda pauses the shard until it does."""
        attempt = 0
        while self._invoke_once([], shard=shard, final=True) is not None:
            if self._stop.is_set() or 0 <= self.config.max_retries <= attempt:
                break
            self._stop.wait(self._retry_pause * (2 ** min(attempt, 6)))
            attempt += 1
        self.stats.final_invokes += 1
        self._windows.pop(shard, None)

    def _deliver_batch(self, batch: list[dict[str, Any]]) -> None:
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

    def _invoke_once(self, records: list[dict[str, Any]], *, shard: str = "", final: bool = False) -> int | None:
        """Invoke; return the index to retry from, or None when the batch is done."""
        self.stats.invocations += 1
        self.stats.batch_sizes.append(len(records))
        windowed = bool(self.config.tumbling_window)
        if windowed:
            shard = shard if final or not records else self._shard_of(records[0])
            event = self._window_event(records, shard, final=final)
        else:
            event = {"Records": records}
        try:
            answer = self._invoke(event)
        except FunctionError as error:
            self.stats.function_errors += 1
            self._log(f"[local stack] stream batch of {len(records)} failed: {error}")
            return 0
        if windowed:
            # Lambda Developer Guide, "Using AWS Lambda with Amazon DynamoDB" (tumbling windows): "If the
            # response does not contain a state property, Lambda considers this a failed invocation."
            if not isinstance(answer, dict) or "state" not in answer:
                self.stats.function_errors += 1
                self._log(f"[local stack] stream batch of {len(records)} failed: the answer carries no state")
                return 0
            self._windows[shard].state = answer["state"]
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


# --- SQS event source mappings -------------------------------------------------------------
# The ranges are Lambda's, in "Using Lambda with Amazon SQS" (Batching behavior; Configuring
# maximum concurrency) and the CreateEventSourceMapping API reference: Lambda refuses the
# mapping outside them, so the local stack refuses the template when it reads it.
SQS_MAX_BATCH_SIZE = 10_000  # standard queues (FIFO: 10)
SQS_BATCH_SIZE_WITHOUT_WINDOW = 10  # above it, MaximumBatchingWindowInSeconds must be at least 1 s
SQS_MAX_BATCHING_WINDOW = 300
SQS_MIN_CONCURRENCY, SQS_MAX_CONCURRENCY = 2, 1000  # ScalingConfig.MaximumConcurrency
INVOCATION_PAYLOAD_LIMIT = 6 * 1024 * 1024  # a synchronous invocation's payload ("Lambda quotas")
RECEIVE_LIMIT = 10  # ReceiveMessage's MaxNumberOfMessages


class QueueMappingError(ValueError):
    """An SQS event source mapping Lambda would refuse at CreateEventSourceMapping."""


@dataclass(frozen=True)
class QueueConfig:
    """An SQS event's Properties from the template, resolved and checked against Lambda's ranges."""

    queue_arn: str
    batch_size: int = 10
    batching_window: float = 0.0
    maximum_concurrency: int | None = None  # None: no limit of the mapping's own
    report_item_failures: bool = False

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> QueueConfig:
        batch_size = int(properties.get("BatchSize", 10))
        window = properties.get("MaximumBatchingWindowInSeconds")
        concurrency = properties.get("ScalingConfig", {}).get("MaximumConcurrency")
        where = f"SQS event on {properties.get('Queue')}"
        if not 1 <= batch_size <= SQS_MAX_BATCH_SIZE:
            raise QueueMappingError(f"{where}: BatchSize {batch_size} is outside 1-{SQS_MAX_BATCH_SIZE}")
        if window is not None and not 0 <= int(window) <= SQS_MAX_BATCHING_WINDOW:
            raise QueueMappingError(
                f"{where}: MaximumBatchingWindowInSeconds {window} is outside 0-{SQS_MAX_BATCHING_WINDOW}"
            )
        if batch_size > SQS_BATCH_SIZE_WITHOUT_WINDOW and (window is None or int(window) < 1):
            raise QueueMappingError(
                f"{where}: BatchSize {batch_size} needs MaximumBatchingWindowInSeconds of at least 1 "
                f"(Lambda Developer Guide: Using Lambda with Amazon SQS)"
            )
        if concurrency is not None and not SQS_MIN_CONCURRENCY <= int(concurrency) <= SQS_MAX_CONCURRENCY:
            raise QueueMappingError(
                f"{where}: ScalingConfig.MaximumConcurrency {concurrency} is outside "
                f"{SQS_MIN_CONCURRENCY}-{SQS_MAX_CONCURRENCY}"
            )
        return cls(
            queue_arn=properties["Queue"],
            batch_size=batch_size,
            batching_window=float(window or 0),
            maximum_concurrency=None if concurrency is None else int(concurrency),
            report_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
        )


@dataclass
class QueueStats:
    invocations: int = 0
    function_errors: int = 0
    deleted: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class QueueMapping:
    """An SQS event source mapping: gather a batch, invoke, delete what succeeded (ReportBatchItemFailures).

    As Lambda batches ("Using Lambda with Amazon SQS", Batching behavior): it keeps receiving until the
    batch holds BatchSize messages, the batching window has passed since the first, or the next message
    would take the event past the 6 MB invocation payload (that one goes back to the queue). One poller
    invokes one batch at a time: within ScalingConfig.MaximumConcurrency (at least 2) by construction,
    so the local stack never splits a window between two invocations as AWS's pollers may.
    """

    def __init__(
        self,
        queue_url: str,
        config: QueueConfig,
        invoke: Callable[[dict[str, Any]], Any],
        aws: boto3.Session,
        *,
        log: Callable[[str], None] = lambda line: None,
        payload_limit: int = INVOCATION_PAYLOAD_LIMIT,
    ) -> None:
        self._queue_url = queue_url
        self.config = config
        self._invoke = invoke
        self._sqs = aws.client("sqs")
        self._log = log
        self._payload_limit = payload_limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="queue-mapping")
        self.stats = QueueStats()

    @property
    def queue_arn(self) -> str:
        return self.config.queue_arn

    @property
    def invocations(self) -> int:
        return self.stats.invocations

    @property
    def deleted(self) -> int:
        return self.stats.deleted

    @classmethod
    def from_properties(
        cls,
        properties: dict[str, Any],
        queue_urls: dict[str, str],
        invoke: Callable[[dict[str, Any]], Any],
        aws: boto3.Session,
        log: Callable[[str], None] = lambda line: None,
    ) -> QueueMapping:
        config = QueueConfig.from_properties(properties)
        return cls(queue_urls[config.queue_arn], config, invoke, aws, log=log)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.gather()
            except Exception as error:  # the emulator may be going away
                self._log(f"[local stack] queue poll failed: {type(error).__name__}")
                self._stop.wait(0.5)
                continue
            if batch:
                self.deliver(batch)

    def gather(self, wait_seconds: int = 1, *, until_empty: bool = False) -> list[dict[str, Any]]:
        """One batch of messages (as ReceiveMessage returns them), gathered as Lambda gathers it.

        ``until_empty``: the window closes when the queue has nothing more to give, for a test that put a
        whole burst in the queue first and should not wait out the window.
        """
        batch: list[dict[str, Any]] = []
        size = len('{"Records": []}')
        first_at = 0.0
        while not self._stop.is_set() and len(batch) < self.config.batch_size:
            if batch and time.monotonic() - first_at >= self.config.batching_window:
                break
            wanted = min(RECEIVE_LIMIT, self.config.batch_size - len(batch))
            # Long polls until the first message; then short ones for the rest of the window.
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=0 if batch else wait_seconds,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                if not batch or self.config.batching_window == 0 or until_empty:
                    break
                self._stop.wait(0.05)
                continue
            if not batch:
                first_at = time.monotonic()
            for index, message in enumerate(messages):
                record_size = len(json.dumps(sqs_record(message, self.queue_arn))) + 2  # ", " between records
                if size + record_size > self._payload_limit:
                    self._release(messages[index:])
                    return batch
                batch.append(dict(message))
                size += record_size
            if self.config.batching_window == 0:
                break
        return batch

    def _release(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Messages that would not fit the invocation: visible again at once, for the next batch."""
        self._sqs.change_message_visibility_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )

    def deliver(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Invoke with the batch; delete what succeeded (the rest return after their visibility timeout)."""
        self.stats.invocations += 1
        self.stats.batch_sizes.append(len(messages))
        try:
            answer = self._invoke({"Records": [sqs_record(m, self.queue_arn) for m in messages]})
        except FunctionError as error:
            self.stats.function_errors += 1
            self._log(f"[local stack] queue batch failed: {error}; the messages return after their visibility timeout")
            return
        failed: set[Any] = set()
        if self.config.report_item_failures and isinstance(answer, dict):
            failed = {f.get("itemIdentifier") for f in answer.get("batchItemFailures") or [] if isinstance(f, dict)}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), RECEIVE_LIMIT):  # DeleteMessageBatch takes ten entries
            chunk = done[start : start + RECEIVE_LIMIT]
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        self.stats.deleted += len(done)
