# The two commands of the README: `make up` (the whole stack, natively) and `make test`.
# Both install what they need first: Debian packages, a virtualenv, the Kafka and ElasticMQ jars.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
APT_PACKAGES := memcached chromium wrk kcat
N ?= 1000
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: up down test lint bench chaos generate install deps-system deps-python deps-kafka deps-sqs clean build-SharedLayer

up: install
	@infra/native/up.sh

down:
	@if [ -f .local/stack.pid ]; then kill -TERM "$$(cat .local/stack.pid)" 2>/dev/null && echo "stopping the stack"; \
	else echo "the stack is not running"; fi

# Two workers (pytest-xdist), a module each at a time: most tests wait on services rather than compute, and each
# worker starts services of its own on free ports, so they share nothing.
test: install
	$(BIN)/pytest -n 2 --dist loadscope

lint: install
	$(BIN)/ruff check src functions tests bench devstack
	$(BIN)/ruff format --check src functions tests bench devstack
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench.run

# Faults at random moments under a steady stream, then every record accounted for (bench/chaos.json).
# CHAOS_S: seconds of traffic and faults (default 180).
chaos: install
	$(BIN)/python -m bench.chaos

generate: install
	$(BIN)/orders-generate $(N)

install: deps-system deps-python deps-kafka deps-sqs

deps-system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

deps-python: $(VENV)/.installed

deps-kafka:
	@infra/native/kafka.sh fetch

deps-sqs:
	@infra/native/sqs.sh fetch

clean:
	rm -rf .local $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/artifacts bench/results.json bench/chaos.json

# `sam build` (BuildMethod: makefile) builds the Lambda layer here: orders_core and its dependencies only.
build-SharedLayer:
	layer/build.sh "$(ARTIFACTS_DIR)"
