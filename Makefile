# goldsignals: `make run` sets up and runs the daily job on the embedded stack,
# `make test` sets up and runs the tests. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin

# Real gold prices shipped beside the project; seeds the history offline.
SHARED_DATA ?= $(abspath $(CURDIR)/../shared/data)
export GOLDSIGNALS_SHARED_DATA := $(SHARED_DATA)
# Offline machines: Yahoo is unreachable and the shared prices end 2026-08-06,
# so accept their age (the product's default refuses prices over 7 days old).
# GOLDSIGNALS_DEFAULT_X sets X only where neither the environment nor .env
# does, so on a host that reaches Yahoo GOLDSIGNALS_MAX_PRICE_AGE_DAYS=7 in
# .env wins. goldsignals alone reads .env and the state folder's place.
export GOLDSIGNALS_DEFAULT_SEED_CSV := $(SHARED_DATA)/gold_futures_daily.csv
export GOLDSIGNALS_DEFAULT_MAX_PRICE_AGE_DAYS := 0
# Offline machines: no telemetry from ZenML or MLflow.
export ZENML_ANALYTICS_OPT_IN := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | md5sum | cut -c1-12)

.PHONY: help install system-deps stack run train infer signals evaluate airflow compile up \
	deploy-stack down test test-fast bench bench-quick lint format check lock lock-zenml-server clean \
	distclean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), \
		"goldsignals needs Python 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,airflow]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP) ## Create .venv and install the pinned dependencies

stack: install ## Register the embedded ZenML stack (stack_configs/embedded.yaml)
	$(BIN)/goldsignals stack --config stack_configs/embedded.yaml

run: stack ## Run feature engineering, training and inference; print signals
	$(BIN)/goldsignals run all
	$(BIN)/goldsignals signals

train: stack ## Run only the training pipeline
	$(BIN)/goldsignals run training

infer: stack ## Run only the inference pipeline
	$(BIN)/goldsignals run inference

signals: install ## Print the newest signals and their track record
	$(BIN)/goldsignals signals

evaluate: install ## Walk-forward scores and backtest of the model on the real history
	$(BIN)/goldsignals evaluate

airflow: install ## Airflow on this host: register the stack, compile DAGs, start
	$(BIN)/goldsignals stack --config stack_configs/airflow_local.yaml
	$(BIN)/goldsignals compile
	$(BIN)/goldsignals airflow start

compile: install ## Recompile the DAGs on the active (Airflow) stack
	$(BIN)/goldsignals compile

# Where `make up` runs the services: docker-compose.yaml where a Docker engine
# answers, else this host's binaries. UP_MODE=host or UP_MODE=compose decides.
UP_MODE ?= auto
DOCKER ?= docker
COMPOSE_MODE = { [ "$(UP_MODE)" = compose ] || { [ "$(UP_MODE)" = auto ] && \
	$(DOCKER) info >/dev/null 2>&1; }; }
HOST_SERVICES := airflow zenml-server mlflow postgres

up: install ## Start Postgres, MLflow, ZenML server, Airflow (compose or host binaries)
	@case "$(UP_MODE)" in auto|host|compose) ;; *) \
		echo "error: UP_MODE=$(UP_MODE) is not auto, host or compose" >&2; exit 2;; \
	esac
	@if $(COMPOSE_MODE); then \
		echo "make up: docker compose up (UP_MODE=host runs the host's binaries)"; \
		$(DOCKER) compose up -d --wait; \
	else \
		$(BIN)/goldsignals postgres start && \
		$(BIN)/goldsignals mlflow start && \
		$(BIN)/goldsignals zenml-server start && \
		$(BIN)/goldsignals airflow start --database postgres; \
	fi

deploy-stack: install ## Register the Airflow stack against `make up`; compile DAGs
	@if $(COMPOSE_MODE); then \
		$(DOCKER) compose exec airflow-scheduler goldsignals deploy-stack; \
	else \
		$(BIN)/goldsignals deploy-stack; \
	fi

down: ## Stop every service `make airflow` and `make up` started
	@status=0; \
	if [ -x $(BIN)/goldsignals ]; then \
		$(BIN)/goldsignals zenml-server disconnect || status=1; \
		for service in $(HOST_SERVICES); do \
			$(BIN)/goldsignals $$service stop || status=1; \
		done; \
	fi; \
	if $(COMPOSE_MODE); then $(DOCKER) compose down || status=1; fi; \
	exit $$status

PG_CTL := $(firstword $(wildcard /usr/lib/postgresql/*/bin/pg_ctl) \
	$(shell command -v pg_ctl))

system-deps: ## Debian packages the tests need: PostgreSQL, Chromium, docker-compose
	@missing=""; \
	test -n "$(PG_CTL)" || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing$$missing"; apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $$missing >/dev/null; \
		else echo "install the Debian packages$$missing for the tests"; exit 1; fi; \
	fi

test: install system-deps ## Run every test (unit, end to end, Airflow, browser)
	$(BIN)/pytest

test-fast: install ## Run the tests that need no pipeline run
	$(BIN)/pytest -m "not e2e and not airflow"

BENCH_ARGS ?=
bench: install ## Measure floor, embedded and Airflow paths, growth; print tables
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: install ## A short benchmark: 1 repeat, 2-year history, no Airflow
	$(BIN)/python -m bench.run --quick --skip-airflow $(BENCH_ARGS)

lint: install ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test ## Every check: format, lint, types, tests

lock: ## Re-resolve the dependencies into constraints.txt (needs the registry)
	rm -rf $(CURDIR)/.lockenv
	$(PYTHON) -m venv $(CURDIR)/.lockenv
	$(CURDIR)/.lockenv/bin/pip install --quiet -e '.[dev,airflow]'
	$(CURDIR)/.lockenv/bin/pip freeze --exclude-editable | \
		grep -v '^goldsignals' > constraints.txt
	rm -rf $(CURDIR)/.lockenv

lock-zenml-server: ## Re-resolve constraints-zenml-server.txt (needs the registry)
	rm -rf $(CURDIR)/.lockenv
	$(PYTHON) -m venv $(CURDIR)/.lockenv
	$(CURDIR)/.lockenv/bin/pip install --quiet --upgrade pip
	$(CURDIR)/.lockenv/bin/pip install --quiet 'zenml[server]==0.98.0'
	{ grep '^#' constraints-zenml-server.txt; $(CURDIR)/.lockenv/bin/pip freeze; } \
		> constraints-zenml-server.tmp
	mv constraints-zenml-server.tmp constraints-zenml-server.txt
	rm -rf $(CURDIR)/.lockenv

clean: down ## Stop the services; remove all local state and the compiled DAGs
	@home="$(CURDIR)/.goldsignals"; \
		if [ -x $(BIN)/goldsignals ]; then home=$$($(BIN)/goldsignals home) || exit 2; fi; \
		root="$${home%/}/"; case "$(CURDIR)/" in "$$root"*) \
			echo "error: not removing $$home, which holds $(CURDIR)" >&2; exit 2;; \
		esac; \
		echo "rm -rf $$home"; rm -rf "$$home"
	rm -rf .pytest_cache .mypy_cache .ruff_cache
	rm -f dags/*.zip dags/.*.fingerprint

distclean: clean ## Also remove the virtual environments
	rm -rf "$(VENV)" "$(CURDIR)/.venv-zenml-server"
