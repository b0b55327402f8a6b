"""The numbers a study reports: a run's top-1 in the study's metric, and mean ± std over
seeds; shared by the report's table and the plots' curves."""

import numbers
import statistics

from kzoo import checks
from kzoo.reproduce.study import METRICS


def check_metric(metric):
    """``metric`` if it is "error" or "accuracy"; a ValueError naming `metric` otherwise."""
    return checks.choice(metric, "metric", METRICS)


def score(top1, metric):
    """A top-1 accuracy (0-1) in the study's metric, in percent."""
    top1 = checks.number(top1, "top1", minimum=0, maximum=1)
    check_metric(metric)
    return 100.0 * (1.0 - top1) if metric == "error" else 100.0 * top1


def mean_std(values):
    """Mean and sample standard deviation (n-1; 0 for a single value); (None, None) for none."""
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(f"`values` must be a list of numbers, got {values!r}")
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def unit(metric):
    """The axis / column label of the metric."""
    check_metric(metric)
    return "test error %" if metric == "error" else "test top-1 %"
