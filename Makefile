# Two commands on a fresh machine: `make run` and `make test`. Everything goes through uv and uv.lock,
# on the machine's own Python (no interpreter downloads).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
# uv from PATH, else the copy `pip install --user uv` puts in ~/.local/bin (installed on first use).
UV := $(or $(shell command -v uv 2>/dev/null),$(HOME)/.local/bin/uv)
SCALE ?= small
PORT ?= 8000
LINT_PATHS := $(wildcard src tests bench scripts migrations)
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

.PHONY: help run test sync system-deps lint typecheck pytest bench i18n clean

help:
	@echo "make run        install from uv.lock, migrate, serve a demo on SQLite under ./var/ (port PORT=$(PORT))"
	@echo "make test       install what the suite needs, then ruff, mypy, pytest on SQLite (and PostgreSQL"
	@echo "                when SIYU_TEST_DATABASE_URL is set)"
	@echo "make lint | typecheck | bench [SCALE=full] | i18n | clean"

$(UV):
	@echo "uv not found: installing it with pip --user"
	python3 -m pip install --user --quiet uv || python3 -m pip install --user --quiet --break-system-packages uv

sync: $(UV)
	$(UV) sync --frozen

run: sync
	$(UV) run siyu serve --demo --port $(PORT)

# Debian's Chromium (for Playwright) and a CJK font (posters): installed when missing and we are root.
system-deps:
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	[ -e $(CJK_FONT) ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "note: missing$$missing; install it (sudo apt-get install$$missing) or the browser tests will fail"; \
	fi

lint: sync
	$(UV) run ruff check $(LINT_PATHS)

typecheck: sync
	$(UV) run mypy

# pytest on SQLite, and on PostgreSQL when SIYU_TEST_DATABASE_URL names one: the two runs go side by
# side (one core each; they share nothing but Redis, where the SQLite run takes database 1). PostgreSQL's
# output streams, SQLite's is printed when both are done, and a closing summary repeats each run's failed
# tests and summary line, so the last lines of a CI log say what broke on which engine.
define PYTEST_BOTH
if [ -n "$$SIYU_TEST_DATABASE_URL" ]; then \
	sqlite_log=$$(mktemp); pg_log=$$(mktemp); \
	env -u SIYU_TEST_DATABASE_URL SIYU_TEST_REDIS_URL=redis://127.0.0.1:6379/1 $(UV) run pytest >$$sqlite_log 2>&1 & pid=$$!; \
	echo "== pytest on PostgreSQL (and on SQLite beside it)"; \
	$(UV) run pytest 2>&1 | tee $$pg_log; [ "$${PIPESTATUS[0]}" = 0 ] || status=1; \
	wait $$pid || status=1; \
	echo "== pytest on SQLite"; cat $$sqlite_log; \
	echo "== summary"; [ -z "$$gates" ] || echo "$$gates"; \
	for run in PostgreSQL:$$pg_log SQLite:$$sqlite_log; do \
		grep -E '^(FAILED|ERROR) ' "$${run#*:}" | sed "s/^/$${run%%:*}: /"; \
		echo "$${run%%:*}: $$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$${run#*:}" | tail -1)"; \
	done; \
	rm -f $$sqlite_log $$pg_log; \
else \
	echo "== pytest on SQLite"; env -u SIYU_TEST_DATABASE_URL $(UV) run pytest || status=1; \
fi
endef

pytest: sync
	@status=0; $(PYTEST_BOTH); exit $$status

# Every gate runs even when an earlier one fails, so one run reports all problems and pytest's summary.
test: sync system-deps
	@status=0; \
	echo "== ruff"; if $(UV) run ruff check $(LINT_PATHS); then gates="ruff passed"; else gates="ruff FAILED"; status=1; fi; \
	echo "== mypy"; if $(UV) run mypy; then gates="$$gates, mypy passed"; else gates="$$gates, mypy FAILED"; status=1; fi; \
	$(PYTEST_BOTH); \
	exit $$status

bench: sync
	@set -e; for f in bench/bench_*.py; do \
		[ -e "$$f" ] || { echo "no benchmarks in bench/"; exit 0; }; \
		echo "== $$f (SCALE=$(SCALE))"; \
		SCALE=$(SCALE) $(UV) run python "$$f"; \
	done

# Extract messages and merge them into each catalog; translate the new empty entries in the .po files.
i18n: sync
	$(UV) run python scripts/i18n.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
