# The newcomer contract: `make demo` runs the main job, `make test` passes the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install lint test unit integration demo clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,monitor]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The integration fixtures start a Kafka broker and an S3 API server and stop them at the end.
test: lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration

demo: install
	$(VENV)/bin/shadow demo

clean:
	rm -rf $(VENV) shadow-data build *.egg-info
