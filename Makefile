# `make demo` and `make test` each create .venv and install the package first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,ray]"
	touch $(STAMP)

install: $(STAMP)

# One run per available core at once (the default), each with one torch thread: the demo's models
# are tiny, and more threads per run spend more time synchronising than computing.
demo: $(STAMP)
	$(BIN)/avalanche-hsf run scenarios/split_digits_til.toml

# Lint and import order first (ruff), then the tests.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf runs .pytest_cache .hypothesis
