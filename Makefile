# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz bench chaos sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncd demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Property tests at 2000 examples each instead of the suite's 150 (a few minutes).
fuzz: $(STAMP)
	SYNCD_FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest -q tests/fuzz tests/test_escaping.py

bench: $(STAMP)
	$(BIN)/python -m syncd.bench

# The long chaos run (2,000 changes, 60 SIGKILLs) and the 10 % fault run; see docs/reliability.md.
chaos: $(STAMP)
	$(BIN)/python -m syncd.chaos --changes 2000 --kills 60
	$(BIN)/python -m syncd.chaos --fault-rate 0.1 --changes 1000 --batch 40 --tickets 120 --issues 30

sandbox: $(STAMP)
	$(BIN)/syncd sandbox

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
