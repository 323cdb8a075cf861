# The two commands a new user needs: `make demo` and `make test`. Only Python 3.11+ and make are required.
PYTHON ?= $(shell command -v python3.13 || command -v python3.12 || command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve worker clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Otklik needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)  ## set up and run the demo shop on http://127.0.0.1:$${OTKLIK_PORT:-8000}
	$(BIN)/otklik demo

test: $(STAMP)  ## the whole suite (SQLite by default; see .ci/run for PostgreSQL + Redis)
	$(BIN)/python -m pytest

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
