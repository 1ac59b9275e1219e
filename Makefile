# The newcomer contract: `make demo` runs the main job, `make test` passes the tests.
# The install lines below are the README's (section "Install"): keep them equal.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
PROMTOOL := $(VENV)/tools/promtool

.PHONY: install install-demo lint typecheck format test unit integration demo clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# everything, and the test tools
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $@

# what `shadow demo` runs: worker, analysis and the reference models
$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[demo]'
	touch $@

# checks the alert rules and the dashboard's queries (tests/unit/test_alert_rules.py)
$(PROMTOOL): | $(VENV)/bin/python
	bash .ci/promtool $(VENV)/tools

install: $(VENV)/.installed $(PROMTOOL)

install-demo: $(VENV)/.installed-demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy over shadow/, producers/, consumers/, analysis/ (configured in pyproject.toml)
typecheck: install
	$(VENV)/bin/mypy

# rewrite the code as the lint step wants it
format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The integration fixtures start a Kafka broker and an S3 API server and stop them at the end.
test: lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration

demo: install-demo
	$(VENV)/bin/shadow demo

clean:
	rm -rf $(VENV) shadow-data build *.egg-info
