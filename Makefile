# The two commands a new user needs: `make demo` and `make test`. Only Python 3.11+ and make are required.
# The first interpreter that really runs and is 3.11+ (a pyenv shim may exist for a version that is absent).
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve worker clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Otklik needs Python 3.11+ (python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)  ## set up and run the demo shop on http://127.0.0.1:$${OTKLIK_PORT:-8000}
	$(BIN)/otklik demo

# Test processes (pytest-xdist): one a core, at most 4; `make test TEST_WORKERS=0` runs in this process alone.
TEST_WORKERS ?= auto

test: $(STAMP)  ## the whole suite (SQLite by default; see .ci/run for PostgreSQL + Redis); -rfEs lists failures and skip reasons
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

serve: $(STAMP)
	$(BIN)/otklik serve --migrate

worker: $(STAMP)
	$(BIN)/otklik worker

clean:
	rm -rf $(VENV) var
