# The single entry point: `make demo` runs the demo, `make test` runs every gate,
# `make docs` builds the documentation site into site/.
# Each creates .venv and installs what it needs on first use: the demo only
# the package and its `demo` extra, the others everything the tests need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint browser docs docs-serve notebooks bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs,bench]'
	touch $(STAMP) $(DEMO_STAMP)

# No pip upgrade and no test tools: a fresh clone runs the demo in under a minute.
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[demo]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python examples/orders_demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict rxresilience
	$(BIN)/mypy --strict tests/typing

# The browser test drives Debian's Chromium; install it when it is missing.
browser:
	sh .ci/install-chromium

# pytest runs the strict site build (the notebooks execute there, once) and
# the browser test on the site it built.
test: lint browser
	$(BIN)/python -m pytest

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb notebooks/*.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis site site-shots
