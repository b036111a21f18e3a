"""`make bench`: where the product stands against the floor of what it must do.

Every figure is measured in the same run on this machine and printed beside its floor.
AWS calls go to the local stack's emulator (cold starts) or to an in-memory transport
(warm costs); code and packages are laid out as Lambda would have them, in read-only
fashion: PYTHONDONTWRITEBYTECODE=1, no bytecode caches unless the variant ships them.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from py_compile import PycInvalidationMode
from typing import Any
from urllib.parse import parse_qs

from botocore.awsrequest import AWSResponse, HTTPHeaders

from cinnox_sms.model import FAILURE_STATUSES, Status
from cinnox_sms.store import to_item
from local_stack.stack import LocalStack, StackOptions
from local_stack.template import ROOT, Template, load_function_module, matches_filter, stream_filters

BENCH = ROOT / ".bench"
RESULTS = Path(__file__).with_name("results.json")
FUNCTIONS = {"WebhookFunction": "webhook", "AlertFunction": "alert", "SubscriptionFunction": "subscription"}
TARGETS = {"webhook": 1.25, "alert": 1.4, "subscription": 1.4}

# AWS list prices, us-east-1, as published on 2026-11-27 (check before relying on them).
PRICES_DATE = "2026-11-27"
PRICES: dict[str, float] = {
    "http_api_per_million": 1.00,  # first 300 million requests a month
    "rest_api_per_million": 3.50,  # first 333 million
    "lambda_requests_per_million": 0.20,
    "lambda_arm64_gb_second": 0.0000133334,
    "dynamodb_on_demand_write_units_per_million": 0.625,
}


# --- laying code out as Lambda would ---------------------------------------------


def locked_versions(lock: Path) -> list[str]:
    """``name==version`` for each package of a hashed lock file (extras, markers and hashes left out)."""
    pins = []
    for line in lock.read_text().splitlines():
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if found:
            pins.append(f"{found.group(1)}=={found.group(2)}")
    return pins


def lay_out(template: Template) -> dict[str, Path]:
    """Functions, the layer (with and without shipped bytecode) and the runtime's boto3, in .bench/."""
    if BENCH.exists():
        shutil.rmtree(BENCH)
    paths = {
        "runtime": BENCH / "runtime",
        "layer": BENCH / "layer" / "python",
        "layer-pyc": BENCH / "layer-pyc" / "python",
    }
    # The locks pin versions with hashes for their own platforms (the layer's for arm64); here the
    # bench runs on this machine, so it installs the same versions, by name, for this platform.
    BENCH.mkdir(parents=True)
    constraints_file = BENCH / "constraints.txt"
    constraints_file.write_text("\n".join(locked_versions(ROOT / "requirements-dev.txt")) + "\n")
    constraints = ["-c", str(constraints_file)]
    pip = [sys.executable, "-m", "pip", "install", "-qq", "--disable-pip-version-check", "--target"]
    subprocess.run([*pip, str(paths["runtime"]), "boto3", *constraints], check=True)
    # The Lambda runtime's own packages are compiled; ours, on a read-only disk, are not.
    compileall.compile_dir(paths["runtime"], quiet=1, invalidation_mode=PycInvalidationMode.UNCHECKED_HASH)
    layer_source = ROOT / template.resource("CommonLayer")["Properties"]["ContentUri"]
    layer_pins = locked_versions(layer_source / "requirements.txt")
    subprocess.run([*pip, str(paths["layer"]), "--no-deps", *layer_pins], check=True)
    shutil.copytree(
        layer_source / "cinnox_sms", paths["layer"] / "cinnox_sms", ignore=shutil.ignore_patterns("__pycache__")
    )
    for cache in paths["layer"].rglob("__pycache__"):
        shutil.rmtree(cache)
    shutil.copytree(paths["layer"], paths["layer-pyc"])
    compileall.compile_dir(paths["layer-pyc"], quiet=1, invalidation_mode=PycInvalidationMode.UNCHECKED_HASH)
    for logical_id in FUNCTIONS:
        target = BENCH / "functions" / logical_id
        shutil.copytree(
            ROOT / template.function(logical_id)["CodeUri"], target, ignore=shutil.ignore_patterns("__pycache__")
        )
        paths[logical_id] = target
    floors = BENCH / "floors"
    floors.mkdir()
    shutil.copy(Path(__file__).with_name("floors.py"), floors / "floors.py")
    paths["floors"] = floors
    return paths


# --- cold starts -------------------------------------------------------------------


def cold_start(
    python: str, path: Path, attribute: str, event_file: Path, pythonpath: list[Path], environment: dict[str, str]
) -> float:
    """Seconds from starting a fresh process to its first answered event."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
        **environment,
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, "-s", str(Path(__file__).with_name("child.py")), str(path), attribute, str(event_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        if line == b"answered\n":
            elapsed = time.perf_counter() - started
            process.wait()
            return elapsed
        output.append(line.decode(errors="replace"))
    process.wait()
    raise RuntimeError(f"{path} {attribute} did not answer:\n{''.join(output[-30:])}")


def cold_starts(stack: LocalStack, paths: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    python = getattr(sys, "_base_executable", sys.executable)
    events = BENCH / "events"
    events.mkdir()
    results: dict[str, dict[str, list[float]]] = {}
    for run in range(runs):
        for logical_id, name in FUNCTIONS.items():
            environment = dict(stack.hosts[logical_id].spec.environment)
            environment.update(
                {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": name}
            )
            event_file = events / f"{name}-{run}.json"
            event_file.write_text(json.dumps(cold_event(stack, name)))
            variants = {
                "product": (paths[logical_id] / "app.py", "lambda_handler", [paths[logical_id], paths["layer"]]),
                "product, bytecode shipped": (
                    paths[logical_id] / "app.py",
                    "lambda_handler",
                    [paths[logical_id], paths["layer-pyc"]],
                ),
                "floor": (paths["floors"] / "floors.py", name, [paths["floors"]]),
            }
            for variant, (path, attribute, code) in variants.items():
                if name == "subscription":  # each Create needs its own RequestId
                    event_file.write_text(json.dumps(cold_event(stack, name)))
                seconds = cold_start(python, path, attribute, event_file, [*code, paths["runtime"]], environment)
                results.setdefault(name, {}).setdefault(variant, []).append(seconds)
    return {
        name: {variant: statistics.median(values) for variant, values in variants.items()}
        for name, variants in results.items()
    }


def cold_event(stack: LocalStack, name: str) -> dict[str, Any]:
    from local_stack.cloudformation import custom_resource_event
    from local_stack.gateway import Route

    if name == "webhook":
        api = next(iter(stack.apis.values()))
        path = f"/tdr/{stack.secret('WebhookSecret')}"
        body = json.dumps(typical_tdr(stack.options.app_id, f"bench-{uuid.uuid4().hex[:12]}"))
        return api.event(
            Route("POST", "/tdr/{secret}", "WebhookFunction"),
            {"secret": path.rsplit("/", 1)[-1]},
            "POST",
            path,
            [("Content-Type", "application/json")],
            body.encode(),
            "127.0.0.1",
        )
    if name == "alert":
        return alert_batch(stack.options.app_id, 100)
    assert stack.cloudformation is not None
    resource = stack.template.resource("CinnoxSubscription")
    properties = stack.resolve(resource["Properties"])
    return custom_resource_event("Create", "CinnoxSubscription", resource["Type"], properties, stack.cloudformation.url)


def typical_tdr(app_id: str, transaction_id: str, status: Status = Status.DELIVERED) -> dict[str, Any]:
    """A TDR as CINNOX documents it."""
    failed = status in FAILURE_STATUSES
    return {
        "Type": "tdr",
        "AppID": app_id,
        "ServiceID": "svc-sms-01",
        "TransactionID": transaction_id,
        "RecipientNumber": 85298765432,
        "RecipientCountry": "HK",
        "ResponseCode": "400" if failed else "",
        "Status": status.value,
        "Exception": "sms deliver failed" if failed else "",
    }


def alert_batch(app_id: str, size: int) -> dict[str, Any]:
    from cinnox_sms.model import Tdr

    records = []
    for index in range(size):
        body = typical_tdr(app_id, f"bench-{index:05d}", Status.UNDELIVERED)
        tdr = Tdr.model_validate({k: v for k, v in body.items() if v != ""} | {"RecipientNumber": "85298765432"})
        item = to_item(tdr, json.dumps(body), _now(), _now())
        records.append(
            {
                "eventID": str(index),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "Keys": {},
                    "NewImage": item,
                    "SequenceNumber": f"{index + 1:021d}",
                    "SizeBytes": 400,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s",
            }
        )
    return {"Records": records}


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --- warm costs, over an in-memory transport ----------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def stub(client: Any, operation: str, answer: Callable[[Any], bytes], content_type: str) -> list[int]:
    """Answer every call of one operation in memory; returns the list that counts the calls."""
    calls: list[int] = []

    def send(request: Any, **_: Any) -> AWSResponse:
        calls.append(1)
        headers = HTTPHeaders()
        headers["x-amzn-requestid"] = "bench"
        headers["content-type"] = content_type
        return AWSResponse(request.url, 200, headers, _Raw(answer(request)))

    client.meta.events.register(f"before-send.{client.meta.service_model.service_name}.{operation}", send)
    return calls


def sns_batch_answer(request: Any) -> bytes:
    fields = parse_qs(request.body.decode() if isinstance(request.body, bytes) else request.body)
    ids = [v[0] for k, v in fields.items() if k.endswith(".Id")]
    members = "".join(f"<member><Id>{i}</Id><MessageId>m{i}</MessageId></member>" for i in ids)
    return (
        f'<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult>'
        f"<Successful>{members}</Successful><Failed/></PublishBatchResult>"
        f"<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></PublishBatchResponse>"
    ).encode()


def warm(stack: LocalStack, template: Template, tdrs: int) -> dict[str, Any]:
    """Handler time per TDR (webhook) and per record (alert), against the floors, same transport."""
    for name, value in stack.hosts["WebhookFunction"].spec.environment.items():
        os.environ[name] = value
    for name, value in stack.hosts["AlertFunction"].spec.environment.items():
        os.environ[name] = value
    webhook = load_function_module(template, "WebhookFunction")
    alert = load_function_module(template, "AlertFunction")
    # Log lines and metrics (EMF, printed on stdout as Lambda ships them) are still
    # serialised and written on every call, to nowhere: the table is all `make bench` prints.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for module in (webhook, alert):
            module.logger.registered_handler.stream = devnull
        return _warm_calls(stack, webhook, alert, tdrs)


def _warm_calls(stack: LocalStack, webhook: Any, alert: Any, tdrs: int) -> dict[str, Any]:
    from bench import floors

    context = _context()
    event = cold_event(stack, "webhook")
    # First calls read the secret and build clients (from the emulator); then the transport is swapped.
    webhook.lambda_handler(event, context)
    floors.webhook(event, context)
    ours_calls = stub(
        webhook.webhook_service()._store._client, "PutItem", lambda _: b"{}", "application/x-amz-json-1.0"
    )
    floor_calls = stub(floors._dynamodb, "PutItem", lambda _: b"{}", "application/x-amz-json-1.0")
    results: dict[str, Any] = {}
    results["webhook"] = {
        "product": _time_per_call(lambda: webhook.lambda_handler(event, context), tdrs),
        "floor": _time_per_call(lambda: floors.webhook(event, context), tdrs),
        "dynamodb_calls_per_tdr": len(ours_calls) / (tdrs + min(50, tdrs)),  # warm-up calls included
    }
    assert len(floor_calls) == len(ours_calls)
    batch = alert_batch(stack.options.app_id, 100)
    alert.lambda_handler({"Records": batch["Records"][:1]}, context)
    floors.alert({"Records": batch["Records"][:1]}, context)
    ours_sns = stub(alert.alert_publisher()._client, "PublishBatch", sns_batch_answer, "text/xml")
    stub(floors._sns, "PublishBatch", sns_batch_answer, "text/xml")
    batches = max(1, tdrs // 100)
    results["alert"] = {
        "product": _time_per_call(lambda: alert.lambda_handler(batch, context), batches) / 100,
        "floor": _time_per_call(lambda: floors.alert(batch, context), batches) / 100,
        "sns_calls_per_100_alerts": len(ours_sns) / (batches + min(50, batches)),
    }
    return results


def _time_per_call(call: Callable[[], Any], count: int) -> float:
    for _ in range(min(50, count)):
        call()
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count


def _context() -> Any:
    class Context:
        function_name = "bench"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        aws_request_id = "bench"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 60_000

    return Context()


# --- calls, bytes, packages, cost ------------------------------------------------------


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (UTF-8 strings, numbers ~ digits/2 + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += math.ceil(len(value["N"].lstrip("-").replace(".", "")) / 2) + 1
    return size


def write_units(app_id: str) -> dict[str, Any]:
    from cinnox_sms.model import parse_inbound

    typical = json.dumps(typical_tdr(app_id, "7f3c1a9e-3b1d-4d6f-9a8e-2c4b6d8f0a1b", Status.UNDELIVERED))
    maximal = json.dumps(
        {
            **typical_tdr(app_id, "t" * 256, Status.UNDELIVERED),
            "ServiceID": "s" * 256,
            "Exception": "e" * 1024,
            "Padding": "p" * 60_000,
        }
    )
    sizes = {}
    for name, body in (("typical", typical), ("maximal", maximal)):
        tdr = parse_inbound(json.loads(body)).tdr
        assert tdr is not None
        sizes[name] = item_size(to_item(tdr, body, _now(), _now()))
    return {
        "typical_item_bytes": sizes["typical"],
        "typical_write_units": math.ceil(sizes["typical"] / 1024),
        "maximal_item_bytes": sizes["maximal"],
        "maximal_write_units": math.ceil(sizes["maximal"] / 1024),
    }


def alert_invocations_for(template: Template) -> dict[str, int]:
    filters = stream_filters(template, "AlertFunction", "TdrStream")
    return {
        status.value: int(
            any(
                matches_filter(f, {"eventName": "INSERT", "dynamodb": {"NewImage": {"status": {"S": status.value}}}})
                for f in filters
            )
        )
        for status in Status
    }


def package_sizes(build_dir: Path) -> dict[str, int]:
    """Zipped sizes of what sam build made: each function, our package, the third-party packages."""

    def zipped(paths: list[Path], base: Path) -> int:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                for file in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
                    archive.write(file, file.relative_to(base))
        return len(buffer.getvalue())

    layer = build_dir / "CommonLayer" / "python"
    sizes = {logical_id: zipped([build_dir / logical_id], build_dir / logical_id) for logical_id in FUNCTIONS}
    sizes["cinnox_sms (layer)"] = zipped([layer / "cinnox_sms"], layer)
    sizes["third-party (layer)"] = zipped([p for p in layer.iterdir() if p.name != "cinnox_sms"], layer)
    sizes["ours, all"] = sum(sizes[k] for k in (*FUNCTIONS, "cinnox_sms (layer)"))
    return sizes


def cost_per_million(warm_seconds: float, memory_mb: int, write_units_per_tdr: int) -> dict[str, float]:
    duration_ms = max(1, math.ceil(warm_seconds * 1000))  # Lambda bills whole milliseconds
    lambda_duration = duration_ms / 1000 * memory_mb / 1024 * PRICES["lambda_arm64_gb_second"] * 1e6
    writes = write_units_per_tdr * PRICES["dynamodb_on_demand_write_units_per_million"]
    product = PRICES["http_api_per_million"] + PRICES["lambda_requests_per_million"] + lambda_duration + writes
    floor = (
        PRICES["http_api_per_million"]
        + PRICES["lambda_requests_per_million"]
        + 1 * PRICES["dynamodb_on_demand_write_units_per_million"]
    )
    rest = PRICES["rest_api_per_million"] + PRICES["dynamodb_on_demand_write_units_per_million"]
    return {
        "product": round(product, 4),
        "floor": round(floor, 4),
        "rest_api_direct_dynamodb": round(rest, 4),
        "billed_ms_per_tdr": duration_ms,
    }


# --- the run -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="cold starts per function and variant (median)")
    parser.add_argument("--tdrs", type=int, default=5000, help="warm invocations of the webhook")
    parser.add_argument("--build-dir", default=str(ROOT / ".aws-sam" / "build"))
    args = parser.parse_args(argv)
    template = Template.load()
    print("laying code out as deployed (.bench/)", flush=True)
    paths = lay_out(template)
    stack = LocalStack(template, StackOptions(log_dir=BENCH / "logs"), status=lambda line: None)
    stack.start()
    try:
        print(f"cold starts: {args.runs} runs of each function, each variant", flush=True)
        cold = cold_starts(stack, paths, args.runs)
        print(f"warm: {args.tdrs} webhook invocations, {args.tdrs} alert records", flush=True)
        warm_results = warm(stack, template, args.tdrs)
    finally:
        stack.stop()
    memory = int(template.function("WebhookFunction")["MemorySize"])
    units = write_units("demo-app-0001")
    results = {
        "cold_start_seconds": cold,
        "warm_seconds": warm_results,
        "write_units": units,
        "alert_invocations_per_status": alert_invocations_for(template),
        "package_bytes_zipped": package_sizes(Path(args.build_dir)),
        "cost_per_million_tdrs_usd": cost_per_million(
            warm_results["webhook"]["product"], memory, units["typical_write_units"]
        ),
        "prices": {"date": PRICES_DATE, **PRICES},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


def table(results: dict[str, Any]) -> str:
    lines = ["", f"{'measure':<46} {'product':>12} {'floor':>12} {'ratio':>7} {'target':>8}"]

    def row(label: str, ours: float, floor: float, target: float | None, unit: str = "ms", scale: float = 1000) -> None:
        ratio = ours / floor if floor else float("nan")
        verdict = "" if target is None else (f"<={target:g} " + ("ok" if ratio <= target else "MISS"))
        lines.append(
            f"{label:<46} {ours * scale:>10.2f}{unit:>2} {floor * scale:>10.2f}{unit:>2} {ratio:>7.2f} {verdict:>8}"
        )

    for name, variants in results["cold_start_seconds"].items():
        for variant in ("product", "product, bytecode shipped"):
            row(
                f"cold start {name} ({variant})",
                variants[variant],
                variants["floor"],
                TARGETS[name] if variant == "product, bytecode shipped" else None,
            )
    warm = results["warm_seconds"]
    row("warm webhook, per TDR", warm["webhook"]["product"], warm["webhook"]["floor"], 1.15, unit="us", scale=1e6)
    row("warm alert, per record", warm["alert"]["product"], warm["alert"]["floor"], None, unit="us", scale=1e6)
    units = results["write_units"]
    lines.append(
        f"{'DynamoDB write units, typical TDR':<46} {units['typical_write_units']:>12} {1:>12} "
        f"{units['typical_write_units']:>7.2f} {'=1 ' + ('ok' if units['typical_write_units'] == 1 else 'MISS'):>8}"
    )
    lines.append(
        f"{'  item bytes typical / maximal':<46} {units['typical_item_bytes']:>12} {units['maximal_item_bytes']:>12}"
    )
    lines.append(f"{'DynamoDB calls per TDR (no read)':<46} {warm['webhook']['dynamodb_calls_per_tdr']:>12.2f} {1:>12}")
    sns = warm["alert"]["sns_calls_per_100_alerts"]
    lines.append(
        f"{'SNS calls per 100 alerts':<46} {sns:>12.1f} {10:>12} {sns / 10:>7.2f} "
        f"{'=10 ' + ('ok' if sns == 10 else 'MISS'):>8}"
    )
    invocations = results["alert_invocations_per_status"]
    quiet = invocations["Submitted"] + invocations["Delivered"]
    lines.append(
        f"{'alert invocations, Submitted+Delivered':<46} {quiet:>12} {0:>12} {'':>7} "
        f"{'=0 ' + ('ok' if quiet == 0 else 'MISS'):>8}"
    )
    sizes = results["package_bytes_zipped"]
    for name, size in sizes.items():
        lines.append(f"{'package ' + name + ', zipped KB':<46} {size / 1024:>12.1f}")
    ours = sizes["ours, all"]
    lines.append(f"{'  ours under 1 MB':<46} {'':>12} {'':>12} {'':>7} {'ok' if ours < 1024 * 1024 else 'MISS':>8}")
    cost = results["cost_per_million_tdrs_usd"]
    cost_ok = "ok" if cost["product"] <= 1.05 * cost["floor"] else "MISS"
    lines.append(
        f"{'cost per million TDRs, USD':<46} {cost['product']:>12.4f} {cost['floor']:>12.4f} "
        f"{cost['product'] / cost['floor']:>7.3f} {'<=1.05 ' + cost_ok:>8}"
    )
    lines.append(f"{'  REST API + direct DynamoDB integration':<46} {cost['rest_api_direct_dynamodb']:>12.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
