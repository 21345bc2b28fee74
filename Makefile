# Two promises: `make run` on a fresh machine serves the portal with demo data,
# `make test` runs the whole suite. Both build .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
EMAIL_FILE_PATH ?= $(CURDIR)/var/mail
STAMP := $(VENV)/.installed

.PHONY: install run test lint format migrate demo clean bench

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# The embedded default: SQLite under var/, tasks run in-process, e-mail written to files.
run: export DJANGO_DEBUG ?= 1
run: export EMAIL_FILE_PATH := $(EMAIL_FILE_PATH)
run: install
	@mkdir -p var "$(EMAIL_FILE_PATH)"
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_data
	@echo ""
	@echo "  Portal:  http://127.0.0.1:$(PORT)/   (log in as reseller@example.com / demo1234;"
	@echo "           the other demo users are listed in README.md)"
	@echo "  Admin:   http://127.0.0.1:$(PORT)/admin/   (vendor@example.com / demo1234)"
	@echo "  API:     http://127.0.0.1:$(PORT)/api/v1/docs/"
	@echo "  Mail:    $(EMAIL_FILE_PATH)/   (one file per e-mail sent)"
	@echo ""
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

# The fleet benchmark: needs PostgreSQL in DATABASE_URL (it uses <name>_bench beside it).
bench: install
	$(BIN)/python -m bench.run
