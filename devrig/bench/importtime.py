"""What each cold start spends importing, by package: `python -m bench.importtime` after `make bench`.

Runs `python -X importtime` on the code `make bench` laid out in .bench/ (bytecode shipped, the
runtime's boto3 precompiled, as in Lambda) and sums each module's own time by top-level package.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.run import BENCH, FUNCTIONS

_IMPORT = (
    "import importlib.util as u, sys; s = u.spec_from_file_location('handler_module', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m)"
)


def spent(path: Path, pythonpath: list[Path]) -> dict[str, float]:
    """Milliseconds of import time (each module's own) by top-level package (the standard library's too)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": os.pathsep.join(str(p) for p in [*pythonpath, BENCH / "runtime"]),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    python = getattr(sys, "_base_executable", sys.executable)
    done = subprocess.run(
        [python, "-s", "-X", "importtime", "-c", _IMPORT, str(path)], env=env, capture_output=True, text=True
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        top = name.strip().split(".")[0]
        totals[top] = totals.get(top, 0.0) + int(own) / 1000
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.importtime", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="imports per function (the median of each package)")
    args = parser.parse_args()
    layer = BENCH / "layer-pyc" / "python"
    for logical_id, name in FUNCTIONS.items():
        for variant, path, code in (
            ("product", BENCH / "functions" / logical_id / "app.py", [BENCH / "functions" / logical_id, layer]),
            ("card floor", BENCH / "floors" / "card.py", [BENCH / "floors", layer]),
        ):
            runs = [spent(path, code) for _ in range(args.runs)]
            groups = sorted({group for run in runs for group in run})
            median = {g: sorted(run.get(g, 0.0) for run in runs)[len(runs) // 2] for g in groups}
            ranked = sorted(median.items(), key=lambda kv: -kv[1])
            rest = sum(ms for _, ms in ranked[8:])
            parts = ", ".join(f"{g} {ms:.0f}" for g, ms in ranked[:8]) + f", the rest {rest:.0f}"
            print(f"{name:<13} {variant:<11} {sum(median.values()):>5.0f} ms: {parts}")


if __name__ == "__main__":
    main()
