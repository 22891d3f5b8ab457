# The serverless call recorder for Amazon Connect.
#
#   make dev     .venv with Python 3.13 and the project installed editable
#   make test    everything CI runs: installs what it needs, then lint, types, template checks, pytest
#   make build   sam build, offline, no container
#   make demo    the whole pipeline on this machine: simulated calls recorded into demo-output/
#   make bench   benchmarks: figures and ratios against references measured in the same run
#   make fuzz    N=100000 mutated captures, whole and in chunks: counts per outcome, fuzz-failures/
#
# Each tool with conflicting pins (aws-sam-cli, cfn-lint, checkov) gets its own uv tool
# environment under .tools/, so none of them can break the dev venv or each other.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_VERSION := 3.13
# Lambda's runtime: `sam build` and the dev venv both need this interpreter.
# pyenv's real interpreters come first: its shims on PATH fail unless a version is selected.
PY313 ?= $(firstword \
  $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION)) \
  $(wildcard $(HOME)/.pyenv/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION)) \
  $(shell command -v python$(PYTHON_VERSION) 2>/dev/null))

# checkov supports Python up to 3.12: its tool environment gets that interpreter.
PY312 ?= $(firstword \
  $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12) \
  $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) \
  $(shell command -v python3.12 2>/dev/null))

VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools
TOOL_ENV := UV_TOOL_DIR=$(TOOLS)/envs UV_TOOL_BIN_DIR=$(TOOLS)/bin UV_PYTHON_DOWNLOADS=never
SAM_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
CHECKOV_VERSION := 3.3.30
# sam build resolves the runtime's interpreter from PATH.
SAM := PATH="$(dir $(PY313)):$$PATH" SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam
SYSTEM_PACKAGES := ffmpeg mkvtoolnix chromium
SYSTEM_COMMANDS := ffmpeg mkvmerge chromium

.PHONY: help dev tools sysdeps lint typecheck cfn test unit build demo bench fuzz clean

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

$(VENV)/.installed: pyproject.toml requirements-dev.txt
	@test -n "$(PY313)" && "$(PY313)" --version >/dev/null 2>&1 || { echo "error: Python $(PYTHON_VERSION) not found: looked for python$(PYTHON_VERSION) on PATH and under \$$(pyenv root)/versions/$(PYTHON_VERSION)*; install it (e.g. 'pyenv install $(PYTHON_VERSION)') or pass PY313=/path/to/python$(PYTHON_VERSION)" >&2; exit 1; }
	@echo "using $(PY313)"
	test -x $(BIN)/python || $(PY313) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt uv==0.13.9
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

dev: $(VENV)/.installed

$(TOOLS)/bin/sam: | $(VENV)/.installed
	$(TOOL_ENV) $(BIN)/uv tool install -q --python $(PY313) aws-sam-cli==$(SAM_VERSION)

$(TOOLS)/bin/cfn-lint: | $(VENV)/.installed
	$(TOOL_ENV) $(BIN)/uv tool install -q --python $(PY313) cfn-lint==$(CFN_LINT_VERSION)

$(TOOLS)/bin/checkov: | $(VENV)/.installed
	@test -n "$(PY312)" || { echo "error: Python 3.12 not found (checkov supports up to 3.12): looked for python3.12 on PATH and under \$$(pyenv root)/versions/3.12*; install it or pass PY312=/path/to/python3.12" >&2; exit 1; }
	$(TOOL_ENV) $(BIN)/uv tool install -q --python $(PY312) checkov==$(CHECKOV_VERSION)

tools: $(TOOLS)/bin/sam $(TOOLS)/bin/cfn-lint $(TOOLS)/bin/checkov

# Debian packages the tests need (real muxers to check the reader against).
sysdeps:
	@missing=""; for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "error: need $(SYSTEM_PACKAGES) (apt-get install -y $(SYSTEM_PACKAGES)) and not root" >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: dev
	$(BIN)/mypy
	@# Every handler is a module named `app`: check each on its own.
	for f in functions/*/app.py; do $(BIN)/mypy --strict "$$f"; done

cfn: tools
	$(TOOLS)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1
	@# Offline; every skipped check is justified in the resource's Metadata.
	$(TOOLS)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

test: dev tools sysdeps lint typecheck cfn
	$(BIN)/pytest -n 2 --timeout 300

# tests/unit/template translates the template with the aws-sam-cli environment's own translator.
unit: dev $(TOOLS)/bin/sam
	$(BIN)/pytest tests/unit

build: tools
	$(SAM) build --parallel

demo: dev
	$(BIN)/callrec demo --out demo-output

bench: dev sysdeps
	$(BIN)/python -m bench

N ?= 100000
SEED ?= 0
fuzz: dev
	$(BIN)/python -m callrec_local.fuzz -n $(N) --seed $(SEED) --out fuzz-failures

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .mypy_cache .ruff_cache .pytest_cache
