"""`python -m local_stack demo|local`: the product on this machine (make demo / make local).

SIGINT (Ctrl-C) and SIGTERM stop the stack the same way however it was started: the custom
resources are deleted (CINNOX unsubscribed), then every child process is stopped. Exit status:
`local` 0 once stopped cleanly (1 if the unsubscribe failed); a signal during the start, a demo or
a load run 128 + the signal's number (130 for SIGINT, 143 for SIGTERM); 2 a port already in use.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cinnox_sms.item import StoredTdr
from cinnox_sms_cli.report import CountryLine, HourCount, Period, by_country, moment, read_rollups, render, rows
from local_stack.demo import (
    NO_FINAL_FUNCTION,
    Account,
    AlertInbox,
    Check,
    DigestInbox,
    check,
    is_no_final_alert,
    is_no_final_digest,
    no_final_checks,
    percentile,
    run_demo,
    run_no_final_check,
    summary,
)
from local_stack.gateway import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT
from local_stack.httpserver import PortInUse
from local_stack.latency import run as latency_run
from local_stack.stack import LocalStack, StackError, StackOptions
from local_stack.template import Template
from local_stack.traffic import (
    COUNTRIES,
    DEMO_SECONDS,
    FAST_COUNTRY,
    OUTAGE_COUNTRY,
    SLOW_COUNTRY,
    WITHHOLD_COUNTRY,
    Delivery,
    Outcome,
    Sender,
    Step,
    StepRun,
    send_stepped,
)
from local_stack.widget import rendered_dom, screenshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from local_stack.schedules import ScheduleRun

LOCAL_DIGEST_WINDOW_SECONDS = 3


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a day of simulated traffic through the stack and account for it")
    demo.add_argument("--sms", type=int, default=300, help="SMS to simulate (default 300)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the day's traffic")
    demo.add_argument("--senders", type=int, default=8, help="concurrent senders (default 8)")
    demo.add_argument(
        "--burst", type=int, default=200, help="SMS failed by a carrier outage in one country (default 200; 0: none)"
    )
    demo.add_argument(
        "--seconds",
        type=_replay_seconds,
        default=DEMO_SECONDS,
        help=f"real seconds the day is replayed in, 20-600; carriers' delays scale with it (default {DEMO_SECONDS:g})",
    )
    demo.add_argument(
        "--no-final",
        type=int,
        help=f"SMS to {WITHHOLD_COUNTRY} whose carrier sends no final status (default: 1 in 40 of --sms, at least 1)",
    )
    local = commands.add_parser("local", help="keep the stack running for manual use (Ctrl-C stops it)")
    local.add_argument(
        "--schedule-every",
        type=float,
        metavar="SECONDS",
        help="run each scheduled function (ScheduleV2) every SECONDS instead of its rate, e.g. 30 (local only)",
    )
    load = commands.add_parser(
        "load", help="a stepped load: TDRs offered at rising rates, where the local path saturates, then the account"
    )
    load.add_argument(
        "--steps", type=_rates, default=_rates(LOAD_STEPS), help=f"offered TDR/s, step by step (default {LOAD_STEPS})"
    )
    load.add_argument("--step-seconds", type=_seconds, default=5.0, help="seconds each step offers, 1-30 (default 5)")
    load.add_argument("--senders", type=int, default=64, help="senders at most at once (default 64)")
    load.add_argument("--environments", type=int, default=2, help="webhook execution environments (default 2)")
    load.add_argument("--throttle-rate", type=float, help="ApiThrottlingRateLimit (default: the template's)")
    load.add_argument("--throttle-burst", type=int, help="ApiThrottlingBurstLimit (default: the template's)")
    load.add_argument("--seed", type=int, default=11, help="random seed of the traffic")
    load.add_argument("--results", default=".local-stack/load.json", help="where to write the figures as JSON")
    latency = commands.add_parser(
        "latency", help="the latency people feel: a TDR's POST to its stored item, alert, digest and rollup"
    )
    latency.add_argument("--tdrs", type=int, default=200, help="TDRs to post, paced (default 200)")
    latency.add_argument(
        "--seconds", type=_seconds_latency, default=45.0, help="seconds they are posted over (default 45)"
    )
    latency.add_argument("--failing", type=float, default=0.4, help="share of the SMS that fail (default 0.4)")
    latency.add_argument("--seed", type=int, default=22, help="random seed of the traffic")
    latency.add_argument("--results", default=".local-stack/latency.json", help="where to write the figures as JSON")
    local.add_argument(
        "--widget-port",
        type=int,
        help="the delivery widget's page (default 3100; any free port when --api-port is 0)",
    )
    shot = commands.add_parser(
        "widget-screenshot",
        help="the demo's traffic (small), then the delivery widget's page as headless chromium draws it, to a PNG",
    )
    shot.add_argument("path", type=Path, help="where to write the PNG, e.g. docs/img/delivery-widget.png")
    shot.add_argument("--window", default="1000x700", help="chromium's window, WIDTHxHEIGHT (default 1000x700)")
    shot.add_argument("--html", type=Path, help="also write the DOM chromium rendered here")
    ports = ((demo, 0, 0, 0), (local, 3000, 5000, 8090), (load, 0, 0, 0), (shot, 0, 0, 0), (latency, 0, 0, 0))
    for command, api, emulator, cinnox in ports:
        command.add_argument("--api-port", type=int, default=api, help=f"HTTP API port (default {api or 'any free'})")
        command.add_argument(
            "--emulator-port",
            type=int,
            default=emulator,
            help=f"moto's port (default {emulator or 'any free'}); ignored with AWS_ENDPOINT_URL",
        )
        command.add_argument(
            "--cinnox-port", type=int, default=cinnox, help=f"CINNOX simulator port (default {cinnox or 'any free'})"
        )
        command.add_argument("--app-id", default="demo-app-0001", help="the CINNOX AppID the stack is deployed for")
    return parser


def no_final_count(args: argparse.Namespace) -> int:
    """The demo's SMS whose final status is withheld: --no-final, else 1 in 40 of --sms (at least 1)."""
    return int(args.no_final) if args.no_final is not None else max(1, round(args.sms / 40))


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)

    # Digests go out once per DigestWindowSeconds (300 s deployed): seconds here, so a run need not wait minutes.
    parameters: dict[str, str] = {"DigestWindowSeconds": str(LOCAL_DIGEST_WINDOW_SECONDS)}
    if args.command == "load":
        if args.throttle_rate is not None:
            parameters["ApiThrottlingRateLimit"] = f"{args.throttle_rate:g}"
        if args.throttle_burst is not None:
            parameters["ApiThrottlingBurstLimit"] = str(args.throttle_burst)
    options = StackOptions(
        schedule_every=getattr(args, "schedule_every", None),
        widget_port=_widget_port(args),
        api_port=args.api_port,
        emulator_port=args.emulator_port,
        cinnox_port=args.cinnox_port,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        app_id=args.app_id,
        concurrency={"WebhookFunction": args.environments if args.command == "load" else 2},
        parameters=parameters,
    )
    stack = LocalStack(Template.load(), options, status=lambda line: print(f"  {line}", flush=True))
    run = Shutdown(stack)
    run.install()
    print("Starting the local stack (template.yaml, moto, CINNOX simulator)", flush=True)
    started = time.monotonic()
    try:
        try:
            stack.start()
        except PortInUse as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except (StackError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            print(f"logs: {options.log_dir}", file=sys.stderr)
            return 1
        print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
        if args.command == "demo":
            return _demo(run, args, started)
        if args.command == "load":
            return _load(run, args)
        if args.command == "widget-screenshot":
            return _widget_screenshot(run, args)
        if args.command == "latency":
            return latency_run(run.stack, args, sys.stdout)
        return _local(run)
    except KeyboardInterrupt:  # only ever raised by Shutdown, once, on SIGINT or SIGTERM
        run.stop()
        return run.exit_status
    finally:
        run.stop()  # whatever happened above: no child outlives this process


class Shutdown:
    """SIGINT and SIGTERM handled explicitly, so the stack stops in order however it was started.

    A background job of a non-interactive shell (`make local &` in a script) starts with SIGINT
    ignored, and Python then never raises KeyboardInterrupt: Ctrl-C did nothing and a kill left
    moto's server running. The first signal interrupts whatever runs (a start, a demo, the wait);
    later ones, and any that arrive once stop() has begun, cannot cut the stop short.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.received: int | None = None
        self.requested = threading.Event()
        self._stopping = False
        self._answers: list[dict[str, Any]] | None = None

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = self.received is None
        if first:
            self.received = signum
        self.requested.set()
        if first and not self._stopping:
            raise KeyboardInterrupt
        # os.write, not print: the main thread may be inside a print to the same stream
        os.write(sys.stderr.fileno(), b"  already stopping: unsubscribing, then stopping every process\n")

    @property
    def exit_status(self) -> int:
        return 128 + (self.received or signal.SIGINT)

    def stop(self) -> list[dict[str, Any]]:
        """Delete the custom resources, then stop every child; once, however often it is called."""
        if self._answers is None:
            self._stopping = True
            self._answers = []  # a second call while the first runs finds it under way
            self._answers = self.stack.stop()
        return self._answers


def _demo(run: Shutdown, args: argparse.Namespace, started: float) -> int:
    stack = run.stack
    ready = time.monotonic()
    withhold = no_final_count(args)
    account = run_demo(
        stack,
        sms_count=args.sms,
        seed=args.seed,
        senders=args.senders,
        burst=args.burst,
        seconds=args.seconds,
        withhold=withhold,
    )
    assert stack.aws is not None
    # Once MetricsFunction has counted every stored TDR: the no-final-status check (its SMS lists and cohort
    # counts come from the rollups), then the operators' report, read from the rollups as `cinnox-sms report`
    # reads them (the cohort view, its default), before the emulator goes away.
    now = datetime.now(UTC)
    period = Period.covering(moment("24h", now), now)
    rollups_covering(stack, period, len(account.stored), deadline_seconds=REPORT_WAIT_SECONDS)
    print(f"running {NO_FINAL_FUNCTION} through its schedule, its clock moved past NoFinalStatusHours", flush=True)
    account.no_final = run_no_final_check(stack, account)
    counts = rollups_covering(stack, period, len(account.stored), deadline_seconds=REPORT_WAIT_SECONDS)
    lines = by_country(counts, view="cohort")
    report = render(lines, "table", period, view="cohort")
    answers = run.stop()
    unsubscribed = (
        bool(answers)
        and all(a.get("Status") == "SUCCESS" for a in answers)
        and bool(stack.cinnox and stack.cinnox.subscription and stack.cinnox.subscription["enabled"] is False)
    )
    check(account, unsubscribed)
    account.checks += no_final_checks(account.no_final)
    account.checks.append(report_check(account, lines))
    account.checks.append(delay_ranking_check(rows(lines, period, None, "cohort"), account.replay_seconds))
    print(summary(account), flush=True)
    print(f"\nfunction logs: {stack.options.log_dir}")
    print("\nReport (cinnox-sms report --since 24h, from the rollups of what the demo stored):")
    print(report, flush=True)
    done = time.monotonic()
    print(f"\ndemo: {done - started:.0f} s in all ({ready - started:.0f} s to start the stack)", flush=True)
    return 0 if account.ok else 1


REPORT_WAIT_SECONDS = 60.0  # the metrics mapping batches for up to 15 s before it counts


def rollups_covering(stack: LocalStack, period: Period, stored: int, deadline_seconds: float) -> list[HourCount]:
    """The period's rollups once they count every stored TDR (or as they are at the deadline)."""
    assert stack.aws is not None
    dynamodb = stack.aws.client("dynamodb")
    table = stack.output("RollupTableName")
    deadline = time.monotonic() + deadline_seconds
    while True:
        counts = list(read_rollups(dynamodb, table, period))
        if sum(sum(c.counts.values()) for c in counts) >= stored or time.monotonic() >= deadline:
            return counts
        time.sleep(0.5)


def report_check(account: Account, lines: list[CountryLine]) -> Check:
    """The operators' report (cohort view), read from the rollups, must tell what the simulator sent: each SMS
    under its final status, those whose final status was withheld pending."""
    truth: dict[str, Counter[str]] = {}
    for sms in account.messages:
        sent = truth.setdefault(sms.country.code, Counter())
        sent["sent"] += 1  # each SMS's Submitted TDR
        sent["pending" if sms.withheld else sms.outcome.value.lower()] += 1
    columns = ("sent", "delivered", "undelivered", "rejected", "pending")
    reported = {
        line.country: Counter({k: getattr(line, k) for k in columns if getattr(line, k)})
        for line in lines
        if line.country != "all"
    }
    pending = sum(counts["pending"] for counts in truth.values())
    return Check(
        reported == truth,
        f"cinnox-sms report (cohort view, from the rollups) agrees with what was sent, country by country "
        f"({len(truth)}), the {pending} SMS without a final status pending",
    )


def delay_ranking_check(report_rows: list[dict[str, Any]], replay_seconds: float = DEMO_SECONDS) -> Check:
    """The report's estimated p50 time to Delivered ranks the countries as their simulated carriers' delays do:
    the fast country's the lowest, the slow country's the highest, the one below the other."""
    p50 = {
        row["country"]: float(row["p50_delivered_est"])
        for row in report_rows
        if row["country"] != "all" and isinstance(row.get("p50_delivered_est"), int | float)
    }
    fast, slow = p50.get(FAST_COUNTRY), p50.get(SLOW_COUNTRY)
    ok = fast is not None and slow is not None and fast < slow
    ok = ok and fast == min(p50.values()) and slow == max(p50.values())
    delays = {c.code: tuple(bound * replay_seconds / DEMO_SECONDS for bound in c.delay) for c in COUNTRIES}

    def told(country: str, value: float | None) -> str:
        low, high = delays[country]
        shown = "-" if value is None else f"{value:g} s"
        return f"{country} p50 {shown} (carrier {low:g}-{high:g} s)"

    return Check(
        ok,
        f"cinnox-sms report ranks the countries by their carriers' delays (p50_delivered_est): fastest "
        f"{told(FAST_COUNTRY, fast)}, slowest {told(SLOW_COUNTRY, slow)}, the others between",
    )


WIDGET_PORT = 3100  # `local`'s delivery widget page (3000 the webhook's; the docs move that to 3001)


def _widget_port(args: argparse.Namespace) -> int:
    """`local`: --widget-port, else WIDGET_PORT, or any free port when the API's is any free one (tests run several)."""
    if args.command != "local":
        return 0
    if args.widget_port is not None:
        return int(args.widget_port)
    return WIDGET_PORT if args.api_port else 0


def widget_traffic(
    stack: LocalStack,
    *,
    sms: int = 60,
    burst: int = 20,
    seconds: float = 20.0,
    seed: int = 7,
    senders: int = 4,
    out: TextIO = sys.stdout,
) -> Account:
    """A small demo day through a started stack (its outage included), then the wait until the rollups count
    every TDR it stored: what the delivery widget shows once it is over (e2e/test_widget_chromium.py, and
    `widget-screenshot` for docs/operations.md's picture)."""
    account = run_demo(
        stack,
        sms_count=sms,
        seed=seed,
        senders=senders,
        burst=burst,
        burst_country=OUTAGE_COUNTRY,
        seconds=seconds,
        withhold=max(1, round(sms / 40)),
        out=out,
    )
    now = datetime.now(UTC)
    rollups_covering(stack, Period.covering(moment("24h", now), now), len(account.stored), REPORT_WAIT_SECONDS)
    return account


def _widget_screenshot(run: Shutdown, args: argparse.Namespace) -> int:
    stack = run.stack
    assert stack.widget is not None
    width, _, height = args.window.partition("x")
    account = widget_traffic(stack)
    print(f"rendering {stack.widget.url} with headless chromium", flush=True)
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(rendered_dom(stack.widget.url), encoding="utf-8")
    path = screenshot(stack.widget.url, args.path, (int(width), int(height)))
    countries = len({sms.country.code for sms in account.messages})
    print(f"wrote {path} ({path.stat().st_size} bytes): {countries} countries, the {OUTAGE_COUNTRY} outage's included")
    return 0


LOAD_STEPS = "20,40,80,160,320"


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: rates are numbers between commas, e.g. {LOAD_STEPS}") from None
    if not rates or any(rate <= 0 for rate in rates) or len(rates) > 10:
        raise argparse.ArgumentTypeError(f"{text!r}: one to ten rates, each above 0")
    return rates


def _seconds_between(low: float, high: float, what: str) -> Callable[[str], float]:
    """An argparse type: seconds from low to high, else the usage error that says what they are for."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: {what.format(low=f'{low:g}', high=f'{high:g}')}")
        return value

    return seconds


# From 20 s, the slow carriers' delays (20-35 s at 40 s, 10-17.5 s at 20 s) stay in a report bucket above the
# others' (2 s, 5 s, 10 s), so the ranking can be told.
_replay_seconds = _seconds_between(20, 600, "the day is replayed in {low} to {high} seconds")
_seconds_latency = _seconds_between(1, 60, "the TDRs are posted over {low} to {high} seconds (the run stays bounded)")
_seconds = _seconds_between(1, 30, "a step lasts {low} to {high} seconds (the run stays bounded)")


def _load(run: Shutdown, args: argparse.Namespace) -> int:
    """A stepped load: each step offers TDRs at a rate (open loop) for a few seconds; 1 in 10 repeated,
    1 in 20 terminal-before-Submitted. Per step: offered and achieved TDR/s, latency, 429s, lost."""
    stack = run.stack
    steps = [Step(rate, args.step_seconds) for rate in args.steps]
    offered = sum(step.count for step in steps)
    repeat_rate = 0.10
    api = stack.apis["TdrApi"]
    throttle = stack.properties("TdrApi").get("DefaultRouteSettings", {})
    print(
        f"throttle: {throttle.get('ThrottlingRateLimit')} requests/s, burst {throttle.get('ThrottlingBurstLimit')} "
        f"(ApiThrottlingRateLimit / ApiThrottlingBurstLimit); {args.environments} webhook environments; "
        f"steps of {args.step_seconds:g} s at {', '.join(f'{s.rate:g}' for s in steps)} TDR/s",
        flush=True,
    )
    runs: list[StepRun] = []

    def stepped(sender: Sender, deliveries: list[Delivery]) -> list[Outcome]:
        runs.extend(send_stepped(sender, deliveries, steps, workers=args.senders))
        return [outcome for step_run in runs for outcome in step_run.outcomes]

    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    account = run_demo(
        stack,
        sms_count=max(1, round(offered / 2 / (1 + repeat_rate))),
        seed=args.seed,
        senders=args.senders,
        send_all=stepped,
        repeat_rate=repeat_rate,
        out_of_order_rate=0.05,
        malformed=0,
    )
    stack.flush_logs()
    throttled_metric = _metric_sum(stack, "WebhookThrottledAlarm", since)
    alarm = stack.alarm_state("WebhookThrottledAlarm").state
    answers = run.stop()
    unsubscribed = bool(answers) and all(a.get("Status") == "SUCCESS" for a in answers)
    check(account, unsubscribed, throttled=True)
    print(summary(account), flush=True)
    step_figures = [_step_figures(step_run, account.stored) for step_run in runs]
    print("\n  step  offered TDR/s  achieved TDR/s  p50 ms  p99 ms   429s  lost")
    for index, figures in enumerate(step_figures, 1):
        print(
            f"  {index:>4}  {figures['offered_per_second']:>13g}  {figures['achieved_per_second']:>14.1f}  "
            f"{figures['latency_ms'][50]:>6.0f}  {figures['latency_ms'][99]:>6.0f}  "
            f"{figures['throttled_429']:>5}  {figures['lost']:>4}",
            flush=True,
        )
    saturation = _saturation(step_figures)
    print(
        f"\n  the local path saturates at about {saturation:.0f} TDR/s here (bound by moto and this machine's cores, "
        "not by the product)"
        if saturation
        else "\n  the local path kept up with every step",
        flush=True,
    )
    print(f"  429s: {api.throttled} answered, WebhookThrottled Sum {throttled_metric:g}, WebhookThrottledAlarm {alarm}")
    latencies = sorted(o.seconds for o in account.outcomes)
    figures = {
        "tdrs_sent": len(account.outcomes),
        "sms": len(account.messages),
        "senders": args.senders,
        "webhook_environments": args.environments,
        "throttle": {
            "rate_per_second": float(throttle.get("ThrottlingRateLimit", ACCOUNT_RATE_LIMIT)),
            "burst": int(throttle.get("ThrottlingBurstLimit", ACCOUNT_BURST_LIMIT)),
        },
        "seconds": round(account.seconds, 2),
        "tdrs_per_second": round(len(account.outcomes) / account.seconds, 1),
        "latency_ms": {p: round(percentile(latencies, p) * 1000, 1) for p in (50, 90, 99)},
        "steps": step_figures,
        "saturates_at_tdrs_per_second": round(saturation, 1) if saturation else None,
        "stored": len(account.stored),
        "throttled_429": api.throttled,
        "webhook_throttled_metric_sum": throttled_metric,
        "webhook_throttled_alarm": alarm,
        "lost": sum(step["lost"] for step in step_figures),
        "alerts": sum(account.alerts.values()),
        "duplicate_alerts": sum(n - 1 for n in account.alerts.values() if n > 1),
        "retried_by_sender": sum(1 for o in account.outcomes if o.attempts > 1),
        "all_accounted_for": account.ok,
    }
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures written to {results}")
    return 0 if account.ok else 1


def _step_figures(step_run: StepRun, stored: set[tuple[str, str]]) -> dict[str, Any]:
    """A step's figures. Lost: a TDR neither stored nor refused with 429 (a 429 tells the sender to retry)."""
    outcomes = step_run.outcomes
    latencies = sorted(o.seconds for o in outcomes)
    answered = [o for o in outcomes if o.status == 200]
    return {
        "offered_per_second": step_run.step.rate,
        "tdrs": len(outcomes),
        "seconds": round(step_run.seconds, 2),
        "achieved_per_second": round(len(answered) / step_run.seconds, 1),
        "latency_ms": {p: round(percentile(latencies, p) * 1000, 1) for p in (50, 99)},
        "throttled_429": sum(1 for o in outcomes if o.status == 429),
        "lost": sum(1 for o in outcomes if o.status != 429 and (o.status != 200 or o.delivery.key not in stored)),
    }


def _saturation(steps: list[dict[str, Any]]) -> float | None:
    """The highest rate achieved once a step's achieved rate falls clearly (over 10 %) below its offered rate."""
    for step in steps:
        offered = step["offered_per_second"]
        if step["achieved_per_second"] + step["throttled_429"] / step["seconds"] < 0.9 * offered:
            return float(max(s["achieved_per_second"] for s in steps))
    return None


def _metric_sum(stack: LocalStack, alarm: str, since: datetime) -> float:
    """The Sum since ``since`` of the metric an alarm of the template watches, from the emulator."""
    assert stack.aws is not None
    properties = stack.properties(alarm)
    answer = stack.aws.client("cloudwatch").get_metric_statistics(
        Namespace=properties["Namespace"],
        MetricName=properties["MetricName"],
        StartTime=since,
        EndTime=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1),
        Period=3600,
        Statistics=["Sum"],
    )
    return sum(float(point["Sum"]) for point in answer["Datapoints"])


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _run_text(scheduled: ScheduleRun) -> str:
    """A scheduled run, on one line: the no-final-status check's figures, or what another function answered."""
    if scheduled.error:
        return f"failed: {scheduled.error}"
    result = scheduled.result
    if isinstance(result, dict) and "found" in result:
        return (
            f"{result['found']} SMS with no final status ({result.get('hours_checked')} hours checked, "
            f"{result.get('published')} alerts, {result.get('digests')} digests) in {scheduled.seconds:.2f} s"
        )
    return f"{json.dumps(result)[:120]} in {scheduled.seconds:.2f} s"


def _digest_text(digest: dict[str, Any]) -> str:
    if is_no_final_digest(digest):
        countries: Counter[str] = Counter()
        for line in digest.get("byCountryAndHour", []):
            countries[str(line["country"])] += int(line["sms"])
        listed = ", ".join(f"{country} {count}" for country, count in countries.most_common())
        return f"{digest.get('total')} SMS with no final status after {digest.get('noFinalStatusHours')} h ({listed})"
    countries_failed = ", ".join(f"{country} {count}" for country, count in digest["byCountry"].items())
    return f"{digest['failed']} SMS failed ({countries_failed})"


def operator_program() -> str:
    """The absolute path of the `cinnox-sms` installed beside this Python (the venv `make` builds)."""
    beside = Path(sys.executable).absolute().parent / "cinnox-sms"
    return str(beside) if beside.is_file() else "cinnox-sms"


def operator_command(stack: LocalStack, *arguments: str) -> str:
    """A `cinnox-sms ... --stack NAME` command line that works against this local stack, pasted into any shell:
    the program by its absolute path (the venv's, beside this Python), as `env` finds nothing else on a bare PATH."""
    environment = " ".join(f"{name}={shlex.quote(value)}" for name, value in stack.client_environment().items())
    command = shlex.join([operator_program(), *arguments, "--stack", stack.options.stack_name])
    return f"env {environment} {command}"


def _banner(stack: LocalStack, url: str, sample: dict[str, Any]) -> str:
    """What `local` prints once ready: where everything is, a TDR to post, the operator's commands."""
    schedules = "\n".join(
        f"  schedule      {s.function} {s.expression}"
        + (f", every {s.period:g} s here (--schedule-every)" if stack.options.schedule_every else "")
        + f"; NoFinalStatusHours {stack.provisioned.refs.get('NoFinalStatusHours', '?')}"
        for s in stack.schedules
    )
    return f"""
CINNOX SMS tracker, running locally (Ctrl-C to stop)
  webhook URL   {url}
  AppID         {stack.options.app_id}
  AWS emulator  {stack.endpoint}  (AWS_ENDPOINT_URL={stack.endpoint})
  table         {stack.output("TdrTableName")}
  alert topic   {stack.output("AlertTopicArn")}
  digest topic  {stack.output("DigestTopicArn")}  (one digest per {LOCAL_DIGEST_WINDOW_SECONDS} s window here)
  CINNOX        {stack.cinnox.base_url if stack.cinnox else "-"}  (simulator; the webhook is subscribed)
  AppToken      Secrets Manager secret {stack.app_token_secret}  (the stack's CinnoxAppTokenSecret)
{schedules or "  schedule      none enabled (NoFinalStatusHours 0)"}
  logs          {stack.options.log_dir}
  widget        {stack.widget.url if stack.widget else "-"}  (DeliveryWidgetFunction as a dashboard draws it)

Post a TDR:
  curl -s -X POST {shlex.quote(url)} -d {shlex.quote(json.dumps(sample))}

Ask the operator's tool (the local stack answers CloudFormation's DescribeStacks):
  {operator_command(stack, "report", "--since", "1h")}
  {operator_command(stack, "report", "--since", "24h", "--by", "hour", "--format", "csv")}
  {operator_command(stack, "subscription")}

Alerts, as they are published (one per failed SMS), digests (one per window), scheduled runs:"""


def _local(run: Shutdown) -> int:
    stack = run.stack
    assert stack.aws is not None
    url = f"{stack.output('WebhookBaseUrl')}/{stack.secret('WebhookSecret')}"
    sample = {
        "Type": "tdr",
        "AppID": stack.options.app_id,
        "ServiceID": "svc-local",
        "TransactionID": "demo-0001",
        "RecipientNumber": 85298765432,
        "RecipientCountry": "HK",
        "ResponseCode": "400",
        "Status": "Rejected",
        "Exception": "sms send failed",
    }
    seen = dict.fromkeys(range(len(stack.schedules)), 0)
    # Ready: from here a signal is how `local` ends, wherever it lands. A busy machine can deliver it while the
    # banner's print is still returning, before the loop has begun: the banner is under the same try.
    try:
        inbox = AlertInbox(stack.aws, stack.output("AlertTopicArn"))
        digest_inbox = DigestInbox(stack.aws, stack.output("DigestTopicArn"))
        print(_banner(stack, url, sample), flush=True)
        while not run.requested.is_set():
            for index, schedule in enumerate(stack.schedules):
                for scheduled in schedule.runs[seen[index] :]:
                    print(
                        f"  {_clock(scheduled.started)}  scheduled   {schedule.function}: {_run_text(scheduled)}",
                        flush=True,
                    )
                seen[index] = len(schedule.runs)
            for record in inbox.receive(wait_seconds=1):
                alert = StoredTdr.from_stream_image(record)  # a failure's record is a NewImage
                extra = f"submitted {record.get('submittedAt')}" if is_no_final_alert(record) else alert.exception
                print(
                    f"  {time.strftime('%H:%M:%S')}  {alert.status:<11} {alert.transaction_id}  "
                    f"to {alert.recipient or '?'} ({alert.recipient_country or '?'})"
                    f"  {extra or ''}",
                    flush=True,
                )
            for digest in digest_inbox.receive():
                print(f"  {time.strftime('%H:%M:%S')}  digest      {_digest_text(digest)}", flush=True)
    except KeyboardInterrupt:  # the signal that stops `local`: its normal end
        pass
    print("\nstopping: unsubscribing from CINNOX, then stopping every process", flush=True)
    answers = run.stop()  # each answer's status is printed as it comes (LocalStack's status line)
    failed = [answer for answer in answers if answer.get("Status") != "SUCCESS"]
    for answer in failed:  # a failure's reason too, which the status line leaves out
        print(f"  {answer.get('LogicalResourceId')}: {answer.get('Status')} ({answer.get('Reason')})", flush=True)
    return 1 if failed else 0
