# emmmbedding: `make run` (the site on embedded defaults) and `make test` (the whole suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

# Model weights: EMMM_MODEL_DIR when set, else ../shared/models when it exists,
# else the codec's own download cache.
ifeq ($(origin EMMM_MODEL_DIR), undefined)
ifneq ($(wildcard ../shared/models),)
export EMMM_MODEL_DIR := $(abspath ../shared/models)
endif
endif
# EMMM_TORCH_THREADS: the worker sizes itself (emmmsite/worker_sizing.py); tests set 2 (tests/conftest.py).

TEST_DATABASE_URL ?= postgres://emmm:emmm@127.0.0.1:5432/emmm

.PHONY: venv run run-prod test test-fast services migrate clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

# Web server (gunicorn, the project's config), a Celery worker and one Celery beat under
# supervisord (scripts/run.sh, scripts/supervisord.conf), on SQLite and kombu's filesystem
# broker under var/. A process that dies is restarted; Ctrl-C or SIGTERM stops all of them.
run: venv
	VENV=$(VENV) bash scripts/run.sh

# Production-shaped (the same supervision): needs DATABASE_URL, REDIS_URL, CELERY_BROKER_URL,
# DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS in the environment.
run-prod: venv
	@for v in DATABASE_URL REDIS_URL CELERY_BROKER_URL DJANGO_SECRET_KEY DJANGO_ALLOWED_HOSTS; do \
	  test -n "$${!v}" || { echo "run-prod needs $$v in the environment"; exit 2; }; done
	$(PY) manage.py check --deploy
	EMMM_MANIFEST_STATIC=1 VENV=$(VENV) bash scripts/run.sh

# Installs/starts PostgreSQL, Redis and Chromium (Debian packages) when missing.
services:
	bash scripts/test-services.sh

# The codec suite (its own process: no database, and its memory probes see a fresh heap), the
# site and API on PostgreSQL + real Redis + real worker + Chromium, then the fast part on SQLite.
test: venv services
	$(PY) -m pytest -q tests/codec
	$(PY) -m pytest -q tests/similarity
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -q tests/site tests/api
	DATABASE_URL= EMMM_VAR_DIR=$(CURDIR)/var/test-sqlite $(PY) -m pytest -q -m "not stack and not browser" tests/site

test-fast: venv
	$(PY) -m pytest -q -m "not stack and not browser" tests/site

clean:
	rm -rf var staticfiles .pytest_cache
