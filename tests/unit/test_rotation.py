"""Rotation without a dead URL: which URLs the webhook accepts while a rotation waits for CINNOX, and for how long.

The webhook's secret check against a stand-in for Secrets Manager (the current value and the one the
CINNOXSUBSCRIBED label marks, as cinnox_sms.secret_label reads them) on a clock the tests move, so the
window docs/security.md names is checked to the second. Against moto and the real handlers:
tests/integration/test_rotation.py; the whole lifecycle: tests/e2e/test_lifecycle.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest

from cinnox_sms.errors import NotFound
from cinnox_sms.secret_label import WebhookSecrets
from cinnox_sms.webhook import CachedSecret, WebhookService

if TYPE_CHECKING:
    from cinnox_sms.store import TdrStore

OLD, NEW, WRONG = (
    "Old0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "New0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "x",
)
MAX_AGE, SUBSCRIBED_MAX_AGE, REFRESH_INTERVAL = 60.0, 1.0, 10.0


class SecretStandIn:
    """The webhook secret as Secrets Manager holds it: the current value and the labelled one; counts reads."""

    def __init__(self, value: str) -> None:
        self.current = value
        self.subscribed = value
        self.reads = 0

    def put(self, value: str) -> None:
        """An operator's rotation: a new current value; the label stays where it was."""
        self.current = value

    def mark_subscribed(self) -> None:
        """The custom resource, once CINNOX accepted the current value's URL."""
        self.subscribed = self.current

    def read(self) -> WebhookSecrets:
        self.reads += 1
        return WebhookSecrets(self.current, self.subscribed if self.subscribed != self.current else None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _service(secret: SecretStandIn, clock: Clock) -> WebhookService:
    return WebhookService(
        app_id="app",
        webhook_secret=CachedSecret(secret.read, MAX_AGE, monotonic=clock),
        store=cast("TdrStore", None),  # the secret check touches no table
        refresh_interval=REFRESH_INTERVAL,
        subscribed_max_age=SUBSCRIBED_MAX_AGE,
        monotonic=clock,
    )


def _accepted(service: WebhookService, secret: str) -> bool:
    try:
        service.authorise(f"/tdr/{secret}")
    except NotFound:
        return False
    return True


def test_a_rotation_waiting_for_cinnox_accepts_the_new_url_and_cinnoxs_and_no_other() -> None:
    # Given a warm webhook subscribed with the old value, and the operator's new value put
    clock, secret = Clock(), SecretStandIn(OLD)
    service = _service(secret, clock)
    assert _accepted(service, OLD)
    secret.put(NEW)
    # When the deploy's probe posts to the new URL (a miss: read afresh), and CINNOX keeps posting to its own
    clock.now += 0.1
    probe = _accepted(service, NEW)
    cinnox = [_accepted(service, OLD) for _ in range(3)]
    # Then both are accepted: the new URL for the probe and CINNOX's challenge, the old one for CINNOX's TDRs
    assert probe
    assert cinnox == [True, True, True]
    # and a wrong URL is not, and reads no more than once per refresh interval
    reads = secret.reads
    assert [_accepted(service, WRONG) for _ in range(50)] == [False] * 50
    assert secret.reads - reads <= 1


def test_cinnoxs_old_url_stops_within_a_second_of_the_label_moving_on_a_warm_instance() -> None:
    # Given a warm instance that read the pending rotation (new current, old labelled) at t0
    clock, secret = Clock(), SecretStandIn(OLD)
    service = _service(secret, clock)
    secret.put(NEW)
    read_at = clock.now
    assert _accepted(service, NEW)
    # When CINNOX accepts the new URL and the custom resource moves the label, 0.2 s later
    clock.now = read_at + 0.2
    secret.mark_subscribed()
    # Then a request to the old URL is still taken until its read is WEBHOOK_SUBSCRIBED_MAX_AGE (1 s) old:
    # the whole window, docs/security.md
    clock.now = read_at + SUBSCRIBED_MAX_AGE - 0.001
    assert _accepted(service, OLD)
    # and from then on it is refused: the next one reads afresh and finds the label on the new version
    clock.now = read_at + SUBSCRIBED_MAX_AGE
    assert not _accepted(service, OLD)
    assert _accepted(service, NEW)
    # and later old-URL requests are misses, read no more than once per refresh interval
    reads = secret.reads
    assert [_accepted(service, OLD) for _ in range(20)] == [False] * 20
    assert secret.reads - reads <= 1


def test_a_refused_rotation_keeps_cinnoxs_url_at_one_read_a_second_at_most() -> None:
    # Given a rotation CINNOX refused: the label stays on the old version, which CINNOX posts to
    clock, secret = Clock(), SecretStandIn(OLD)
    service = _service(secret, clock)
    secret.put(NEW)
    assert _accepted(service, NEW)
    reads = secret.reads
    # When CINNOX posts 100 TDRs a second for 10 s to the URL it has
    taken = []
    for _ in range(1000):
        clock.now += 0.01
        taken.append(_accepted(service, OLD))
    # Then every one is accepted, at no more than one Secrets Manager read a second
    assert all(taken)
    assert secret.reads - reads <= 10


def test_an_instance_that_last_read_before_the_rotation_takes_the_old_url_until_its_max_age() -> None:
    """The other bound of the window (docs/security.md): a cache read before the new value was put."""
    # Given a warm instance that read the secret at t0, before the operator put a new value at t0 + 1 s
    clock, secret = Clock(), SecretStandIn(OLD)
    service = _service(secret, clock)
    read_at = clock.now
    assert _accepted(service, OLD)
    clock.now += 1
    secret.put(NEW)
    # When the deploy (whose probe and challenge reached other instances) moves the label at t0 + 5 s
    clock.now += 4
    secret.mark_subscribed()
    # Then this instance takes the old URL from its cache until the read is WEBHOOK_SECRET_MAX_AGE (60 s) old
    clock.now = read_at + MAX_AGE - 0.001
    assert _accepted(service, OLD)
    assert secret.reads == 1
    # and refuses it from then on
    clock.now = read_at + MAX_AGE
    assert not _accepted(service, OLD)
    assert _accepted(service, NEW)


@pytest.mark.parametrize("max_age", [0.0, 0.5])
def test_the_subscribed_max_age_is_what_the_service_is_given(max_age: float) -> None:
    # Given a refused rotation, on a service whose subscribed max age is set
    clock, secret = Clock(), SecretStandIn(OLD)
    service = WebhookService(
        app_id="app",
        webhook_secret=CachedSecret(secret.read, MAX_AGE, monotonic=clock),
        store=cast("TdrStore", None),
        subscribed_max_age=max_age,
        monotonic=clock,
    )
    secret.put(NEW)
    assert _accepted(service, NEW)
    reads = secret.reads
    # When CINNOX posts to its URL 0.25 s later, Then it is taken, read afresh only past that age
    clock.now += 0.25
    assert _accepted(service, OLD)
    assert secret.reads - reads == (1 if max_age <= 0.25 else 0)
