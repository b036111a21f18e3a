"""The webhook secret's versions: the current one, and the one CINNOX was last subscribed with.

A rotation puts a new value in the secret (AWSCURRENT moves to it) before the deploy subscribes its
URL; until CINNOX accepts that URL it still posts to the old one. So the custom resource marks the
version whose URL CINNOX accepted with a staging label of our own, SUBSCRIBED_LABEL, moved only after
CINNOX accepted the PATCH, and the webhook accepts both the current value and the labelled one.

Secrets Manager's rules this relies on (API reference, "UpdateSecretVersionStage"; "GetSecretValue"):
each staging label is attached to at most one version of a secret; moving one that is attached to another
version needs that version in RemoveFromVersionId, or the call fails; GetSecretValue returns the version a
VersionStage names, with its VersionId and every label it carries (AWSCURRENT without one); and
PutSecretValue moves only AWSCURRENT (and AWSPREVIOUS), so our label stays where it was. "AWS Secrets
Manager quotas" allows 20 staging labels; the secret carries three (AWSCURRENT, AWSPREVIOUS and ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

SUBSCRIBED_LABEL = "CINNOXSUBSCRIBED"
_NOT_FOUND = "ResourceNotFoundException"


@dataclass(frozen=True)
class WebhookSecrets:
    """The values whose URLs the webhook accepts: the current one, and CINNOX's when it is another."""

    current: str
    # The labelled version's value while it is not the current one (a rotation not yet accepted by CINNOX,
    # or refused); None when the label is on the current version, or on none (before the first subscription).
    subscribed: str | None = None


@dataclass(frozen=True)
class SecretVersion:
    value: str
    version_id: str


def read_webhook_secrets(client: SecretsManagerClient, secret_id: str) -> WebhookSecrets:
    """One GetSecretValue when the current version carries the label (every day but a rotation's), two otherwise.

    The current version's VersionStages tell whether the label is on it; only when it is not is the
    labelled version read (ResourceNotFoundException: no version carries the label yet, as before the
    first subscription). Any other failure is raised as botocore raised it.
    """
    current = client.get_secret_value(SecretId=secret_id)
    value = current["SecretString"].strip()
    if SUBSCRIBED_LABEL in current.get("VersionStages", ()):
        return WebhookSecrets(value)
    try:
        labelled = client.get_secret_value(SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == _NOT_FOUND:
            return WebhookSecrets(value)
        raise
    subscribed = labelled["SecretString"].strip()
    return WebhookSecrets(value, subscribed if subscribed != value else None)


def read_current(client: SecretsManagerClient, secret_id: str) -> SecretVersion:
    """The current value and its version: the custom resource subscribes that value's URL."""
    answer = client.get_secret_value(SecretId=secret_id)
    return SecretVersion(answer["SecretString"].strip(), answer["VersionId"])


def mark_subscribed(client: SecretsManagerClient, secret_id: str, version_id: str) -> bool:
    """Move SUBSCRIBED_LABEL to ``version_id`` (the version whose URL CINNOX accepted); False if it was there."""
    try:
        holder: str | None = client.get_secret_value(SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL)["VersionId"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != _NOT_FOUND:
            raise
        holder = None
    if holder == version_id:
        return False
    if holder is None:
        client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL, MoveToVersionId=version_id
        )
    else:  # required when the label is on another version: without it, or with another id, the call fails
        client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=SUBSCRIBED_LABEL, MoveToVersionId=version_id, RemoveFromVersionId=holder
        )
    return True
