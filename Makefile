# Set-up and work, as the README promises: every target creates .venv when missing
# and installs the project into it (re-installed when setup.py changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kzoo-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) applications/demo.py

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -v --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -v --durations=15

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
