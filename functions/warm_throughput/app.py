"""CloudFormation custom resource: raises the TDR table's warm throughput, refuses to lower it."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from cinnox_sms.custom_resource import CloudFormationResponder
from cinnox_sms.warm_throughput import WarmThroughputResource

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
_AWS_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
# The stack status only tells a rollback Update from an ordinary one: ask briefly.
_STATUS_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


def _stack_status(stack_id: str) -> str | None:
    stacks = boto3.client("cloudformation", config=_STATUS_CONFIG).describe_stacks(StackName=stack_id)["Stacks"]
    return str(stacks[0]["StackStatus"]) if stacks else None


# The event's ResponseURL is a credential of its own: log only ids.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))

    @cache
    def dynamodb() -> Any:
        # Made inside the resource's handling: a failure to make the client is answered like any other.
        return boto3.client("dynamodb", config=_AWS_CONFIG)

    resource = WarmThroughputResource(dynamodb, logger.warning, logger.info, stack_status=_stack_status)
    outcome = resource.handle(event, context.get_remaining_time_in_millis(), CloudFormationResponder(event))
    logger.info("answered CloudFormation", status=outcome.status, reason=outcome.reason)
