from setuptools import find_packages, setup

setup(
    name="kzoo",
    version="0.1.0",
    description="A Keras 3 model zoo for where ReLUs belong: EraseReLU, the proportional module, FReLU",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kzoo", "kzoo.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "tensorflow-datasets",
        "importlib_resources",  # TFDS needs it to download (etils.epath) but does not declare it
        "tensorflow-serving-api",  # PredictionLog protos for the warm-up file
        "keras-tuner[bayesian]",  # scipy, for BayesianOptimization
        "tensorboard",  # keras-tuner imports its hparams API in every TensorFlow trial
        "matplotlib",
    ],
    extras_require={"dev": ["pytest"]},
    entry_points={"console_scripts": ["kzoo=kzoo.cli:main"]},
)
