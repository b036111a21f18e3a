"""Builds the webhook's service and the parked-TDR drain from their settings: the one place that makes their clients.

Each function's handler asks for its own on first use (nothing is built at import, so tests and the
local stack can set the environment first); ``cinnox-sms redrive`` lands parked TDRs through the
same ParkingDrain, over its own table client.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cinnox_sms.parking import ParkingQueue
from cinnox_sms.secret_label import WebhookSecrets, read_webhook_secrets
from cinnox_sms.settings import ParkedTdrSettings, WebhookSettings
from cinnox_sms.store import TdrStore
from cinnox_sms.webhook import CachedSecret, ParkingDrain, SecretUnavailable, WebhookService

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class Clients(Protocol):
    """What makes the clients: a boto3 Session, or BotocoreClients."""

    def client(self, service_name: str, *, config: Config | None = None) -> Any: ...


class BotocoreClients:
    """The functions' clients from one botocore session, without boto3: boto3's import (S3's transfer manager
    with it) is 15 ms of each webhook cold start for nothing these functions use (make bench, "against peer");
    boto3's clients are botocore's, so these are the same clients, configured from the same environment."""

    def __init__(self) -> None:
        self._session = botocore.session.get_session()

    def client(self, service_name: str, *, config: Config | None = None) -> Any:
        return self._session.create_client(service_name, config=config)


# Fail fast and let the sender retry, rather than hold its request past API Gateway's 30 s; the drain
# too: a parked TDR the table still refuses waits in its queue for the next batch. No client-side
# parameter validation (botocore's Config documents it as a cost to turn off for speed): the item comes
# from a validated model and AWS validates every request again; measured, ~70 us of each PutItem's CPU.
WEBHOOK_AWS_CONFIG = Config(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3}, parameter_validation=False
)


def build_webhook_service(settings: WebhookSettings, session: Clients) -> WebhookService:
    """The service over one session's clients; SQS's is made the first time a TDR is parked."""
    config = WEBHOOK_AWS_CONFIG
    secrets = session.client("secretsmanager", config=config)
    parking = None
    if settings.parking_queue_url:
        # Not on every cold start: most never park anything.
        parking = ParkingQueue(lambda: session.client("sqs", config=config), settings.parking_queue_url)
    return WebhookService(
        app_id=settings.app_id,
        webhook_secret=CachedSecret(
            lambda: read_secret(secrets, settings.webhook_secret_arn), settings.secret_max_age_seconds
        ),
        store=TdrStore(session.client("dynamodb", config=config), settings.table_name, settings.retention_days),
        parking=parking,
        subscribed_max_age=settings.subscribed_max_age_seconds,
    )


def read_secret(client: SecretsManagerClient, secret_id: str) -> WebhookSecrets:
    """The accepted values (secret_label: one GetSecretValue, two while a rotation waits for CINNOX), read
    directly rather than through Powertools' parameters utility, which imports every provider (AppConfig,
    SSM, DynamoDB) for this: measured, ~5 ms more on every cold start (about 1% of the card floor's), for
    what CachedSecret does in a dozen lines with the same semantics."""
    try:
        return read_webhook_secrets(client, secret_id)
    except (ClientError, BotoCoreError, KeyError) as error:
        raise SecretUnavailable(type(error).__name__) from error


@cache
def _default_clients() -> Clients:
    # One session for the process: another would load botocore's data again.
    return BotocoreClients()


@cache
def webhook_service() -> WebhookService:
    """The webhook function's service, from its environment, built once per execution environment."""
    return build_webhook_service(WebhookSettings.from_env(), _default_clients())


@cache
def parking_drain() -> ParkingDrain:
    """The parked-TDR function's drain, from its environment: the webhook's store code and conditional put."""
    settings = ParkedTdrSettings.from_env()
    client = _default_clients().client("dynamodb", config=WEBHOOK_AWS_CONFIG)
    return ParkingDrain(TdrStore(client, settings.table_name, settings.retention_days))
