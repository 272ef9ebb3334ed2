# Audience Relay — the two commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LANGUAGES := zh_Hans fr ja nb
DEMO_PORT ?= 8000
DEMO_ENV := DJANGO_SETTINGS_MODULE=config.settings.base \
	EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend \
	EMAIL_FILE_PATH=$(CURDIR)/demo-mail \
	CAMPAIGN_MONITOR_API_URL=http://127.0.0.1:8101/api/v3.3 \
	CAMPAIGN_MONITOR_OAUTH_URL=http://127.0.0.1:8101/oauth \
	CAMPAIGN_MONITOR_TOKEN_URL=http://127.0.0.1:8101/oauth/token \
	CAMPAIGN_MONITOR_CLIENT_ID=demo-client-id \
	CAMPAIGN_MONITOR_CLIENT_SECRET=demo-client-secret \
	AUTOPILOT_API_URL=http://127.0.0.1:8102/v1 \
	MAILCHIMP_API_URL='http://127.0.0.1:8103/{dc}/3.0' \
	MAILCHIMP_OAUTH_URL=http://127.0.0.1:8103/oauth2 \
	MAILCHIMP_CLIENT_ID=demo-mailchimp-client-id \
	MAILCHIMP_CLIENT_SECRET=demo-mailchimp-client-secret \
	ORTTO_API_URL_GLOBAL=http://127.0.0.1:8104/v1 \
	ORTTO_API_URL_AU=http://127.0.0.1:8104/au/v1 \
	ORTTO_API_URL_EU=http://127.0.0.1:8104/eu/v1
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# `make test` runs pytest in this many pytest-xdist workers (gw0, gw1...). Each has its own
# PostgreSQL test database (test_<name>_gw0...) and its own Redis database: TEST_REDIS_URL's
# number plus the worker's index (config/settings/test.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3

.PHONY: demo test install install-test services chromium messages compilemessages lint bench-data bench test-segments-sqlite

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

compilemessages:
	@$(BIN)/python manage.py compilemessages --ignore=.venv -v 0

## Start the whole app on SQLite with an embedded broker: web, worker, beat and the four fakes.
demo: install compilemessages
	@test -f .env || $(BIN)/python scripts/make_env.py > .env
	@$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput -v 0
	@$(DEMO_ENV) $(BIN)/python manage.py createcachetable
	@$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	@$(DEMO_ENV) $(BIN)/python manage.py seed_demo_source
	@$(DEMO_ENV) $(BIN)/python manage.py set_refresh_schedule --times 06:00 18:00 --if-never-set
	@$(BIN)/python scripts/demo_banner.py $(DEMO_PORT)
	@$(DEMO_ENV) DEMO_PORT=$(DEMO_PORT) $(BIN)/honcho -f Procfile.demo start

## Install what the tests need and run the whole suite against PostgreSQL and Redis.
test: install-test services chromium compilemessages
	$(BIN)/ruff check .
	$(BIN)/mypy
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -n $(TEST_WORKERS) --dist load --durations=25

## The segment tests once more on SQLite (the demo's database): rules must compile on both.
test-segments-sqlite: install-test
	DATABASE_URL=sqlite:///$(CURDIR)/.test-segments.sqlite3 REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q tests/segments

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
	@# MariaDB: the sources' tests read from it (tests/sources/conftest.py).
	@test -x /usr/sbin/mariadbd || (apt-get install -y mariadb-server >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y mariadb-server >/dev/null))
	@mariadb-admin ping -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 >/dev/null 2>&1 || mariadb-admin ping --connect-timeout=2 >/dev/null 2>&1 || service mariadb start >/dev/null
	@for i in $$(seq 1 30); do mariadb-admin ping --connect-timeout=2 >/dev/null 2>&1 && break; sleep 1; done
	@# The tests sign in as root over TCP without a password: let root in from 127.0.0.1.
	@mariadb -u root -h 127.0.0.1 -e "SELECT 1" >/dev/null 2>&1 || mariadb -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"

chromium:
	@test -x /usr/bin/chromium || (apt-get install -y chromium >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null))

## Refresh the translation catalogues after changing user-facing text.
messages: install
	$(BIN)/python manage.py makemessages --no-obsolete --no-location --ignore=.venv --ignore=tests --ignore=fakes --ignore=bench $(addprefix -l ,$(LANGUAGES))

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## Import and segment-refresh timings on PostgreSQL (1,000,000 profiles).
bench-data: install-test services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/bench_data.py

## Everything above plus the export engine against the fakes with a real worker.
bench: install-test services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/run_all.py
