"""A day of outbound SMS as CINNOX would report it: TDRs posted to the webhook.

Each SMS gets a Submitted TDR, then one terminal TDR (Delivered, Undelivered or
Rejected, at rates that vary by country). Some TDRs are sent twice, some terminal
TDRs arrive before their Submitted, a share use the camelCase ``message`` wrapper
and no Content-Type, and a few requests are malformed on purpose. A carrier outage
(``burst``) fails a run of SMS to one country within a minute, and a carrier that
never reports (``withhold``) leaves some SMS to one country without a final status.

The day is replayed in ``seconds`` of real time (``Delivery.due``), and each country's
carrier takes its own time between the Submitted TDR and the final one (``Country.delay``,
real seconds: the webhook's clock stamps ``receivedAt``), so time to a final status can be
measured. Each SMS is submitted early enough that its final TDR is due within the replay.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cinnox_sms.model import Status


@dataclass(frozen=True)
class Country:
    code: str
    dialing: str
    digits: int
    weight: int
    undelivered: float
    rejected: float
    # Seconds from the Submitted TDR to the final one (the carrier's delivery receipt), at DEMO_SECONDS; scaled
    # with the replay's length.
    delay: tuple[float, float] = (1.0, 6.0)


DEMO_SECONDS = 40.0  # the day replayed in this many seconds by default
FAST_COUNTRY, SLOW_COUNTRY = "SG", "BR"  # the quickest carriers and the slowest, by Country.delay
WITHHOLD_COUNTRY = "ID"  # where a carrier sends no delivery receipts for some SMS (``withhold``)
OUTAGE_COUNTRY = "VE"  # where the demo's carrier outage (``burst``) fails a run of SMS
COUNTRIES = (
    Country("HK", "852", 8, 14, 0.03, 0.01),
    Country("SG", "65", 8, 10, 0.03, 0.01, delay=(0.2, 2.0)),
    Country("GB", "44", 10, 10, 0.04, 0.02),
    Country("US", "1", 10, 14, 0.05, 0.02),
    Country("IN", "91", 10, 10, 0.08, 0.04),
    Country("BR", "55", 11, 8, 0.07, 0.03, delay=(20.0, 35.0)),
    Country("VE", "58", 10, 4, 0.12, 0.06),
    Country("PH", "63", 10, 8, 0.07, 0.03),
    Country("ID", "62", 10, 6, 0.08, 0.04),
    Country("NG", "234", 10, 4, 0.12, 0.07),
    Country("DE", "49", 11, 6, 0.03, 0.01),
    Country("AU", "61", 9, 6, 0.03, 0.01),
)
EXCEPTIONS = {Status.UNDELIVERED: "sms deliver failed", Status.REJECTED: "sms send failed"}


@dataclass(frozen=True)
class Sms:
    transaction_id: str
    country: Country
    number: str
    outcome: Status  # the carrier's final status (never reported when withheld)
    withheld: bool = False  # the carrier sent no final status: only its Submitted TDR is posted


@dataclass(frozen=True)
class Delivery:
    """One POST of the day: what is sent and what the webhook must answer."""

    at: float  # seconds into the day (the order of a load run)
    kind: str  # "tdr", "repeat" or "malformed"
    body: bytes
    expect: int
    key: tuple[str, str] | None = None  # (TransactionID, Status) for TDRs
    country: str | None = None
    content_type: str | None = None
    good_path: bool = True
    label: str = ""
    due: float = 0.0  # real seconds after the replay's start at which it is posted (Sender.send_scheduled)


@dataclass
class Outcome:
    delivery: Delivery
    status: int
    answer: dict[str, Any] | None
    attempts: int
    seconds: float


def tdr_body(app_id: str, service_id: str, sms: Sms, status: Status, *, wrapped: bool) -> dict[str, Any]:
    failed = status in EXCEPTIONS
    if wrapped:  # the shape of CINNOX's other events: camelCase inside "message"
        return {
            "message": {
                "type": "tdr",
                "appId": app_id,
                "serviceId": service_id,
                "transactionId": sms.transaction_id,
                "recipientNumber": sms.number,
                "recipientCountry": sms.country.code,
                "responseCode": "400" if failed else "",
                "status": status.value,
                "exception": EXCEPTIONS.get(status, ""),
            }
        }
    return {
        "Type": "tdr",
        "AppID": app_id,
        "ServiceID": service_id,
        "TransactionID": sms.transaction_id,
        "RecipientNumber": int(sms.number),
        "RecipientCountry": sms.country.code,
        "ResponseCode": "400" if failed else "",
        "Status": status.value,
        "Exception": EXCEPTIONS.get(status, ""),
    }


def plan_day(
    sms_count: int,
    *,
    app_id: str,
    seed: int = 7,
    service_id: str = "svc-sms-01",
    repeat_rate: float = 0.05,
    out_of_order_rate: float = 0.05,
    wrapped_rate: float = 0.15,
    malformed: int | None = None,
    burst: int = 0,
    burst_country: str = OUTAGE_COUNTRY,
    seconds: float = DEMO_SECONDS,
    withhold: int = 0,
    withhold_country: str = WITHHOLD_COUNTRY,
) -> tuple[list[Sms], list[Delivery]]:
    """The day's SMS and requests (sorted by ``at``). ``seconds``: the real time the day is replayed in, each
    country's delays scaled with it. ``withhold``: SMS to ``withhold_country`` whose final TDR is never sent.
    The SMS and their outcomes are the same for a seed whatever the replay's length or what is withheld."""
    rng = random.Random(seed)
    timing = Replay(seconds, random.Random(f"timing-{seed}"))  # its own draws: the outcomes stay the seed's
    day = 86_400.0
    weights = [c.weight for c in COUNTRIES]
    messages: list[Sms] = []
    deliveries: list[Delivery] = []
    for index in range(sms_count):
        country = rng.choices(COUNTRIES, weights)[0]
        number = country.dialing + "".join(str(rng.randrange(10)) for _ in range(country.digits))
        roll = rng.random()
        outcome = (
            Status.UNDELIVERED
            if roll < country.undelivered
            else Status.REJECTED
            if roll < country.undelivered + country.rejected
            else Status.DELIVERED
        )
        sms = Sms(f"txn-{seed:02d}-{index:05d}-{rng.getrandbits(24):06x}", country, number, outcome)
        messages.append(sms)
        submitted_at = rng.uniform(0, day)
        terminal_at = submitted_at + rng.expovariate(1 / 20)
        submitted_due, terminal_due = timing.sms(country, submitted_at / day)
        if rng.random() < out_of_order_rate:
            terminal_at = submitted_at - rng.uniform(0.001, 1)  # the carrier's report overtakes Submitted
            submitted_due, terminal_due = timing.overtaken(submitted_due)
        wrapped = rng.random() < wrapped_rate
        for status, at, due in ((Status.SUBMITTED, submitted_at, submitted_due), (outcome, terminal_at, terminal_due)):
            body = json.dumps(tdr_body(app_id, service_id, sms, status, wrapped=wrapped)).encode()
            content_type = None if wrapped or rng.random() < 0.5 else "application/json"
            key = (sms.transaction_id, status.value)
            delivery = Delivery(at, "tdr", body, 200, key, country.code, content_type, due=due)
            deliveries.append(delivery)
            if rng.random() < repeat_rate:
                repeat_at = at + rng.uniform(1, 60)
                deliveries.append(
                    Delivery(repeat_at, "repeat", body, 200, key, country.code, content_type, due=timing.repeat(due))
                )
    if burst:
        messages_out, deliveries_out = _outage(burst, burst_country, app_id, service_id, seed, rng, day, timing)
        messages += messages_out
        deliveries += deliveries_out
    count = malformed if malformed is not None else max(6, len(deliveries) // 100)
    for index in range(count):
        at = rng.uniform(0, day)
        deliveries.append(dataclasses.replace(_malformed(index, at, app_id, rng), due=at / day * timing.seconds))
    if withhold:
        messages, deliveries = _withhold(messages, deliveries, withhold, withhold_country, timing.rng)
    deliveries.sort(key=lambda d: d.at)
    return messages, deliveries


@dataclass
class Replay:
    """When each request of the day is posted, in real seconds from the start of a replay ``seconds`` long."""

    seconds: float
    rng: random.Random

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"a replay lasts more than 0 s, not {self.seconds:g}")

    @property
    def scale(self) -> float:
        return self.seconds / DEMO_SECONDS

    def delay(self, country: Country) -> float:
        low, high = country.delay
        return self.rng.uniform(low * self.scale, high * self.scale)

    def sms(self, country: Country, share_of_day: float) -> tuple[float, float]:
        """(Submitted, final) due times: submitted in the same share of the time left before the country's
        slowest receipt must be in, its receipt one carrier delay later."""
        submitted = share_of_day * (self.seconds - country.delay[1] * self.scale)
        return submitted, submitted + self.delay(country)

    def overtaken(self, submitted: float) -> tuple[float, float]:
        """An SMS whose final TDR comes first: its Submitted TDR a moment after it."""
        return submitted + self.rng.uniform(0.3, 1.0), submitted

    def repeat(self, due: float) -> float:
        return due + self.rng.uniform(0.2, 2.0) * self.scale


def _withhold(
    messages: list[Sms], deliveries: list[Delivery], count: int, country_code: str, rng: random.Random
) -> tuple[list[Sms], list[Delivery]]:
    """``count`` SMS to one country (all of them if it has fewer) lose their final TDR, repeats included."""
    candidates = [sms.transaction_id for sms in messages if sms.country.code == country_code]
    if not candidates:
        raise ValueError(f"no SMS to {country_code!r} to withhold a final status from")
    chosen = set(rng.sample(candidates, min(count, len(candidates))))
    kept = [d for d in deliveries if not (d.key and d.key[0] in chosen and d.key[1] != Status.SUBMITTED.value)]
    marked = [dataclasses.replace(sms, withheld=True) if sms.transaction_id in chosen else sms for sms in messages]
    return marked, kept


def _outage(
    count: int,
    country_code: str,
    app_id: str,
    service_id: str,
    seed: int,
    rng: random.Random,
    day: float,
    timing: Replay,
) -> tuple[list[Sms], list[Delivery]]:
    """A carrier outage: ``count`` SMS to one country, all Undelivered, submitted within one minute (2 s of a
    replay of DEMO_SECONDS)."""
    country = next((c for c in COUNTRIES if c.code == country_code), None)
    if country is None:
        raise ValueError(
            f"{country_code!r} is not one of the simulated countries ({', '.join(c.code for c in COUNTRIES)})"
        )
    start = rng.uniform(0, day - 120)
    minute = 2.0 * timing.scale
    start_due = start / day * (timing.seconds - country.delay[1] * timing.scale - minute)
    messages: list[Sms] = []
    deliveries: list[Delivery] = []
    for index in range(count):
        number = country.dialing + "".join(str(rng.randrange(10)) for _ in range(country.digits))
        sms = Sms(f"outage-{seed:02d}-{index:05d}-{rng.getrandbits(24):06x}", country, number, Status.UNDELIVERED)
        messages.append(sms)
        submitted_at = start + rng.uniform(0, 60)
        submitted_due = start_due + (submitted_at - start) / 60 * minute
        dues = (submitted_due, submitted_due + timing.delay(country))
        at_and_due = zip((submitted_at, submitted_at + rng.uniform(1, 30)), dues, strict=True)
        for status, (at, due) in zip((Status.SUBMITTED, Status.UNDELIVERED), at_and_due, strict=True):
            body = json.dumps(tdr_body(app_id, service_id, sms, status, wrapped=False)).encode()
            deliveries.append(
                Delivery(
                    at,
                    "tdr",
                    body,
                    200,
                    (sms.transaction_id, status.value),
                    country.code,
                    "application/json",
                    due=due,
                )
            )
    return messages, deliveries


def _malformed(index: int, at: float, app_id: str, rng: random.Random) -> Delivery:
    good = {
        "Type": "tdr",
        "AppID": app_id,
        "TransactionID": f"bad-{index}-{rng.getrandbits(16):04x}",
        "Status": "Delivered",
    }
    kinds: list[tuple[str, bytes, int, bool]] = [
        ("not JSON", b"TransactionID=1&Status=Delivered", 400, True),
        # A Status none of the four documented is stored now (issue 19); one that is no name is still refused.
        ("Status not a name", json.dumps({**good, "Status": 3}).encode(), 400, True),
        ("no TransactionID", json.dumps({k: v for k, v in good.items() if k != "TransactionID"}).encode(), 400, True),
        ("another app's AppID", json.dumps({**good, "AppID": "someone-else"}).encode(), 403, True),
        ("wrong secret in the path", json.dumps(good).encode(), 404, False),
        ("body over 16 KiB", json.dumps({**good, "Padding": "x" * 20_000}).encode(), 413, True),
    ]
    label, body, expect, good_path = kinds[index % len(kinds)]
    return Delivery(at, "malformed", body, expect, None, None, "application/json", good_path, label)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> tuple[int, bytes]:
    """POST exactly these headers (urllib would add a form Content-Type of its own)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Sender:
    """Posts deliveries with a pool of senders; retries 5xx and refused connections, as a sender should."""

    def __init__(
        self,
        webhook_url: str,
        *,
        senders: int = 8,
        attempts: int = 5,
        progress: Callable[[int], None] = lambda done: None,
    ) -> None:
        self._url = webhook_url
        self._bad_url = webhook_url.rsplit("/", 1)[0] + "/not-the-secret"
        self._senders = senders
        self._attempts = attempts
        self._progress = progress
        self._done = 0
        self._lock = threading.Lock()

    def send_all(self, deliveries: list[Delivery]) -> list[Outcome]:
        with ThreadPoolExecutor(self._senders) as pool:
            return list(pool.map(self.send, deliveries))

    def send_scheduled(self, deliveries: list[Delivery]) -> list[Outcome]:
        """Post each delivery when it is due (``due`` seconds after the first is sent), open loop, by at most
        ``senders`` at once: a delivery waiting for a free sender counts the wait in its latency. The
        outcomes come back in the order of ``deliveries``."""
        order = sorted(range(len(deliveries)), key=lambda i: (deliveries[i].due, deliveries[i].at))
        started = time.monotonic()
        futures: dict[int, Future[Outcome]] = {}
        with ThreadPoolExecutor(self._senders) as pool:
            for index in order:
                due = started + deliveries[index].due
                time.sleep(max(0.0, due - time.monotonic()))
                futures[index] = pool.submit(self.send, deliveries[index], due)
            return [futures[index].result() for index in range(len(deliveries))]

    def send(self, delivery: Delivery, scheduled: float | None = None) -> Outcome:
        """Post one delivery. ``scheduled``: the monotonic time it was due, so that its latency
        includes any wait for a free sender (an open-loop load must not hide its queueing)."""
        started = time.monotonic() if scheduled is None else scheduled
        headers = {"User-Agent": "cinnox-simulator"}
        if delivery.content_type:
            headers["Content-Type"] = delivery.content_type
        url = self._url if delivery.good_path else self._bad_url
        status, answer, attempt = 0, None, 0
        for attempt in range(1, self._attempts + 1):
            try:
                status, raw = http_post(url, delivery.body, headers)
            except (OSError, http.client.HTTPException):
                status, raw = 0, b""
            try:
                answer = json.loads(raw) if raw else None
            except ValueError:
                answer = None
            if status and status < 500:
                break
            time.sleep(0.05 * 2**attempt)
        with self._lock:
            self._done += 1
            self._progress(self._done)
        return Outcome(delivery, status, answer, attempt, time.monotonic() - started)


@dataclass(frozen=True)
class Step:
    """One step of a stepped load: deliveries offered at ``rate`` per second for ``seconds``."""

    rate: float
    seconds: float

    @property
    def count(self) -> int:
        return max(1, round(self.rate * self.seconds))


@dataclass
class StepRun:
    step: Step
    outcomes: list[Outcome]
    seconds: float  # from the step's first send until its last answer


def send_stepped(sender: Sender, deliveries: list[Delivery], steps: list[Step], *, workers: int = 64) -> list[StepRun]:
    """Offer the deliveries in steps of increasing rate, open loop: each is sent when it is due,
    whatever the answers before it, by at most ``workers`` senders at once (the rest wait, and
    their wait counts in their latency). Each step is drained before the next begins. Bounded:
    every step sends ``step.count`` deliveries (fewer if the list runs out)."""
    runs: list[StepRun] = []
    remaining = iter(deliveries)
    with ThreadPoolExecutor(workers) as pool:
        for step in steps:
            batch = [d for _, d in zip(range(step.count), remaining, strict=False)]
            if not batch:
                break
            started = time.monotonic()
            futures = []
            for index, delivery in enumerate(batch):
                due = started + index / step.rate
                time.sleep(max(0.0, due - time.monotonic()))
                futures.append(pool.submit(sender.send, delivery, due))
            outcomes = [future.result() for future in futures]
            runs.append(StepRun(step, outcomes, time.monotonic() - started))
    return runs
