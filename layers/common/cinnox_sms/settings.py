"""Function settings, read from the Lambda environment when first asked for.

Nothing reads the environment at import time, so tests (and the local stack) can
set their own variables before the first call.
"""

from __future__ import annotations

import os
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class _FromEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env(cls) -> Self:
        return cls.model_validate(dict(os.environ))


class WebhookSettings(_FromEnvironment):
    table_name: str = Field(alias="TDR_TABLE_NAME", min_length=1)
    app_id: str = Field(alias="CINNOX_APP_ID", min_length=1)
    webhook_secret_arn: str = Field(alias="WEBHOOK_SECRET_ARN", min_length=1)
    retention_days: int = Field(alias="TDR_RETENTION_DAYS", default=400, ge=1)
    parking_queue_url: str | None = Field(alias="PARKING_QUEUE_URL", default=None)
    # The secret changes only on rotation; re-reading it once a minute keeps Secrets Manager
    # off the hot path (one read a minute per warm instance) and bounds how long an instance that
    # has not read since a rotation began still takes the old URL (docs/security.md, the window).
    secret_max_age_seconds: int = Field(alias="WEBHOOK_SECRET_MAX_AGE", default=60, ge=0)
    # While a rotation waits for CINNOX (or was refused), CINNOX's URL is accepted only on a read at most
    # this old: once CINNOX accepted the new URL, the old one stops within it. At most one read per this
    # time per warm instance, and only for requests that hold the old secret.
    subscribed_max_age_seconds: float = Field(alias="WEBHOOK_SUBSCRIBED_MAX_AGE", default=1.0, ge=0, le=60)


class ParkedTdrSettings(_FromEnvironment):
    """The parked-TDR drain writes to the webhook's table, with the same retention."""

    table_name: str = Field(alias="TDR_TABLE_NAME", min_length=1)
    retention_days: int = Field(alias="TDR_RETENTION_DAYS", default=400, ge=1)


class AlertSettings(_FromEnvironment):
    topic_arn: str = Field(alias="ALERT_TOPIC_ARN", min_length=1)
    # The record of what was alerted (cinnox_sms.alert_ledger) is kept on the TDR items.
    tdr_table_name: str = Field(alias="TDR_TABLE_NAME", min_length=1)
    # A failure older than this is the overdue sweep's, not the stream's (AlertGraceMinutes).
    grace_minutes: int = Field(alias="ALERT_GRACE_MINUTES", default=30, ge=10, le=1440)


class OverdueAlertSettings(AlertSettings):
    """The sweep that publishes failures not alerted within the grace period, from the table."""

    # Local only, as NoFinalStatusSettings': `make demo` and the tests move the sweep's clock forward.
    clock_offset_seconds: float = Field(alias="CINNOX_SMS_LOCAL_CLOCK_OFFSET_SECONDS", default=0.0, ge=0)


class SubscriptionSettings(_FromEnvironment):
    request_timeout_seconds: float = Field(alias="CINNOX_REQUEST_TIMEOUT", default=10.0, gt=0)
    max_attempts: int = Field(alias="CINNOX_MAX_ATTEMPTS", default=5, ge=1)
    backoff_base_seconds: float = Field(alias="CINNOX_BACKOFF_BASE", default=0.5, ge=0)
    backoff_cap_seconds: float = Field(alias="CINNOX_BACKOFF_CAP", default=8.0, ge=0)
    # A verification refusal right after a deploy is tried once more after this pause.
    verification_retry_pause_seconds: float = Field(alias="CINNOX_VERIFY_RETRY_PAUSE", default=3.0, ge=0)
    # The answer to CloudFormation: a PUT to a pre-signed S3 URL, retried with back-off.
    response_attempts: int = Field(alias="CFN_RESPONSE_ATTEMPTS", default=3, ge=1, le=10)
    response_timeout_seconds: float = Field(alias="CFN_RESPONSE_TIMEOUT", default=5.0, gt=0, le=60)
    response_backoff_seconds: float = Field(alias="CFN_RESPONSE_BACKOFF", default=0.5, ge=0, le=10)
    # Kept back on top of the responder's worst case (a log line, the metric flush).
    response_slack_seconds: float = Field(alias="CFN_RESPONSE_SLACK", default=2.0, ge=0)


class RollupSettings(_FromEnvironment):
    """The metrics function keeps the rollups: their table, and how long an hour's counts are kept (the TDRs')."""

    table_name: str = Field(alias="ROLLUP_TABLE_NAME", min_length=1)
    retention_days: int = Field(alias="TDR_RETENTION_DAYS", default=400, ge=1)
    # Where a final status's Submitted TDR is read, to count it against its SMS's cohort and time.
    tdr_table_name: str = Field(alias="TDR_TABLE_NAME", min_length=1)


class DigestSettings(_FromEnvironment):
    topic_arn: str = Field(alias="DIGEST_TOPIC_ARN", min_length=1)
    # Named in the digest's commands (cinnox-sms report --stack ...): the stack's own name.
    stack_name: str = Field(alias="STACK_NAME", min_length=1)


class NoFinalStatusSettings(_FromEnvironment):
    """The hourly check for SMS with no final status: its tables, topics and deadline (0: off)."""

    rollup_table_name: str = Field(alias="ROLLUP_TABLE_NAME", min_length=1)
    tdr_table_name: str = Field(alias="TDR_TABLE_NAME", min_length=1)
    alert_topic_arn: str = Field(alias="ALERT_TOPIC_ARN", min_length=1)
    digest_topic_arn: str = Field(alias="DIGEST_TOPIC_ARN", min_length=1)
    deadline_hours: int = Field(alias="NO_FINAL_STATUS_HOURS", default=24, ge=0)
    retention_days: int = Field(alias="TDR_RETENTION_DAYS", default=400, ge=1)
    stack_name: str = Field(alias="STACK_NAME", min_length=1)
    # Local only: `make demo` moves the check's clock forward past the deadline (devrig/local_stack, documented in
    # docs/local-stack.md) so that it need not wait NoFinalStatusHours. template.yaml never sets it (a test checks).
    clock_offset_seconds: float = Field(alias="CINNOX_SMS_LOCAL_CLOCK_OFFSET_SECONDS", default=0.0, ge=0)
