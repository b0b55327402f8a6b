"""The numbers a study reports: a run's top-1 in the study's metric, and mean ± std over
seeds; shared by the report's table and the plots' curves."""

import statistics


def score(top1, metric):
    """A top-1 accuracy (0-1) in the study's metric, in percent."""
    return 100.0 * (1.0 - top1) if metric == "error" else 100.0 * top1


def mean_std(values):
    """Mean and sample standard deviation (n-1; 0 for a single value)."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def unit(metric):
    """The axis / column label of the metric."""
    return "test error %" if metric == "error" else "test top-1 %"
