"""CloudFormation custom resource: subscribes the webhook with CINNOX, unsubscribes on delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from cinnox_sms.custom_resource import CloudFormationResponder, SubscriptionResource
from cinnox_sms.metrics import SUBSCRIPTION_CALLS
from cinnox_sms.secret_label import SecretVersion, mark_subscribed, read_current
from cinnox_sms.settings import SubscriptionSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
_AWS_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
# The stack status only tells a rollback Update from an ordinary one: ask briefly.
_STATUS_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


class _Secrets:
    """Reads secrets fresh (a rotated secret must take effect on the next deploy), over one client per event,
    and marks the webhook secret's version CINNOX accepted (cinnox_sms.secret_label).

    One GetSecretValue each, not Powertools' SecretsProvider: its module loads every provider's
    (about 20 ms, 3 % of this cold start), and nothing here is cached. AWS's error code names the
    failure in CloudFormation's event.
    """

    def __init__(self) -> None:
        self._client: Any = None

    def client(self) -> Any:
        # Made at the first read, inside the resource's handling: a failure to make the client
        # is answered to CloudFormation like any other.
        if self._client is None:
            self._client = boto3.client("secretsmanager", config=_AWS_CONFIG)
        return self._client

    def read(self, secret_id: str) -> str:
        return str(self.client().get_secret_value(SecretId=secret_id)["SecretString"])

    def current(self, secret_id: str) -> SecretVersion:
        return read_current(self.client(), secret_id)

    def mark_subscribed(self, secret_id: str, version_id: str) -> bool:
        return mark_subscribed(self.client(), secret_id, version_id)


def _stack_status(stack_id: str) -> str | None:
    stacks = boto3.client("cloudformation", config=_STATUS_CONFIG).describe_stacks(StackName=stack_id)["Stacks"]
    return str(stacks[0]["StackStatus"]) if stacks else None


# The event carries no secret, but its ResponseURL is a credential of its own: log only ids.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    settings = SubscriptionSettings.from_env()
    secrets = _Secrets()
    resource = SubscriptionResource(
        settings,
        secrets.read,
        logger.warning,
        logger.info,
        stack_status=_stack_status,
        webhook_secret_versions=secrets,
    )
    responder = CloudFormationResponder.from_settings(event, settings)
    outcome = resource.handle(event, context.get_remaining_time_in_millis(), responder)
    logger.info("answered CloudFormation", status=outcome.status, reason=outcome.reason)
    metrics.add_dimension(name="Outcome", value=outcome.status)
    metrics.add_metric(name=SUBSCRIPTION_CALLS, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
