"""moto's server, with what the local stack needs of it fixed first: ``python -m local_stack.moto_server``.

moto checks each message it receives against the queue's retention period by computing every
attribute of the queue, some of which walk every message: receiving from a queue of n messages
costs n x n. The digest queue holds a burst of alerts while its batching window gathers them, so
the emulator slowed every other call (the webhook's PutItem too) as the burst grew. The same rule,
read directly, is applied here and in the integration tests' in-process moto.

moto's UpdateTable also takes any WarmThroughput and replaces the table's with it, where DynamoDB
refuses a decrease ("Once increased, warm throughput values can't be decreased.", "Understanding
DynamoDB warm throughput") and keeps the units a request leaves out. Both rules are enforced here,
so the emulator cannot hide a call that AWS would refuse.

Secrets Manager's staging labels, where moto departs from AWS (API reference, "PutSecretValue" and
"UpdateSecretVersionStage"): a new current version takes AWSCURRENT, and AWSPREVIOUS goes to the version
that had it, whose other labels stay (moto left that version AWSPREVIOUS alone, dropping the webhook's own
label); and a label attached to another version moves only when RemoveFromVersionId names that version
(moto moved it without).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.core.utils import unix_time
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.secretsmanager.exceptions import InvalidParameterException
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend
from moto.sqs.models import Message, SQSBackend

# DynamoDB's answer to a lower value, as AWS returns it (HTTP 400 ValidationException; quoted by
# hashicorp/terraform-provider-aws's aws_dynamodb_table and measured in go-to-k/cdkd#1857).
WARM_THROUGHPUT_DECREASE = (
    "One or more parameter values were invalid: Requested {unit} for WarmThroughput for table is lower than "
    "current WarmThroughput, decreasing WarmThroughput is not supported"
)
_WARM_UNITS = ("ReadUnitsPerSecond", "WriteUnitsPerSecond")
_moto_update_table = DynamoDBBackend.update_table


def _retention_kept(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


def _update_table(self: DynamoDBBackend, name: str, *args: Any, **kwargs: Any) -> Any:
    """UpdateTable as DynamoDB takes a WarmThroughput: never lower, and units left out are kept."""
    requested = kwargs.get("warm_throughput")
    if requested:
        current = self.get_table(name).warm_throughput
        for unit in _WARM_UNITS:
            if unit in requested and int(requested[unit]) < int(current.get(unit, 0)):
                raise MockValidationException(WARM_THROUGHPUT_DECREASE.format(unit=unit))
        kwargs["warm_throughput"] = {unit: current[unit] for unit in _WARM_UNITS if unit in current} | {
            unit: int(requested[unit]) for unit in _WARM_UNITS if unit in requested
        }
    return _moto_update_table(self, name, *args, **kwargs)


_ROTATION_LABELS = ("AWSCURRENT", "AWSPREVIOUS")
_moto_reset_default_version = FakeSecret.reset_default_version
_moto_update_secret_version_stage = SecretsManagerBackend.update_secret_version_stage


def _new_current_keeping_labels(self: FakeSecret, secret_version: dict[str, Any], version_id: str) -> None:
    previous = self.versions.get(self.default_version_id) if self.default_version_id else None
    kept = [
        label
        for label in (previous["version_stages"] if previous else [])
        if label not in _ROTATION_LABELS and label not in secret_version["version_stages"]
    ]
    _moto_reset_default_version(self, secret_version, version_id)
    if previous is not None:
        previous["version_stages"].extend(kept)


def _move_label_checked(
    self: SecretsManagerBackend,
    secret_id: str,
    version_stage: str,
    remove_from_version_id: str,
    move_to_version_id: str,
) -> tuple[str, str]:
    if secret_id in self.secrets and move_to_version_id:
        versions = self.secrets[secret_id].versions
        holder = next((v for v, version in versions.items() if version_stage in version["version_stages"]), None)
        if holder == move_to_version_id and not remove_from_version_id:
            return _moto_update_secret_version_stage(self, secret_id, version_stage, holder, move_to_version_id)
        if holder is not None and holder != move_to_version_id and remove_from_version_id != holder:
            raise InvalidParameterException(
                f"The parameter RemoveFromVersionId can't be empty. Staging label {version_stage} is currently "
                f"attached to version {holder}, so you must explicitly reference that version in RemoveFromVersionId."
            )
    return _moto_update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)


def patch_moto() -> None:
    FakeSecret.reset_default_version = _new_current_keeping_labels  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = _move_label_checked  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _retention_kept  # type: ignore[method-assign]
    DynamoDBBackend.update_table = _update_table  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    patch_moto()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
