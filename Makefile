# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types browser fuzz bench chaos chaos-replicas sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,sandbox]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncd demo

# The whole suite, its time-sensitive tests at every instant of the clock matrix
# (tests/conftest.py); meanwhile, on the other core, the time-sensitive tests
# again under each time zone of TEST_ZONES. Fails if any run fails.
# docs/reliability.md, "Time: the suite at every hour".
TEST_ZONES ?= Pacific/Kiritimati America/St_Johns UTC
ZONE_RUNS := $(VENV)/zone-runs

test: $(STAMP) lint types browser
	@rm -rf $(ZONE_RUNS) && mkdir -p $(ZONE_RUNS); \
	( for tz in $(TEST_ZONES); do \
	    log=$(ZONE_RUNS)/$$(echo $$tz | tr / -); \
	    TZ=$$tz $(BIN)/python -m pytest -q -p no:cacheprovider -m time_sensitive \
	        --basetemp=$(ZONE_RUNS)/tmp > $$log.log 2>&1; echo $$? > $$log.rc; \
	  done ) & zones=$$!; \
	( $(BIN)/python -m pytest -q --clocks=matrix; echo $$? > $(ZONE_RUNS)/main.rc ) | tee $(ZONE_RUNS)/main.log; \
	status=$$(cat $(ZONE_RUNS)/main.rc); \
	wait $$zones; \
	for tz in $(TEST_ZONES); do \
	    log=$(ZONE_RUNS)/$$(echo $$tz | tr / -); rc=$$(cat $$log.rc 2>/dev/null || echo missing); \
	    echo "TZ=$$tz, time-sensitive tests: $$(tail -n 1 $$log.log) (exit $$rc)"; \
	    if [ "$$rc" != 0 ]; then cat $$log.log; status=1; fi; \
	done; \
	echo "All clocks, the machine's zone: $$(tail -n 1 $(ZONE_RUNS)/main.log)"; \
	exit $$status

# Debian's chromium for the status page's browser test (tests/e2e/test_status_page.py),
# installed where it is missing and we are root. Without a browser that test fails and
# says how to get one (SYNCD_SKIP_BROWSER=1 skips it, saying so).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ -z "$$SYNCD_CHROMIUM" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the status page's browser test"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
	      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
	      || echo "could not install chromium: the browser test will fail and say so"; \
	  else \
	    echo "no chromium, and not root with apt-get: the browser test will fail; install chromium first"; \
	  fi; \
	fi

# Lint and format check (ruff; settings in pyproject.toml). `ruff format .` mends the format.
lint: $(STAMP)
	$(BIN)/ruff check syncd connectors mappings tools tests
	$(BIN)/ruff format --check syncd connectors mappings tools tests

# Static types (mypy; settings and the checked packages in pyproject.toml).
types: $(STAMP)
	$(BIN)/mypy

# Property tests at 2000 examples each instead of the suite's 150 (a few minutes).
fuzz: $(STAMP)
	SYNCD_FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest -q tests/fuzz tests/mappings/test_escaping.py

bench: $(STAMP)
	$(BIN)/python -m tools.bench

# The long chaos run (2,000 changes, 60 SIGKILLs) and the 10 % fault run; see docs/reliability.md.
chaos: $(STAMP)
	$(BIN)/python -m tools.chaos --changes 2000 --kills 60
	$(BIN)/python -m tools.chaos --fault-rate 0.1 --changes 1000 --batch 40 --tickets 120 --issues 30

# Three replicas on one PostgreSQL store, 60 SIGKILLs, 10 % faults (docs/scaling.md). Uses
# $$SYNCD_TEST_PG_URL, else 127.0.0.1:5432, else an embedded PostgreSQL (pgserver).
chaos-replicas: $(STAMP)
	$(BIN)/python -m tools.chaos_replicas --replicas 3 --changes 600 --kills 60 --fault-rate 0.1 --lease-seconds 5

sandbox: $(STAMP)
	$(BIN)/syncd sandbox

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
