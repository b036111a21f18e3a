"""The CloudFormation custom resource that pre-warms the TDR table: its warm throughput only goes up.

"Once increased, warm throughput values can't be decreased." (Amazon DynamoDB Developer Guide,
"Understanding DynamoDB warm throughput"), and DynamoDB raises them by itself as traffic grows.
Declared on the table (``AWS::DynamoDB::Table WarmThroughput``), a value below the table's own fails
the stack update at the table, with DynamoDB's words, and the stack rolls back; so does any deploy
that changes the value after traffic has taken the table past it. So the table declares none, and
this resource (``TdrTableWarmWriteUnits``, write units per second) does, on each event:

- Create / Update: read the table's warm write units (DescribeTable) and raise them to the value
  (UpdateTable, ``WriteUnitsPerSecond`` only) when the table takes less; otherwise nothing.
- An Update to a value below the one deployed (``OldResourceProperties``) is refused before any
  change to the table: FAILED, with a Reason that says why and what to deploy instead. During an
  update rollback (the old value coming back) it is accepted and changes nothing.
- Delete: nothing. Warm throughput cannot be given back, and the table is retained.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cinnox_sms.custom_resource import UPDATE_ROLLBACK_IN_PROGRESS, capped_id

if TYPE_CHECKING:
    from cinnox_sms.custom_resource import CloudFormationResponder

Status = Literal["SUCCESS", "FAILED"]

# The rule, as AWS words it, and where: quoted in the answer so the stack's events say why.
AWS_RULE = "Once increased, warm throughput values can't be decreased."
AWS_PAGE = 'Amazon DynamoDB Developer Guide, "Understanding DynamoDB warm throughput"'
PARAMETER = "TdrTableWarmWriteUnits"
ID_SUFFIX = "/warm-throughput"
_SLACK_SECONDS = 1.0  # kept back after the responder's own worst case


class DynamoDbTables(Protocol):
    """The two DynamoDB calls the resource makes (a boto3 DynamoDB client has both)."""

    def describe_table(self, *, TableName: str) -> Any: ...

    def update_table(self, *, TableName: str, WarmThroughput: dict[str, int]) -> Any: ...


class WarmThroughputProperties(BaseModel):
    """The custom resource's Properties, as template.yaml passes them (CloudFormation sends numbers as strings)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(alias="TableName", min_length=1)
    write_units: int = Field(alias="WriteUnitsPerSecond", ge=0)

    @property
    def physical_id(self) -> str:
        return capped_id(f"{self.table_name}{ID_SUFFIX}")


@dataclass(frozen=True)
class Outcome:
    status: Status
    physical_id: str
    reason: str
    data: dict[str, str]


def refusal(requested: int, deployed: int, current: int | None) -> str:
    """Why a lower value is refused, and what to deploy instead."""
    floor = max(deployed, current or 0)
    now = f"; the table takes {current} write units per second at once now" if current is not None else ""
    return (
        f"{PARAMETER} cannot go down, from {deployed} to {requested}: DynamoDB's warm throughput only goes up "
        f'("{AWS_RULE}", {AWS_PAGE}){now}. Nothing was changed. Deploy again with {PARAMETER} at {floor} or more, '
        "or 0 to leave the table as it is."
    )


def warm_write_units(described: Any) -> int | None:
    """The table's warm write units per second from a DescribeTable answer (None when it gives none)."""
    value = (described.get("Table", {}).get("WarmThroughput") or {}).get("WriteUnitsPerSecond")
    return int(value) if value is not None else None


def not_a_rollback(_stack_id: str) -> str | None:
    return None


class WarmThroughputResource:
    """Handles one custom resource event from start to its one answer."""

    def __init__(
        self,
        dynamodb: Callable[[], DynamoDbTables],
        log_warning: Callable[[str], None],
        log_info: Callable[[str], None],
        *,
        stack_status: Callable[[str], str | None] = not_a_rollback,
    ) -> None:
        self._dynamodb = dynamodb
        self._warn = log_warning
        self._info = log_info
        self._stack_status = stack_status

    def handle(self, event: dict[str, Any], remaining_ms: int, responder: CloudFormationResponder) -> Outcome:
        request_type = str(event.get("RequestType", ""))
        fallback = _fallback_id(event)
        # Whatever happens, CloudFormation gets its answer before the function times out.
        seconds = remaining_ms / 1000 - responder.worst_case_seconds - _SLACK_SECONDS

        def on_time_up() -> None:
            outcome = self._failed(request_type, event, fallback, "timed out before DynamoDB answered")
            try:
                responder.send(outcome.status, outcome.physical_id, outcome.reason, outcome.data)
            except (OSError, ValueError) as error:
                self._warn(f"could not answer CloudFormation: {type(error).__name__}")

        watchdog = threading.Timer(max(0.0, seconds), on_time_up)
        watchdog.daemon = True
        watchdog.start()
        try:
            outcome = self._run(request_type, event, fallback, lambda: responder.sent is not None)
        except Exception as error:  # every failure still gets its one answer
            outcome = self._failed(request_type, event, fallback, f"{type(error).__name__}: {error}")
        finally:
            watchdog.cancel()
        if not responder.send(outcome.status, outcome.physical_id, outcome.reason, outcome.data) and responder.sent:
            sent = responder.sent  # the watchdog answered first: report what CloudFormation was told
            outcome = Outcome(sent["Status"], sent["PhysicalResourceId"], sent["Reason"], dict(sent["Data"]))
        return outcome

    def _run(self, request_type: str, event: dict[str, Any], fallback: str, answered: Callable[[], bool]) -> Outcome:
        if request_type == "Delete":
            self._info("Delete: warm throughput cannot be given back; the table is left as it is")
            return Outcome("SUCCESS", fallback, "nothing to do: warm throughput cannot be decreased", {})
        if request_type not in ("Create", "Update"):
            return Outcome("FAILED", fallback, f"unknown RequestType {request_type!r}", {})
        try:
            props = WarmThroughputProperties.model_validate(event.get("ResourceProperties") or {})
        except ValidationError as error:
            names = ", ".join(str(e["loc"][0]) for e in error.errors(include_url=False))
            return self._failed(request_type, event, fallback, f"invalid resource properties: {names}")
        physical_id = fallback if request_type == "Update" else props.physical_id
        dynamodb = self._dynamodb()
        current = warm_write_units(dynamodb.describe_table(TableName=props.table_name))
        deployed = _deployed_units(event) if request_type == "Update" else 0
        if props.write_units < deployed:
            if self._is_update_rollback(event):
                self._info(f"update rollback to {props.write_units}: the table keeps its {current} write units")
                return Outcome("SUCCESS", physical_id, "update rollback: warm throughput is left as it is", {})
            reason = refusal(props.write_units, deployed, current)
            self._warn(reason)
            return Outcome("FAILED", physical_id, reason, {})
        data = {"WriteUnitsPerSecond": str(max(props.write_units, current or 0))}
        if props.write_units == 0 or (current is not None and current >= props.write_units):
            self._info(f"the table already takes {current} write units per second at once: nothing to do")
            return Outcome("SUCCESS", physical_id, f"the table already takes {current} write units per second", data)
        if answered():  # the watchdog has told CloudFormation it failed: change nothing now
            return self._failed(request_type, event, fallback, "timed out before DynamoDB answered")
        dynamodb.update_table(TableName=props.table_name, WarmThroughput={"WriteUnitsPerSecond": props.write_units})
        self._info(f"raised the table's warm write units from {current} to {props.write_units}")
        return Outcome("SUCCESS", physical_id, f"raised from {current} to {props.write_units} write units", data)

    def _is_update_rollback(self, event: dict[str, Any]) -> bool:
        # CloudFormation's rollback Update carries no flag: only the stack's status tells.
        stack_id = event.get("StackId")
        if not isinstance(stack_id, str) or not stack_id:
            return False
        try:
            return self._stack_status(stack_id) == UPDATE_ROLLBACK_IN_PROGRESS
        except Exception as error:  # any failure to read it: not a rollback
            self._warn(f"could not read the stack's status ({type(error).__name__}); taking it as no rollback")
            return False

    def _failed(self, request_type: str, event: dict[str, Any], fallback: str, reason: str) -> Outcome:
        if request_type == "Delete" or (request_type == "Update" and self._is_update_rollback(event)):
            # A Delete or a rollback that fails leaves the stack stuck: warn, and let CloudFormation go on.
            self._warn(f"{request_type}: warm throughput left as it is: {reason}")
            return Outcome("SUCCESS", fallback, f"warm throughput left as it is: {reason}", {})
        return Outcome("FAILED", fallback, f"the table's warm throughput was not raised: {reason}", {})


def _deployed_units(event: dict[str, Any]) -> int:
    """The value of the last successful deploy (0 when unknown: nothing to hold the new value to)."""
    try:
        return WarmThroughputProperties.model_validate(event.get("OldResourceProperties") or {}).write_units
    except ValidationError:
        return 0


def _fallback_id(event: dict[str, Any]) -> str:
    """The id CloudFormation holds (Update, Delete), or one made from the request for a Create."""
    existing = event.get("PhysicalResourceId")
    if event.get("RequestType") != "Create" and isinstance(existing, str) and existing:
        return existing
    table = (event.get("ResourceProperties") or {}).get("TableName")
    return capped_id(f"{table or event.get('RequestId') or 'unknown'}{ID_SUFFIX}")
