# Firelane: `make demo` and `make test` work on a fresh machine (they create .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: lock demo demo-stop demo-deps docs docs-reference bench-tables test test-scale test-faults test-fuzz lint unit bench bench-intake system-deps venv clean

# Every installed version comes from requirements.lock (hashes checked); the project itself is
# installed on top without resolving anything. `make lock` regenerates the lock from pyproject.toml.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip check
	@touch $@

venv: $(STAMP)

# Resolve pyproject.toml (with the dev extra) to exact versions and hashes for Python 3.11 on
# x86_64 Linux; the first line records a digest of the dependency lists it was made from, which
# tests/test_lock.py compares with pyproject.toml. Current pins are kept unless the change needs
# others; `make lock UPGRADE=1` moves everything to the newest versions.
lock:
	@command -v $(BIN)/uv >/dev/null 2>&1 || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/pip install -q "uv==$$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)"; }
	$(BIN)/python scripts/lock.py $(if $(UPGRADE),--upgrade)

# Debian packages the tests drive for real: PostgreSQL (second store backend), supervisor
# (remediation against a real supervisord), openssh-server (shell.run over SSH to loopback) and
# chromium (the Prefect UI test drives it headless with Playwright), prometheus (promtool checks
# and unit-tests Firelane's own alerting rules; the prometheus.* actions run against a real
# server) and prometheus-alertmanager (a real Alertmanager delivers notification groups).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v supervisord >/dev/null 2>&1 || missing="$$missing supervisor"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (sudo apt-get install$$missing)" >&2; exit 1; fi; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy firelane flows integrations tests bench scripts

REQUIRE_ALL := FIRELANE_REQUIRE_POSTGRES=1 FIRELANE_REQUIRE_BROWSER=1 FIRELANE_REQUIRE_PROMTOOL=1 \
  FIRELANE_REQUIRE_ALERTMANAGER=1 FIRELANE_REQUIRE_PROMETHEUS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false

# The suite except the fault tests (FAULT_TESTS below): `make test` runs those once, in
# `make test-faults`, which prints the fault matrix, instead of twice.
unit: venv system-deps
	$(REQUIRE_ALL) $(BIN)/pytest -q $(NOT_FAULT_TESTS)

test: lint unit test-faults docs

# The documentation site (MkDocs + Material, offline): --strict fails on a broken link or anchor.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d build/site

# Rewrite docs/reference pages generated from the code (tests/test_docs.py fails when stale).
docs-reference: venv
	$(BIN)/python scripts/reference.py

# Two intakes, two paging and two flow responders, the Prefect server and the store on PostgreSQL.
test-scale: venv system-deps
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q -s -m scale tests/test_scale.py

# Faults, crashes, attacks and bad input in one run; prints the action x fault matrix.
FAULT_TESTS := tests/test_integration_faults.py tests/test_email.py tests/test_remediation_faults.py \
  tests/test_crash_resume.py tests/test_leases.py tests/test_secrets.py \
  tests/test_alert_sources.py tests/test_intake_fuzz.py tests/test_intake_signatures.py \
  tests/test_validation.py \
  tests/test_templating.py tests/test_injection.py \
  tests/test_runbook_loader.py tests/test_page_alarm.py \
  tests/test_blocks.py::test_cached_blocks_keep_paging_when_the_prefect_api_is_down \
  tests/test_remediation.py tests/test_intake_crash.py tests/test_prefect_outage.py \
  tests/test_store_outage.py tests/test_store_ping.py tests/test_page_takeover.py \
  tests/test_page_takeover_kill.py tests/test_alertmanager_silences.py
NOT_FAULT_TESTS := $(foreach t,$(FAULT_TESTS),$(if $(findstring ::,$(t)),--deselect=$(t),--ignore=$(t)))
test-faults: venv system-deps
	$(REQUIRE_ALL) $(BIN)/pytest -q -s -p no:randomly -m 'not scale' $(FAULT_TESTS)

# 10,000 fuzz cases per alert source (make test runs 1,000).
test-fuzz: venv
	FIRELANE_FUZZ_EXAMPLES=10000 $(BIN)/pytest -q -s tests/test_alert_sources.py \
	  tests/test_intake_fuzz.py -k fuzzed

# The README's first command. DEMO_ARGS: --keep, --interactive, --port N.
demo: venv demo-deps
	@$(BIN)/python scripts/demo.py $(DEMO_ARGS)

demo-stop: venv
	@$(BIN)/python scripts/demo.py --stop

demo-deps:
	@missing=""; \
	command -v supervisord >/dev/null 2>&1 || missing="$$missing supervisor"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing$$missing (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif ! command -v supervisord >/dev/null 2>&1; then \
	    echo "missing:$$missing (sudo apt-get install$$missing)" >&2; exit 1; \
	  else echo "without$$missing the demo posts the alert itself (sudo apt-get install$$missing)"; fi; \
	fi

# Every benchmark (about 15 minutes on 2 cores), then one summary table; bench-intake alone is
# the intake's part (alert→page, war room, naive path, storms on SQLite and PostgreSQL).
bench: venv system-deps
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python bench/fast_path.py
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python bench/intake.py
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python bench/burst.py
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python bench/engine.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/takeover.py
	$(BIN)/python bench/slack_calls.py
	$(BIN)/python bench/summary.py
	$(BIN)/python scripts/bench_tables.py

# Rewrite the benchmark figures in README.md and docs/ from bench/results/*.json
# (tests/test_bench_tables.py fails when they differ).
bench-tables: venv
	$(BIN)/python scripts/bench_tables.py

bench-intake: venv system-deps
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) .demo build *.egg-info .mypy_cache .ruff_cache .pytest_cache
