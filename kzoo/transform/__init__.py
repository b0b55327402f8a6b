"""Placement on any Keras model: ``place`` (EraseReLU, the proportional module and FReLU
on a model you already have, its weights carried), ``modules`` (the modules and slots
found in its graph, the report to read before choosing) and ``adapt`` (a new classifier
head and input for fine-tuning); and seeing inside one, by the same graph: ``features``
(its stage outputs, for detection and segmentation heads), ``taps`` (the tensors at any
module's slot) and ``activation_stats`` (what each activation does on real images)."""

from kzoo.transform import specs as specs  # registers keras:NAME and .keras names
from kzoo.transform.adapt import adapt
from kzoo.transform.features import FeatureInfo, FeatureModel, features
from kzoo.transform.place import place
from kzoo.transform.report import ModuleReport
from kzoo.transform.slots import modules
from kzoo.transform.stats import activation_stats
from kzoo.transform.stats_table import ActivationStats
from kzoo.transform.taps import taps

__all__ = [
    "ActivationStats",
    "FeatureInfo",
    "FeatureModel",
    "ModuleReport",
    "activation_stats",
    "adapt",
    "features",
    "modules",
    "place",
    "taps",
]
