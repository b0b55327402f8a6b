# Set-up and work, as the README promises: every target creates .venv when missing
# and installs the project into it (re-installed when setup.py changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kzoo-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install data demo test test-jax test-torch test-slow lint format constraints bench bench-models clean

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

# -n auto: pytest-xdist runs the suite in one worker per core (2 on CI's machine), each
# test where a core is free (worksteal); tests share nothing but their inputs. On 2 cores
# that halved the TensorFlow suite (29.4 -> 14.8 min, with the model harness loading its
# files in one fresh process) and cut the JAX one from 4.4 to 2.7 min; the PyTorch one
# ran slower in two workers (2.5 -> 3.1 min) and stays in one.
test: $(STAMP) data
	$(PY) -m pytest -m "not slow" -n auto --dist worksteal -v --durations=15
	$(MAKE) --no-print-directory test-jax
	$(MAKE) --no-print-directory test-torch

# The models' contract (tests/test_model_harness.py) under Keras' JAX backend with
# TensorFlow unimportable (tests/conftest.py), as on a machine without it: kzoo.models
# needs Keras only. Under JAX it covers one model per family and the variants (the
# harness says why); its slow cases: the same command with -m slow.
test-jax: $(STAMP)
	KERAS_BACKEND=jax KZOO_BLOCK_TENSORFLOW=1 $(PY) -m pytest tests/test_model_harness.py -m "not slow" \
	    -n auto --dist worksteal -v --durations=10

# The same contract, and tests/test_backends.py, under Keras' PyTorch backend, in a second
# virtual environment that has Keras, PyTorch and kzoo but no TensorFlow at all. TORCH is
# what pip installs: here torch==2.13.0 takes the CPU build on this machine's disk (about
# 1 GB installed); elsewhere PyPI's Linux wheel is a CUDA build of several GB, and
# TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" gets the CPU one.
TORCH ?= torch==2.13.0
TORCH_VENV := .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.kzoo-installed
$(TORCH_STAMP): setup.py constraints.txt Makefile
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install -q $(TORCH)
	$(TORCH_VENV)/bin/python -m pip install -q -c constraints.txt keras pytest
	$(TORCH_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $(TORCH_STAMP)

test-torch: $(TORCH_STAMP)
	KERAS_BACKEND=torch $(TORCH_VENV)/bin/python -m pytest tests/test_model_harness.py tests/test_backends.py \
	    -m "not slow" -v --durations=10

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

# make bench: the benchmarks but the per-model table (~4 min on 2 cores, the PyTorch ratio included). make bench-models:
# the speed of every registered model (~56 min on 2 cores), resuming an interrupted table.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

bench-models: $(STAMP)
	$(PY) benchmarks/model_speed.py --write-results --resume
	$(PY) benchmarks/summary.py

clean:
	rm -rf $(VENV) $(TORCH_VENV) build *.egg-info .pytest_cache
