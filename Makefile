# Two promises: `make run` on a fresh machine serves the portal with demo data,
# `make test` runs the whole suite. Both build .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Links in e-mails and the license issuer follow the port unless SITE_URL is set.
SITE_URL ?= http://127.0.0.1:$(PORT)
EMAIL_FILE_PATH ?= $(CURDIR)/var/mail
STAMP := $(VENV)/.installed
MANAGE := $(BIN)/python manage.py
# Exact versions, resolved from pyproject.toml's ranges by `make lock`: what CI, Docker and
# every checkout install. requirements.lock is the runtime half (the image, the wheel check).
LOCK := requirements-dev.lock

.PHONY: install run test lint format migrate demo clean bench api-key daily lock

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

# Re-resolve both lock files after changing a range in pyproject.toml (then `make install`).
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml \
		-o requirements.lock
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml \
		--extra dev -o $(LOCK)

# The embedded default: SQLite under var/, tasks run in-process, e-mail written to files.
# var/embedded.env keeps these settings for the commands run by hand afterwards (manage.py
# reads it; the environment wins).
run: export DJANGO_DEBUG ?= 1
run: export EMAIL_FILE_PATH := $(EMAIL_FILE_PATH)
run: export SITE_URL := $(SITE_URL)
run: export DJANGO_ALLOWED_HOSTS ?= 127.0.0.1,localhost
run: install
	@mkdir -p var "$(EMAIL_FILE_PATH)"
	@$(BIN)/python -m licensing_portal.embedded --site-url "$(SITE_URL)" --mail "$(EMAIL_FILE_PATH)"
	$(MANAGE) migrate --noinput
	$(MANAGE) createcachetable
	@$(MANAGE) create_root_key --if-missing > /dev/null
	$(MANAGE) demo_data
	@echo ""
	@echo "  Portal:  $(SITE_URL)/   (log in as reseller@example.com / demo1234;"
	@echo "           the other demo users are listed in README.md)"
	@echo "  Admin:   $(SITE_URL)/admin/   (vendor@example.com / demo1234)"
	@echo "  API:     $(SITE_URL)/api/v1/docs/"
	@echo "  Mail:    $(EMAIL_FILE_PATH)/   (one file per e-mail sent)"
	@echo ""
	$(MANAGE) runserver 127.0.0.1:$(PORT)

# A partner API key for ORG (printed alone, so KEY=$$(make -s api-key ORG=...) works).
api-key: install
	@test -n "$(ORG)" || { echo 'usage: make api-key ORG="Demo Reseller"' >&2; exit 2; }
	@$(MANAGE) create_api_key --org "$(ORG)" | tail -n 1

# The daily jobs (renewals, expiry, stale servers, digests), as Celery beat runs them.
daily: install
	$(MANAGE) run_daily_jobs

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

# The fleet benchmark: needs PostgreSQL in DATABASE_URL (it uses <name>_bench_small and
# <name>_bench_large beside it) and wrk (Debian: apt-get install wrk). BENCH_TIER=small|large
# runs one tier; `$(BIN)/python -m bench.run --table` prints the last results as markdown.
bench: install
	@command -v wrk > /dev/null || { echo 'make bench needs wrk: apt-get install wrk' >&2; exit 2; }
	$(BIN)/python -m bench.run
