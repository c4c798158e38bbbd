# Two commands on a fresh machine: `make run` and `make test`. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test test-tools stop install install-dev migrate demo worker bench bench-insights lint

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamp files: a second `make run` skips pip entirely unless a requirements file changed.
$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

# `make run DEMO_HISTORY=1`: a year of past bookings for the Insights page (slower; off by default).
demo: migrate
	$(PY) manage.py load_demo_data $(if $(DEMO_HISTORY),--history)

run: demo
	@echo ""
	@echo "  The clinic site: http://127.0.0.1:$(PORT)/   (staff sign-in: http://127.0.0.1:$(PORT)/staff/login/)"
	@echo "  Stop with Ctrl-C; 'make stop' also stops the embedded database."
	@echo "  E-mails are sent by the worker beside it (manage.py send_messages): without EMAIL_HOST, files in var/mail/."
	@echo ""
	@# The e-mail worker runs in the background and stops with the web server (Ctrl-C, exit or kill).
	@# PORT in the environment: without SITE_URL, the links in e-mails point at this port (clinic/settings.py).
	export PORT=$(PORT); \
	$(PY) manage.py send_messages --interval 2 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

worker: migrate
	PORT=$(PORT) $(PY) manage.py send_messages

# Chromium (browser tests), Java and the Nu Html Checker (HTML validity): apt as root, npm into node_modules/.
test-tools:
	bin/install-test-tools

test: install-dev test-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

stop:
	@if [ -x $(PY) ]; then $(PY) -m clinic.embedded_db stop; else echo "Nothing to stop."; fi

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Pages and booking against their ceilings, on a database of its own (var/bench-pgdata); writes docs/performance.md.
bench: install-dev
	$(PY) bench/run.py

# The Insights page over a year at 50 practitioners, in-process (tests/staff/bench_insights_speed.py).
bench-insights: install-dev
	$(VENV)/bin/pytest tests/staff/bench_insights_speed.py -q -s -p no:cacheprovider
