# FunMagic — one entry point for developers and CI. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK_DIR ?= $(CURDIR)/.stack
export FUNMAGIC_STACK_DIR := $(STACK_DIR)
export PYTHON := $(CURDIR)/$(PY)
# Every recipe that talks to the stack loads the environment `stack.sh up` wrote.
WITH_STACK_ENV := set -a; source $(STACK_DIR)/env; set +a;
PACKAGES := libs/contracts libs/kit $(wildcard services/*)
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))

WEB := apps/web
ADMIN := apps/admin
NODE_STAMP := $(WEB)/node_modules/.installed
ADMIN_NODE_STAMP := $(ADMIN)/node_modules/.installed

.PHONY: help setup stack-up stack-down stack-status run seed demo mail stop test test-unit test-integration e2e bench lint contracts \
	web-build web-types web-dev browser promtool docker images compose-env compose-up compose-down test-compose test-containers

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(NODE_STAMP) $(ADMIN_NODE_STAMP) ## Create .venv (every package, pinned) and the apps' node_modules (npm ci)

$(VENV)/.installed: constraints.txt requirements-dev.txt $(PYPROJECTS)
	@$(PYTHON_BOOT) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@echo "[setup] installing packages into $(VENV)"
	@$(PY) -m pip install -q --upgrade pip -c constraints.txt 2>/dev/null || true
	@$(PY) -m pip install -q -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	@touch $@

$(NODE_STAMP): $(WEB)/package-lock.json $(WEB)/package.json
	@command -v npm >/dev/null || { echo "Node.js 20+ and npm are required (apps/web)"; exit 1; }
	@echo "[setup] npm ci in $(WEB)"
	@cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(ADMIN_NODE_STAMP): $(ADMIN)/package-lock.json $(ADMIN)/package.json
	@echo "[setup] npm ci in $(ADMIN)"
	@cd $(ADMIN) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

browser: ## Install Debian's chromium for the browser tests (Playwright drives it; no browser download)
	@command -v chromium >/dev/null || { echo "[setup] installing chromium"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
	@# A CJK font, so pages in zh/ja/ko render (and their screenshots read) as users see them.
	@fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei" || { echo "[setup] installing a CJK font"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-wqy-microhei >/dev/null; }

# Debian's package also starts a Prometheus server where its init system may (a host with systemd; not in a
# container whose policy-rc.d denies it): it is stopped and disabled at once, only promtool is wanted.
promtool: ## Install promtool (Debian's prometheus package) for the alert rules' tests; no Prometheus server is left running
	@command -v promtool >/dev/null || { echo "[setup] installing promtool (Debian's prometheus package)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; \
		invoke-rc.d prometheus stop >/dev/null 2>&1 || true; \
		systemctl disable --now prometheus >/dev/null 2>&1 || systemctl disable prometheus >/dev/null 2>&1 || true; }

web-build: setup ## Type-check and build the apps into apps/*/dist (the gateway serves them at / and /admin/)
	@cd $(WEB) && npm run --silent build
	@cd $(ADMIN) && npm run --silent build

web-types: setup ## Regenerate the web app's API types from the gateway's OpenAPI document
	@tmp=$$(mktemp --suffix=.json); $(PY) deploy/local/openapi_document.py $$tmp; \
		cd $(WEB) && npx openapi-typescript $$tmp --default-non-nullable false -o src/api/schema.d.ts; rm -f $$tmp

web-dev: setup ## Vite's dev server for the web app (proxies /api to the gateway on :8000)
	@cd $(WEB) && npx vite

stack-up: setup ## Start Kafka, Postgres, Redis and SeaweedFS (S3) locally; idempotent
	@bash deploy/local/stack.sh up

stack-down: ## Stop the services and the local stack (data stays under .stack/)
	@if [ -f $(STACK_DIR)/env ]; then $(WITH_STACK_ENV) $(PY) deploy/local/run_services.py down || true; fi
	@bash deploy/local/stack.sh down

stack-status: ## Show which parts of the stack answer
	@bash deploy/local/stack.sh status

run: stack-up web-build ## Start everything with the web app on :8000, seed tools, packages and a demo admin
	@$(WITH_STACK_ENV) $(PY) deploy/local/run_services.py up
	@$(MAKE) --no-print-directory seed
	@echo
	@echo "  open http://127.0.0.1:$${FUNMAGIC_PORT_BASE:-8000}/"
	@echo "  mail (verification, password reset): make mail    ·    stop: make stop    ·    CLI demo: make demo"

seed: ## Seed the tools (local provider), the credit packages and the demo admin; idempotent
	@$(WITH_STACK_ENV) $(PY) deploy/local/run_services.py command tasks seed
	@$(WITH_STACK_ENV) $(PY) deploy/local/run_services.py command credits seed-packages
	@$(WITH_STACK_ENV) FUNMAGIC_ADMIN_PASSWORD="$${FUNMAGIC_DEMO_PASSWORD:-sunny lighthouse passphrase 42}" \
		$(PY) deploy/local/run_services.py command identity create-admin --email "$${FUNMAGIC_DEMO_ADMIN_EMAIL:-demo-admin@funmagic.local}"

demo: ## Run a tool end to end from the command line: upload, task, live progress, output saved locally
	@$(PY) deploy/local/demo.py $(DEMO_ARGS)

mail: ## The mail the local platform kept in its dev sink, newest first, with its links (TO=address to filter)
	@$(WITH_STACK_ENV) $(PY) deploy/local/mail.py $(if $(TO),--to "$(TO)")

stop: ## Stop the six services (the stack keeps running)
	@$(WITH_STACK_ENV) $(PY) deploy/local/run_services.py down

# Test and benchmark platforms share the stack's Kafka topics with `make run`'s services: those would take
# their events (same consumer groups, same topics), so they are stopped first.
STOP_DEV_SERVICES := $(WITH_STACK_ENV) $(PY) deploy/local/run_services.py --quiet down

test: stack-up browser promtool web-build ## Install, start the stack and run every test (unit, integration, contract, e2e, browser)
	@$(STOP_DEV_SERVICES)
	@cd $(WEB) && npx vitest run --reporter=dot
	@cd $(ADMIN) && npx vitest run --reporter=dot
	@$(WITH_STACK_ENV) $(PY) -m pytest -q libs services tests

test-unit: setup promtool ## Only the tests that need no running stack
	@$(PY) -m pytest -q -m "not integration and not e2e" libs services tests

e2e: stack-up ## Only the end-to-end tests (service processes driven from outside)
	@$(STOP_DEV_SERVICES)
	@$(WITH_STACK_ENV) $(PY) -m pytest -q tests/e2e

bench: stack-up web-build ## Run the benchmarks; results go to bench/results/
	@$(STOP_DEV_SERVICES)
	@$(WITH_STACK_ENV) $(PY) bench/run.py

# --- containers: images built from the package registries, the compose platform run for real -----------
COMPOSE := deploy/compose/all.sh
COMPOSE_ENV := deploy/compose/.env
# Loopback ports of the composed platform (beside the native stack's): the web edge, S3, Kafka.
COMPOSE_WEB_PORT ?= 28080
COMPOSE_S3_PORT ?= 29000
COMPOSE_KAFKA_PORT ?= 29094

docker: ## Install Debian's docker.io and debootstrap, start dockerd, build Docker Compose from its Go module (each once)
	@deploy/images/docker.sh

images: docker web-build ## Build every image from the package registries (no image registry): base, service, web, postgres, redis, kafka, s3
	@deploy/images/build.sh

compose-env: setup ## Write deploy/compose/.env with new secrets and loopback ports (kept if it exists)
	@$(PY) deploy/compose/generate_env.py $(COMPOSE_ENV) \
		WEB_PUBLISH_BIND=127.0.0.1 WEB_PUBLISH_PORT=$(COMPOSE_WEB_PORT) \
		S3_PUBLISH_BIND=127.0.0.1 S3_PUBLISH_PORT=$(COMPOSE_S3_PORT) \
		KAFKA_EXTERNAL_BIND=127.0.0.1 KAFKA_EXTERNAL_HOST=127.0.0.1 KAFKA_EXTERNAL_PORT=$(COMPOSE_KAFKA_PORT) \
		S3_PUBLIC_ENDPOINT=http://127.0.0.1:$(COMPOSE_S3_PORT) CDN_URL=http://127.0.0.1:$(COMPOSE_S3_PORT)/funmagic-public \
		WEB_CONTENT_ORIGINS=http://127.0.0.1:$(COMPOSE_S3_PORT) \
		PUBLIC_APP_URL=http://127.0.0.1:$(COMPOSE_WEB_PORT) PUBLIC_API_URL=http://127.0.0.1:$(COMPOSE_WEB_PORT) \
		CORS_ORIGINS=http://127.0.0.1:$(COMPOSE_WEB_PORT) COOKIE_SECURE=false KAFKA_HEAP_OPTS="-Xms256m -Xmx768m"

compose-up: images compose-env ## Start the composed platform (infra, migrations, six services, web edge) and wait until it is healthy
	@$(COMPOSE) up -d --wait --wait-timeout 300
	@echo "  the composed platform: http://127.0.0.1:$$(sed -n 's/^WEB_PUBLISH_PORT=//p' $(COMPOSE_ENV))/    stop: make compose-down"

compose-down: ## Stop and remove the composed platform's containers (volumes are kept; PURGE=1 drops them too)
	@if docker info >/dev/null 2>&1 && [ -f $(COMPOSE_ENV) ]; then $(COMPOSE) down --remove-orphans $(if $(PURGE),--volumes); fi

test-compose: compose-up ## The main job's end-to-end tests against the composed platform, then compose-down with its volumes
	@status=0; FUNMAGIC_COMPOSE_ENV=$(CURDIR)/$(COMPOSE_ENV) $(PY) -m pytest -q tests/compose || status=$$?; \
		$(MAKE) --no-print-directory compose-down PURGE=1 >/dev/null 2>&1 || true; exit $$status

test-containers: images ## A representative part of the suites on the stack in containers (testcontainers), with no native stack
	@env -i PATH="$$PATH" HOME="$$HOME" FUNMAGIC_TEST_STACK=containers $(PY) -m pytest -q \
		libs/kit/tests/integration services/storage/tests/integration tests/e2e/test_tasks.py

lint: setup ## ruff, formatting, import layering, and the contracts' exported files being current
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(VENV)/bin/lint-imports
	@$(PY) -m funmagic_contracts.export --check
	@cd $(WEB) && npx eslint . && npx vue-tsc -b
	@cd $(ADMIN) && npx eslint . && npx vue-tsc -b

contracts: setup ## Re-export the contracts' JSON Schemas and AsyncAPI document
	@$(PY) -m funmagic_contracts.export
