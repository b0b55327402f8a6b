# Set-up and work, as the README promises: every target creates .venv when missing
# and installs the project into it (re-installed when setup.py changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kzoo-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install data demo test test-slow bench clean

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

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP) data
	$(PY) applications/demo.py

test: $(STAMP) data
	$(PY) -m pytest -m "not slow" -v --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -v --durations=15

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
