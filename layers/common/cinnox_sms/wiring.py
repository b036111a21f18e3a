"""Builds the webhook's service and parking drain from its settings: the one place that makes their AWS clients.

The function's handler asks for them on first use (nothing is built at import, so tests and the
local stack can set the environment first); ``cinnox-sms redrive`` lands parked TDRs through the
same drain, over its own table client.
"""

from __future__ import annotations

from functools import cache
from typing import cast

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.config import Config

from cinnox_sms.parking import ParkingQueue
from cinnox_sms.settings import WebhookSettings
from cinnox_sms.store import TdrStore
from cinnox_sms.webhook import ParkingDrain, WebhookService

# Fail fast and let the sender retry, rather than hold its request past API Gateway's 30 s.
WEBHOOK_AWS_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})


def build_webhook_service(settings: WebhookSettings, session: boto3.Session) -> WebhookService:
    """The service over one session's clients; SQS's is made the first time a TDR is parked."""
    config = WEBHOOK_AWS_CONFIG
    secrets = parameters.SecretsProvider(boto3_client=session.client("secretsmanager", config=config))

    def webhook_secret(fresh: bool) -> str:
        value = secrets.get(settings.webhook_secret_arn, max_age=settings.secret_max_age_seconds, force_fetch=fresh)
        return str(value).strip()

    parking = None
    if settings.parking_queue_url:
        # Not on every cold start: most never park anything.
        parking = ParkingQueue(lambda: session.client("sqs", config=config), settings.parking_queue_url)
    return WebhookService(
        app_id=settings.app_id,
        webhook_secret=webhook_secret,
        store=TdrStore(session.client("dynamodb", config=config), settings.table_name, settings.retention_days),
        parking=parking,
    )


@cache
def webhook_service() -> WebhookService:
    """The function's service, from its environment, built once per execution environment."""
    # boto3's default session, shared with any other client in the process: another would load botocore's data again.
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    return build_webhook_service(WebhookSettings.from_env(), cast("boto3.Session", boto3.DEFAULT_SESSION))


def parking_drain() -> ParkingDrain:
    """The function's drain: it writes through the service's own table client."""
    return ParkingDrain(webhook_service().store)
