"""Placement on any Keras model: ``place`` (EraseReLU, the proportional module and FReLU
on a model you already have, its weights carried), ``modules`` (the modules and slots
found in its graph, the report to read before choosing) and ``adapt`` (a new classifier
head and input for fine-tuning)."""

from kzoo.transform import specs as specs  # registers keras:NAME and .keras names
from kzoo.transform.adapt import adapt
from kzoo.transform.place import place
from kzoo.transform.report import ModuleReport
from kzoo.transform.slots import modules

__all__ = ["ModuleReport", "adapt", "modules", "place"]
