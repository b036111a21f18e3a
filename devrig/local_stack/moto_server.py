"""moto's server, with what the local stack needs of it fixed first: ``python -m local_stack.moto_server``.

moto checks each message it receives against the queue's retention period by computing every
attribute of the queue, some of which walk every message: receiving from a queue of n messages
costs n x n. The digest queue holds a burst of alerts while its batching window gathers them, so
the emulator slowed every other call (the webhook's PutItem too) as the burst grew. The same rule,
read directly, is applied here and in the integration tests' in-process moto.
"""

from __future__ import annotations

import sys

from moto.core.utils import unix_time
from moto.sqs.models import Message, SQSBackend


def _retention_kept(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


def patch_moto() -> None:
    SQSBackend.is_message_valid_based_on_retention_period = _retention_kept  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    patch_moto()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
