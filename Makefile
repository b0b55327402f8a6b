# Set-up and work, as the README promises: every target creates .venv when missing
# and installs the project into it (re-installed when setup.py changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kzoo-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install data demo test test-slow lint format constraints bench clean

install: $(STAMP)

# Fashion-MNIST: kzoo looks in $$KZOO_DATA_DIR, Debian's /usr/share/datasets/fashion-mnist and
# the Keras cache, then downloads. On a Debian machine without it, install Debian's package
# (as root) so the demo needs no download.
FMNIST_DEB := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
data:
	@if [ -z "$$KZOO_DATA_DIR" ] && [ ! -e $(FMNIST_DEB) ] && [ ! -d $$HOME/.keras/datasets/fashion-mnist ] \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	fi

# constraints.txt pins the exact versions CI passed with; setup.py holds the bounds.
$(STAMP): setup.py pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP) data
	$(PY) applications/demo.py

test: $(STAMP) data
	$(PY) -m pytest -m "not slow" -v --durations=15

# ruff: the lint rules and the format, both configured in pyproject.toml.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# After a tested upgrade: record the installed set as the new constraints.
constraints: $(STAMP)
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^#'; } > constraints.tmp
	mv constraints.tmp constraints.txt

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -v --durations=15

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
