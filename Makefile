# The shop's commands. `make run` serves the demo shop; `make test` runs every test.
# `make help` lists the rest.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VPY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PRODUCTS ?= 1000
PYTEST_ARGS ?=

# The first Python 3.12+ on PATH (pyenv shims included; .python-version asks for 3.13).
PYTHON ?= $(shell for p in python3.13 python3.12 python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
		echo $$p; break; fi; done)

.PHONY: help run test check lint format worker migrate seed clean python bench-flash

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "No Python 3.12 or newer found on PATH. Install Python 3.13 (https://www.python.org/downloads/)" >&2; \
		echo "or point to one: make PYTHON=/path/to/python3.13 run" >&2; exit 1; fi

$(VENV)/.created: | python
	@if [ -x $(VPY) ] && ! $(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "Replacing $(VENV): its Python is older than 3.12."; rm -rf $(VENV); fi
	@[ -x $(VPY) ] || { echo "Creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@$(VPY) -m pip install --quiet --upgrade pip
	@touch $@

$(VENV)/.runtime: requirements.txt $(VENV)/.created
	@echo "Installing pinned requirements"
	@$(VPY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.created
	@echo "Installing pinned test requirements"
	@$(VPY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime ## Set up and serve the shop on http://127.0.0.1:8000 (HOST=, PORT= change it)
	@$(VPY) manage.py migrate --noinput -v 0
	@$(VPY) manage.py seed_demo --products $(DEMO_PRODUCTS) --if-empty
	@$(VPY) manage.py collectstatic --noinput -v 0
	@echo "Serving the shop on http://$(HOST):$(PORT)/ (admin: http://$(HOST):$(PORT)/admin/). Ctrl-C stops it."
	@HOST=$(HOST) PORT=$(PORT) exec $(VENV)/bin/gunicorn -c shop/gunicorn.conf.py shop.wsgi

test: $(VENV)/.dev ## Run the whole test suite (uses DATABASE_URL / REDIS_URL when set)
	@$(VENV)/bin/pytest $(PYTEST_ARGS)

check: $(VENV)/.dev ## Run every gate: ruff, migrations, import contracts, deploy checks
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VPY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports
	DJANGO_ENV=production SECRET_KEY=$$($(VPY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
		ALLOWED_HOSTS=shop.example.com EMAIL_URL=smtp://mail.example.com:587 $(VPY) manage.py check --deploy --fail-level WARNING

format: $(VENV)/.dev ## Format and fix the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

worker: $(VENV)/.runtime ## Start a Celery worker (needs REDIS_URL)
	$(VENV)/bin/celery -A shop worker --loglevel=info

migrate: $(VENV)/.runtime ## Apply database migrations
	$(VPY) manage.py migrate

seed: $(VENV)/.runtime ## Add demo products (DEMO_PRODUCTS=N, default 1000)
	$(VPY) manage.py seed_demo --products $(DEMO_PRODUCTS)

bench-flash: $(VENV)/.dev ## Run the flash-sale load harness (BENCH_ARGS="--buyers 500" passes options)
	@$(VPY) bench/run.py $(BENCH_ARGS)

clean: ## Remove the virtualenv and local state (var/: SQLite database, media, mail)
	rm -rf $(VENV) var .pytest_cache .ruff_cache
