"""Metric names the functions emit (CloudWatch embedded metric format, through Powertools).

Alarms and the dashboard in template.yaml use these names; a test checks that every
metric an alarm watches is one of them. Country is not a dimension: each value would
be a billed metric (about 200 countries x 4 statuses); `cinnox-sms report` gives it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cinnox_sms.status import Status

if TYPE_CHECKING:
    from cinnox_sms.item import StoredTdr

# TDRs stored, counted from the table's stream (one metric blob per batch, not per TDR).
STORED = {status: f"Tdr{status.value}" for status in Status}
# Webhook events worth a metric; the happy path emits none, to keep a log line off every TDR.
REFUSED = "TdrRefused"  # dimension Reason: BadRequest, Forbidden, PayloadTooLarge (wrong URLs: WebhookWrongSecret)
REPEATED = "TdrRepeated"
OUT_OF_SHAPE = "TdrOutOfShape"  # stored with fields that did not fit, kept as received (the item's outOfShape)
UNKNOWN_STATUS = "TdrUnknownStatus"  # stored with a Status none of the four: never alerted, in no rollup
PARKED = "TdrParked"
NOT_STORED = "TdrNotStored"  # neither stored nor parked: the sender was told to retry
LANDED = "ParkedTdrLanded"
# Alerts and the subscription.
ALERTS_PUBLISHED = "AlertsPublished"
ALERTS_FAILED = "AlertsNotPublished"
ALERT_RECORDS_SKIPPED = "AlertRecordsSkipped"  # stream records that can never be alerts: skipped, not retried
# The overdue sweep: failures older than AlertGraceMinutes still not alerted when a sweep ended.
ALERTS_OVERDUE = "AlertsOverdue"
SUBSCRIPTION_CALLS = "SubscriptionCalls"  # dimension Outcome: SUCCESS, FAILED
# The hourly check for SMS with no final status past NoFinalStatusHours: found by each check, and refused by SNS.
NO_FINAL_STATUS = "SmsWithNoFinalStatus"
NO_FINAL_STATUS_NOT_PUBLISHED = "NoFinalStatusAlertsNotPublished"

ALL = {
    *STORED.values(),
    REFUSED,
    REPEATED,
    OUT_OF_SHAPE,
    UNKNOWN_STATUS,
    PARKED,
    NOT_STORED,
    LANDED,
    ALERTS_PUBLISHED,
    ALERTS_FAILED,
    ALERT_RECORDS_SKIPPED,
    ALERTS_OVERDUE,
    SUBSCRIPTION_CALLS,
    NO_FINAL_STATUS,
    NO_FINAL_STATUS_NOT_PUBLISHED,
}


def stored_tdr(event_name: str | None, image: dict[str, Any] | None) -> tuple[StoredTdr, Status] | None:
    """A new TDR and its status, from a stream record's (eventName, NewImage deserialized); None for the rest.

    INSERTs only: a TDR is written once, so a MODIFY (a hand edit) is no new TDR.
    """
    # Here, not at the top: the functions that only need a metric's name load no pydantic model.
    from pydantic import ValidationError

    from cinnox_sms.item import StoredTdr

    if event_name != "INSERT" or image is None:
        return None
    try:
        tdr = StoredTdr.from_stream_image(image)
    except ValidationError:
        return None  # not a TDR: an item someone else put in the table
    if tdr.status not in Status._value2member_map_:
        return None  # a status we do not know: the webhook counted it (TdrUnknownStatus); it is in no rollup
    return tdr, Status(tdr.status)
