# Everyday commands. `make demo` runs the demo on the embedded default (SQLite, eager tasks);
# `make test` runs the whole suite on PostgreSQL and Redis, then again on SQLite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS ?= redis://127.0.0.1:6379
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
PROD_ENV := ERP_ENV=production DJANGO_ALLOWED_HOSTS=tillbook.example.com \
	DJANGO_SECRET_KEY=ci-only-$$(printf '%064d' 0 | tr 0 x)-not-a-real-secret

.PHONY: setup demo serve test test-postgres test-sqlite check lint format services clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py load_demo
	$(PY) manage.py runserver $(HOST):$(PORT)

services:
	bash scripts/services.sh

test: setup services test-postgres test-sqlite

test-postgres: setup
	ERP_ENV=test DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS)/14 CELERY_BROKER_URL=$(REDIS)/15 \
		CELERY_TASK_ALWAYS_EAGER=true \
		$(PY) -m pytest $(PYTEST_ARGS)

test-sqlite: setup
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL ERP_ENV=test \
		ERP_DATA_DIR=$$(mktemp -d) $(PY) -m pytest -m "not postgres" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PROD_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	docker-compose -f docker/compose.yml config -q

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache
