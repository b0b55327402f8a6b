#!/usr/bin/env bash
# Fill .carry/ (git-ignored) with what benchmarks/gpu_jax.py needs on a device machine that
# has JAX but neither TensorFlow nor Keras, then print the command to run there:
#   .carry/site/          keras and the packages `import keras` needs that JAX does not bring:
#                         absl-py, packaging, rich, namex and typing_extensions (optree's;
#                         PyTorch brings it too) (pure Python, copied from this
#                         Python's site-packages, without __pycache__ and Keras' *_test.py) and
#                         optree (compiled: its wheels for CPython 3.10-3.13 unpacked side by
#                         side, each Python importing its own build)
#   .carry/fashion-mnist/ the four IDX .gz files (~30 MB)
# kzoo itself is not carried here: its source is tracked, so the device tool sends it with
# the working tree, and gpu_jax.py puts the repository on sys.path (it imports kzoo.models,
# kzoo.data.idx, kzoo.training's schedule and weight decay, kzoo.atomic: Keras and numpy only).
# The device tool carries at most 64 MiB; this is about 46.
#   PYTHON=python3 bash benchmarks/gpu_jax_prepare.sh   # default: .venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CARRY=.carry
SITE=$CARRY/site
rm -rf "$SITE" "$CARRY/fashion-mnist" "$CARRY/wheels"
mkdir -p "$SITE" "$CARRY/fashion-mnist"

# Pure-Python packages, copied with their metadata (dist-info) from where this Python has them.
"$PY" - "$SITE" <<'EOF'
import glob, importlib.util, os, shutil, sys

site = sys.argv[1]
for module, dist in (("keras", "keras"), ("absl", "absl_py"), ("packaging", "packaging"),
                     ("rich", "rich"), ("namex", "namex"), ("typing_extensions", "typing_extensions")):
    spec = importlib.util.find_spec(module)  # found, not imported (Keras would import TF)
    if spec is None:
        sys.exit(f"error: {module} is not installed for {sys.executable}; set PYTHON to one that has keras")
    if spec.submodule_search_locations:  # a package
        source = spec.submodule_search_locations[0]
        shutil.copytree(source, os.path.join(site, module),
                        ignore=shutil.ignore_patterns("__pycache__", "*_test.py"))
    else:  # a single module (typing_extensions, which optree imports)
        source = spec.origin
        shutil.copy(source, site)
    for info in glob.glob(os.path.join(os.path.dirname(source), f"{dist}-*.dist-info")):
        shutil.copytree(info, os.path.join(site, os.path.basename(info)))
    print(f"copied {module} from {source}")
EOF

# optree, compiled: the version this Python has, for each CPython the device may run
# (optree 0.17+ is built for glibc 2.27+: manylinux_2_28).
OPTREE=$("$PY" -c "import importlib.metadata as m; print(m.version('optree'))")
mkdir -p "$CARRY/wheels"
for v in 310 311 312 313; do
  if ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$CARRY/wheels" \
      --implementation cp --python-version "$v" --abi "cp$v" --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      "optree==$OPTREE"; then
    echo "warning: no optree $OPTREE wheel for CPython $v; Keras needs optree (or dm-tree) there" >&2
  fi
done
for wheel in "$CARRY"/wheels/*.whl; do
  [ -e "$wheel" ] && "$PY" -m zipfile -e "$wheel" "$SITE"
done
rm -rf "$CARRY/wheels"

# Fashion-MNIST, found as the benchmark finds it ($KZOO_DATA_DIR, Debian's copy, the Keras cache).
DATA=$("$PY" -c "import sys; sys.path.insert(0, 'benchmarks'); import gpu_jax; print(gpu_jax.find_data())")
cp "$DATA"/*-ubyte.gz "$CARRY/fashion-mnist/"

echo "prepared $CARRY ($(du -sh "$CARRY" | cut -f1)); Fashion-MNIST from $DATA"
cat <<'EOF'
Device command (the device tool, carry [".carry"], timeout_s 600; the JSON comes back
under $OUT, copy it to benchmarks/results/gpu_jax.json and run benchmarks/summary.py):

  PYTHONPATH=$PWD/.carry/site python3 benchmarks/gpu_jax.py --data-dir .carry/fashion-mnist --out $OUT/gpu_jax.json
EOF
