# Each tool gets its own virtual environment: the project's (Python 3.13, the Lambda
# runtime) and SAM CLI's (which pins its own pydantic and bundles cfn-lint).
# Every environment installs from a lock (a .txt compiled from the .in beside it by
# `make lock`): every package pinned and hashed, transitive ones included, and pip
# checks the hashes. Nothing resolves versions on the way to `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON313 ?= $(shell PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13)
TOOLS_PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
SEMGREP_VENV := .venv-semgrep
UV_VENV := .venv-uv
BUILD_DIR := .aws-sam/build
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help demo local load latency bench test lint validate security build pytest unit fmt hooks lock clean package chromium widget-png

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

LOCAL_STACK := $(VENV)/bin/python -m local_stack

demo: $(VENV)/.installed  ## run the product locally: a simulated day of CINNOX traffic, then an account of it
	$(LOCAL_STACK) demo $(DEMO_ARGS)

local: $(VENV)/.installed  ## keep the local stack running (webhook on :3000); Ctrl-C stops it
	$(LOCAL_STACK) local $(LOCAL_ARGS)

load: $(VENV)/.installed  ## benchmark: the latency people feel (make latency), then TDRs offered at 20-320/s in steps: where it saturates, 429s, lost
	$(LOCAL_STACK) latency $(LATENCY_ARGS); latency=$$?; $(LOCAL_STACK) load $(LOAD_ARGS) && exit $$latency

latency: $(VENV)/.installed  ## benchmark: from a TDR's POST to its stored item, alert, digest and rollup (p50/p95/max, the AWS model beside)
	$(LOCAL_STACK) latency $(LATENCY_ARGS)

bench: $(VENV)/.installed build  ## benchmark: cold starts, warm cost, calls, bytes, package sizes, cost (devrig/bench/results.json)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

test: lint validate security build pytest  ## everything CI runs: lint, template and security checks, sam build, tests

# Every venv installs from a lock with uv, which checks every file's hash (--require-hashes)
# and installs in seconds what pip takes a minute for. uv itself comes from PyPI like everything
# else, pinned and hashed, installed by the tools' Python's own pip.
UV := $(UV_VENV)/bin/uv
UV_LOCKED = $(UV) pip install -q --require-hashes --python

$(UV_VENV)/.installed: devrig/requirements/uv.txt
	rm -rf $(UV_VENV) && $(TOOLS_PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install -q --require-hashes -r devrig/requirements/uv.txt
	touch $@

# The project and devrig/ are installed editable with no build isolation: their build backend
# (setuptools) comes from its own hashed lock, devrig/requirements/build.txt, like everything else.
$(VENV)/.installed: requirements-dev.txt devrig/requirements/build.txt pyproject.toml devrig/pyproject.toml $(UV_VENV)/.installed
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (the Lambda runtime's version): install it, or set PYTHON313=" >&2; exit 1; }
	rm -rf $(VENV) && $(PYTHON313) -m venv $(VENV)
	$(UV_LOCKED) $(VENV)/bin/python -r requirements-dev.txt -r devrig/requirements/build.txt
	$(UV) pip install -q --python $(VENV)/bin/python --no-deps --no-build-isolation -e . -e devrig
	touch $@

$(CHECKOV_VENV)/.installed: devrig/requirements/checkov.txt $(UV_VENV)/.installed
	rm -rf $(CHECKOV_VENV) && $(TOOLS_PYTHON) -m venv $(CHECKOV_VENV)
	$(UV_LOCKED) $(CHECKOV_VENV)/bin/python -r devrig/requirements/checkov.txt
	touch $@

$(SEMGREP_VENV)/.installed: devrig/requirements/semgrep.txt $(UV_VENV)/.installed
	rm -rf $(SEMGREP_VENV) && $(TOOLS_PYTHON) -m venv $(SEMGREP_VENV)
	$(UV_LOCKED) $(SEMGREP_VENV)/bin/python -r devrig/requirements/semgrep.txt
	touch $@

$(SAM_VENV)/.installed: devrig/requirements/sam.txt $(UV_VENV)/.installed
	rm -rf $(SAM_VENV) && $(TOOLS_PYTHON) -m venv $(SAM_VENV)
	$(UV_LOCKED) $(SAM_VENV)/bin/python -r devrig/requirements/sam.txt
	touch $@

lint: $(VENV)/.installed  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

validate: $(SAM_VENV)/.installed  ## cfn-lint and sam validate --lint on template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template-file template.yaml

# Suppressions are justified where they stand: checkov's in the template's Metadata,
# bandit's as "nosec" comments, semgrep's as "nosemgrep: <rule-id>" comments. In cli/ and devrig/
# (never deployed) bandit also skips asserts (B101), simulated randomness (B311) and starting our
# own processes (B404, B603). semgrep runs offline: its Python rules are devrig/semgrep/python.yml
# (the registry's p/python would be downloaded at every run), first checked against their examples
# (python.py beside them, which the scans skip: "--exclude semgrep", by name, since a pattern with a
# slash matches nothing outside a git work tree), then run on the same code as bandit.
SEMGREP := $(SEMGREP_VENV)/bin/semgrep
SEMGREP_OFFLINE := --metrics=off --disable-version-check
security: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(SEMGREP_VENV)/.installed  ## checkov on template.yaml, bandit and semgrep on the code
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(VENV)/bin/bandit -q -r layers/common/cinnox_sms functions
	$(VENV)/bin/bandit -q -r cli devrig -s B101,B311,B404,B603 -x devrig/semgrep
	$(SEMGREP) --test --quiet $(SEMGREP_OFFLINE) devrig/semgrep
	$(SEMGREP) scan --quiet --error $(SEMGREP_OFFLINE) --config devrig/semgrep/python.yml --exclude semgrep \
		layers/common/cinnox_sms functions cli devrig

# sam build runs pip for the python3.13 runtime: a real python3.13 must be on PATH.
build: $(SAM_VENV)/.installed  ## sam build (arm64 wheels, no Docker)
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAM_VENV)/bin/sam build --template-file template.yaml --build-dir $(BUILD_DIR)

# SAM CLI's own sam package of the build: to PACKAGE_BUCKET with your AWS credentials, or, without it,
# rehearsed against moto's S3 on loopback (no account, no network). docs/publishing.md: then sam publish.
package: $(VENV)/.installed build  ## sam build + sam package to .aws-sam/packaged.yaml (PACKAGE_BUCKET=, else moto's S3)
	$(VENV)/bin/python devrig/package.py --sam $(SAM_VENV)/bin/sam --build-dir $(BUILD_DIR) \
		--output .aws-sam/packaged.yaml $(if $(PACKAGE_BUCKET),--bucket $(PACKAGE_BUCKET))

# The IAM rehearsal (tests/integration/test_iam.py) takes the functions' roles from SAM CLI's own translator.
# pytest-xdist: one worker per core, each test file whole to one worker (the e2e files' module-scoped local
# stacks start once); pytest-cov combines the workers' coverage, the floor applies to this full run only.
PYTEST_WORKERS ?= 2
PYTEST_COVERAGE := --cov --cov-report=term-missing:skip-covered --cov-fail-under=90
pytest: $(VENV)/.installed $(SAM_VENV)/.installed chromium  ## the whole suite on every core, coverage of functions/ and layers/ enforced
	SAM_BUILD_DIR=$(BUILD_DIR) $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_COVERAGE)

# Debian's chromium renders the delivery widget as a person sees it (tests/e2e/test_widget_chromium.py, make widget-png).
# Installed here when missing, as CI (a fresh Debian machine running make test) gets it: apt-get as root, else
# through sudo; without either, the command to run is printed. make unit does not need it.
CHROMIUM_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
chromium:  ## Debian's chromium (headless), for the widget's e2e test: apt-get installs it when missing
	@command -v chromium >/dev/null && exit 0; \
	command -v apt-get >/dev/null || { echo "chromium not found, and no apt-get: install Chromium as 'chromium' on PATH" >&2; exit 1; }; \
	if [ "$$(id -u)" = 0 ]; then as_root=; elif command -v sudo >/dev/null; then as_root=sudo; else \
		echo "chromium not found; installing it needs root: $(CHROMIUM_INSTALL)" >&2; exit 1; fi; \
	echo "installing chromium: $(CHROMIUM_INSTALL)"; \
	started=$$SECONDS; $$as_root sh -c '$(CHROMIUM_INSTALL)' && echo "chromium installed in $$((SECONDS - started)) s"

# The picture of the widget in docs/operations.md: the demo's traffic (small) through a local stack, the widget's
# page rendered by headless chromium at its local URL.
WIDGET_PNG ?= docs/img/delivery-widget.png
widget-png: $(VENV)/.installed chromium  ## screenshot of the delivery widget after demo traffic, by chromium (docs/img/delivery-widget.png)
	$(LOCAL_STACK) widget-screenshot $(WIDGET_PNG)

unit: $(VENV)/.installed  ## the unit tests (no moto, no subprocess): the quick loop while coding, no coverage
	$(VENV)/bin/pytest tests/unit

fmt: $(VENV)/.installed  ## format the code and apply ruff's safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

hooks: $(VENV)/.installed  ## install the git pre-commit hooks (.pre-commit-config.yaml), run from .venv
	$(VENV)/bin/pre-commit install

# Each lock is re-resolved from its .in, keeping the versions it already pins unless
# asked otherwise: `make lock LOCK_ARGS=--upgrade`, or `LOCK_ARGS="--upgrade-package pydantic"`.
# Hashes come from PyPI for every file of each pinned version. The layer is compiled for
# the Lambda runtime (arm64, CPython 3.13), not for this machine; the dev lock for Python
# 3.13 on any platform, the tools' locks for 3.11 and later (TOOLS_PYTHON).
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --no-strip-extras --no-config $(LOCK_ARGS)
lock: $(UV_VENV)/.installed  ## re-resolve the dependency locks (*.txt) from their .in files, with hashes
	$(UV_COMPILE) --python-platform aarch64-manylinux2014 --python-version 3.13 \
		-o layers/common/requirements.txt layers/common/requirements.in
	@! grep -qiE '^(boto3|botocore|s3transfer)==' layers/common/requirements.txt || \
		{ echo "the layer's lock pulls in boto3: the runtime provides it, keep it out" >&2; exit 1; }
	$(UV_COMPILE) --universal --python-version 3.13 -o requirements-dev.txt requirements.in
	$(UV_COMPILE) --universal --python-version 3.11 -o devrig/requirements/sam.txt devrig/requirements/sam.in
	$(UV_COMPILE) --universal --python-version 3.11 -o devrig/requirements/checkov.txt devrig/requirements/checkov.in
	$(UV_COMPILE) --universal --python-version 3.11 -o devrig/requirements/uv.txt devrig/requirements/uv.in
	$(UV_COMPILE) --universal --python-version 3.11 -o devrig/requirements/semgrep.txt devrig/requirements/semgrep.in
	$(UV_COMPILE) --universal --python-version 3.13 -o devrig/requirements/build.txt devrig/requirements/build.in
	$(UV_COMPILE) --universal --python-version 3.13 -c requirements-dev.txt -o devrig/requirements/cli.txt pyproject.toml
	{ echo "# The pins of cli.txt without their hashes, for pip's --constraint: pip reads a hash in a constraints"; \
	  echo "# file as --require-hashes for everything, which a project directory cannot meet. Written by make lock."; \
	  grep -E '^[A-Za-z0-9]' devrig/requirements/cli.txt | sed -E 's/ *\\$$//'; } > devrig/requirements/cli-constraints.txt

clean:  ## remove virtual environments and build output
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(SEMGREP_VENV) $(UV_VENV) .aws-sam .local-stack .pytest_cache .mypy_cache .ruff_cache .coverage
