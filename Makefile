# The two commands a newcomer needs:  make demo  |  make test
# Both create .venv/ from the exact pins in requirements.lock (reused when unchanged) and install the
# `tsplatform` command there. Service jars (Kafka, MongoDB-wire) are resolved once into the state dir.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE_DIR ?= $(CURDIR)/.tsplatform
export TSPLATFORM_STATE_DIR ?= $(STATE_DIR)
export DAGSTER_HOME ?= $(STATE_DIR)/dagster_home
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(BIN)/python
export SPARK_LOCAL_IP := 127.0.0.1
export RAY_AUTH_MODE := disabled
export DAGSTER_DISABLE_TELEMETRY := 1
# Python caches compiled modules (__pycache__/*.pyc) unless this is set, as some container images do.
# uv does not compile at install either, so without both every process (each Dagster run, the daemon,
# every CLI call, Spark's Python workers) compiled dagster, pandas, pyspark... from source again
# (`import tsplatform.definitions`: 5.6 s uncached, 2.3 s cached). Setup compiles the dependencies
# (--compile-bytecode, ~40 s once), and our own modules are cached as they are imported.
unexport PYTHONDONTWRITEBYTECODE
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
PYTEST_ARGS ?=
# The suite runs in parallel (pytest-xdist), one worker per core up to 4, each test module on one worker
# (module fixtures start services once). Every worker has its own state dir, services on free ports and
# Spark session. Modules are handed out in collection order, the minutes-long ones first (conftest.py
# LONG_MODULES_FIRST). PYTEST_WORKERS= (empty) runs it in one process.
PYTEST_WORKERS ?= --numprocesses=auto --maxprocesses=4 --dist=loadfile --no-loadscope-reorder
# The Dagster UI listens on this address only (loopback by default: it has no authentication).
DAGSTER_HOST ?= 127.0.0.1
DAGSTER_PORT ?= 3000

.PHONY: setup system-deps jars demo dev dagster-home test test-unit lint audit lock bench clean services-up services-down

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null && command -v mvn >/dev/null || $(MAKE) system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# Java 17 + Maven (service jars), PostgreSQL (sql-source tests), MariaDB (`tsplatform services up mariadb`,
# the sensor database), Chromium + chromium-driver (the UI browser test); Debian packages, only when missing.
system-deps:
	@missing=""; command -v java >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	 command -v mvn >/dev/null || missing="$$missing maven"; \
	 ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	 command -v chromium >/dev/null || missing="$$missing chromium"; \
	 command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	 { command -v mariadbd || test -x /usr/sbin/mariadbd; } >/dev/null 2>&1 || missing="$$missing mariadb-server"; \
	 if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

jars: setup
	$(BIN)/tsplatform services fetch

demo: setup system-deps jars dagster-home
	$(BIN)/tsplatform demo $(DEMO_ARGS)

# Dagster reads $(DAGSTER_HOME)/dagster.yaml: keep it a copy of the repo's dagster.yaml (a differing
# older file there is kept as dagster.yaml.~N~).
dagster-home: $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p "$(@D)" && cmp -s $< "$@" || cp --backup=numbered $< "$@"

# The Dagster UI and daemon on the local services (http://127.0.0.1:3000; DAGSTER_HOST to expose it).
dev: setup system-deps jars dagster-home
	$(BIN)/tsplatform services up
	MALLOC_ARENA_MAX=$${MALLOC_ARENA_MAX:-2} $(BIN)/dagster dev -h $(DAGSTER_HOST) -p $(DAGSTER_PORT) -w workspace.yaml

test: setup system-deps jars dagster-home
	$(BIN)/ruff check tsplatform tsplatform_tests bench
	$(BIN)/python -m tsplatform_tests.reliability.audit
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test-unit: setup
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check tsplatform tsplatform_tests bench
	$(BIN)/ruff format --check tsplatform tsplatform_tests bench

# pip-audit of requirements.lock (allowlist: tsplatform_tests/reliability/audit-allowlist.txt). Fails on a
# finding; prints "dependency audit SKIPPED" and succeeds when PyPI's advisory data cannot be reached.
audit: setup
	$(BIN)/python -m tsplatform_tests.reliability.audit

services-up: setup jars
	$(BIN)/tsplatform services up

services-down: setup
	$(BIN)/tsplatform services down

# Re-resolve the pins (deliberate upgrades only).
lock: setup
	$(BIN)/uv pip freeze --python $(BIN)/python --exclude-editable | sed '1i # Exact pins for every package in .venv (generated by `make lock`). Installed with uv.' > requirements.lock

clean:
	-$(BIN)/tsplatform services down
	rm -rf $(STATE_DIR)
