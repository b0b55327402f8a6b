import re

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', open("kzoo/_version.py", encoding="utf-8").read()).group(1)

setup(
    name="kzoo",
    version=VERSION,
    description="A Keras 3 model zoo for where ReLUs belong: EraseReLU, the proportional module, FReLU",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kzoo", "kzoo.*"]),
    # The `kzoo` command's launcher: outside the package, so that it filters TensorFlow's
    # notices from before `import kzoo` loads TensorFlow (the library leaves stderr alone).
    py_modules=["kzoo_command"],
    # The pretrained tags' records and weights (kzoo.models.pretrained) ship with the package.
    package_data={"kzoo": ["weights/pretrained.json", "weights/*.weights.h5"]},
    python_requires=">=3.10",
    # Bounds are what CI tests (constraints.txt has the exact set). Keras is bounded to one
    # minor version because kzoo patches its private code (kzoo/_compat.py); TensorFlow and
    # tensorflow-serving-api go with that Keras.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-datasets>=4.9.10,<4.10",
        "importlib_resources",  # TFDS needs it to download (etils.epath) but does not declare it
        "tensorflow-serving-api>=2.21,<2.22",  # PredictionLog protos for the warm-up file
        "keras-tuner[bayesian]>=1.4.8,<1.5",  # scipy, for BayesianOptimization
        "tensorboard",  # keras-tuner imports its hparams API in every TensorFlow trial
        "matplotlib>=3.8",
        "numpy>=1.26",
    ],
    extras_require={
        # The export formats' converters and the runtimes each export is verified with.
        "onnx": ["tf2onnx>=1.17,<1.18", "onnx>=1.17", "onnxruntime>=1.20"],
        "litert": ["ai-edge-litert>=2.0"],
        # jax[cpu]: the models' contract runs under Keras' JAX backend too.
        "dev": [
            "pytest>=8",
            "pytest-xdist>=3.6",  # make test runs the suite on every core (-n auto)
            "ruff==0.17.6",
            "jax[cpu]>=0.5",
            "tf2onnx>=1.17,<1.18",
            "onnx>=1.17",
            "onnxruntime>=1.20",
            "ai-edge-litert>=2.0",
            # kzoo.place is tested on keras-hub backbones (built from a config, no download)
            "keras-hub>=0.32,<0.33",
        ],
    },
    entry_points={"console_scripts": ["kzoo=kzoo_command:main"]},
)
