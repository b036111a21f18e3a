"""The peer (issue 22): what a Powertools user would write instead of the product's webhook (peer/app.py), laid
out, measured and printed beside it as the product is (bench.run calls these: lay_out, cold_variants, warm_call,
log_counts, table_rows).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

PEER = "peer (typical Powertools)"
PEER_PYC = f"{PEER}, bytecode shipped"
# Issue 22: the product's webhook against the peer, each a bug when missed (the product's bytecode-shipped cold
# start against the peer's, as deployed both ship bytecode in the layer; warm per TDR, the same transport).
COLD_TARGET = 0.8
WARM_TARGET = 0.9
APP = Path(__file__).with_name("app.py")


def lay_out(bench: Path) -> dict[str, Path]:
    """The peer's function code as deployed, in its own directory; it runs on the product's layer."""
    target = bench / "peer"
    target.mkdir(parents=True)
    shutil.copy(APP, target / "app.py")
    return {"peer": target}


def cold_variants(name: str, paths: dict[str, Path]) -> dict[str, tuple[Path, str, list[Path]]]:
    """The peer's cold-start variants, as the product's: its code then the layer, without and with shipped
    bytecode (the runtime's boto3 is added by cold_starts, as for every variant)."""
    if name != "webhook":
        return {}
    app = paths["peer"] / "app.py"
    return {
        PEER: (app, "lambda_handler", [paths["peer"], paths["layer"]]),
        PEER_PYC: (app, "lambda_handler", [paths["peer"], paths["layer-pyc"]]),
    }


# What the product's template sets for speed that a typical function's would not: the peer starts without it.
OUR_TUNINGS = ("PYDANTIC_DISABLE_PLUGINS",)


def environment(variant: str, product: dict[str, str]) -> dict[str, str]:
    """A variant's environment: the product's (its table, secret, Powertools settings), less our own tunings for
    the peer's variants."""
    if variant not in (PEER, PEER_PYC):
        return product
    return {name: value for name, value in product.items() if name not in OUR_TUNINGS}


def load() -> ModuleType:
    """The peer's module, imported as Lambda would (under a name of its own, its environment already set)."""
    spec = importlib.util.spec_from_file_location("peer_typical_powertools", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def warm_call(
    event: dict[str, Any], context: Any, stub: Callable[..., list[int]], sink: io.TextIOBase
) -> tuple[Callable[[], Any], list[int]]:
    """The peer ready to be timed beside the product: its first call reads the secret and builds its clients
    (from the emulator), then its DynamoDB and Secrets Manager calls are answered in memory by the product's
    stub; its log lines go to ``sink``. Returns the call and the list that counts its PutItems."""
    # get_secret's providers, each made on its first use.
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    peer = load()
    peer.logger.registered_handler.stream = sink
    first = peer.lambda_handler(event, context)  # the product stored this TDR first: a repeat, for the peer
    assert first["statusCode"] == 200, first
    secret = peer.parameters.get_secret(peer.SECRET_ARN, max_age=60)  # the cached value: no call
    answer = json.dumps({"ARN": peer.SECRET_ARN, "Name": "webhook", "SecretString": secret}).encode()
    stub(DEFAULT_PROVIDERS["secrets"].client, "GetSecretValue", lambda _: answer, _JSON_1_1)
    calls = stub(peer.table.meta.client, "PutItem", lambda _: b"{}", "application/x-amz-json-1.0")
    # Powertools warns once per process when log_metrics flushes no metric (a stored TDR emits none, as the
    # product's): on Lambda a line in the log at the first such call; here not on the bench's output.
    with contextlib.redirect_stderr(io.StringIO()):
        stored = peer.lambda_handler(event, context)  # stored, no metric: the warning, once
    assert json.loads(stored["body"])["result"]["duplicate"] is False, stored
    calls.clear()  # counted from here, as the product's and the floors' PutItems are
    return lambda: peer.lambda_handler(event, context), calls


_JSON_1_1 = "application/x-amz-json-1.1"


def log_counts(call: Callable[[], Any], sink: Any, runs: int = 200) -> dict[str, float]:
    """The peer's log lines and EMF output per TDR, untimed (its logger writes to ``sink``; EMF to stdout)."""
    sink.bytes = sink.events = 0
    with contextlib.redirect_stdout(sink):
        for _ in range(runs):
            call()
    return {"log_bytes_per_tdr": sink.bytes / runs, "log_events_per_tdr": sink.events / runs}


def table_rows(results: dict[str, Any], misses: list[str]) -> list[str]:
    """The product's webhook against the peer: cold start and warm per TDR, product / peer, with the targets."""
    cold = results["cold_start_seconds"].get("webhook", {})
    warm = results["warm_seconds"].get("webhook", {})
    if PEER not in cold and PEER not in warm:
        return []
    lines = [
        "",
        f"{'the webhook against ' + PEER:<44} {'product':>10} {'peer':>10} {'ratio':>6} {'target':>10}",
    ]

    def row(label: str, ours: float, peer: float, target: float | None, unit: str, scale: float) -> None:
        ratio = ours / peer
        verdict = ""
        if target is not None:
            met = ratio <= target
            verdict = f"<={target:g} " + ("ok" if met else "MISS")
            if not met:
                misses.append(f"{label} against the peer: {ratio:.2f} (target <={target:g})")
        lines.append(f"{label:<44} {ours * scale:>8.2f}{unit} {peer * scale:>8.2f}{unit} {ratio:>6.2f} {verdict:>10}")

    if PEER in cold:
        row("cold start webhook", cold["product"], cold[PEER], None, "ms", 1000)
        row(
            "cold start webhook (bytecode shipped)",
            cold["product, bytecode shipped"],
            cold[PEER_PYC],
            COLD_TARGET,
            "ms",
            1000,
        )
    if PEER in warm:
        row("warm webhook, per TDR", warm["product"], warm[PEER], WARM_TARGET, "us", 1e6)
        logs = warm.get("peer_logs")
        if logs:
            lines.append(
                f"{'  log lines / bytes per TDR (LogLevel INFO)':<44} "
                f"{warm['log_events_per_tdr']:>4.2f} / {warm['log_bytes_per_tdr']:<3.0f} "
                f"{logs['log_events_per_tdr']:>4.2f} / {logs['log_bytes_per_tdr']:<3.0f}"
            )
    return lines
