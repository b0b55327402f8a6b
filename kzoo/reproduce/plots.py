"""A study's figures: per dataset and curve group, the test error (or accuracy) and test
loss per epoch, mean over seeds with a ± std band, as the papers plot them; per sweep,
the final score against the swept setting."""

import os

from kzoo import checks
from kzoo.reproduce.scores import mean_std, score, unit
from kzoo.reproduce.study import check_study
from kzoo.training.report import save_figure


def curve_series(records, variant, dataset, key):
    """Per-epoch mean and std of ``key`` (an ``epochs.csv`` column) over a row's seeds."""
    runs = [r["_epochs"] for r in records if r["variant"] == variant and r["dataset"] == dataset]
    runs = [[e[key] for e in rows if e.get(key) is not None] for rows in runs]
    runs = [r for r in runs if r]
    if not runs:
        return [], [], []
    length = min(len(r) for r in runs)
    means, stds = zip(*(mean_std([r[i] for r in runs]) for i in range(length)))
    return list(range(1, length + 1)), list(means), list(stds)


def plot_study(study, out, rows, records):
    """One PNG per dataset and curve group, one per sweep, into the folder ``out``, from
    ``summarize``'s rows and records. Returns the paths written."""
    check_study(study)
    out = checks.existing_dir(out, "out")
    groups = study.curves or {"all": tuple(v.key for v in study.variants)}
    datasets = []
    for r in rows:
        if r["dataset"] not in datasets:
            datasets.append(r["dataset"])
    written = []
    for dataset in datasets:
        for group, members in groups.items():
            path = plot_curves(
                study,
                os.path.join(out, f"curves-{dataset}-{_slug(group)}.png"),
                records,
                dataset,
                group,
                members,
            )
            if path:
                written.append(path)
    for group, (xlabel, xs) in study.sweeps.items():
        path = plot_sweep(
            study, os.path.join(out, f"sweep-{_slug(group)}.png"), rows, datasets, group, xlabel, xs
        )
        if path:
            written.append(path)
    return written


def plot_curves(study, path, records, dataset, group, members):
    """The test score and test loss per epoch of ``members`` on ``dataset``, written to
    ``path``; None (nothing written) when none of them has a finished run there."""
    check_study(study)
    path = checks.path(path, "path")
    from matplotlib.ticker import MaxNLocator

    series = []
    for key in members:
        x, acc, acc_std = curve_series(records, key, dataset, "test_accuracy")
        _, loss, loss_std = curve_series(records, key, dataset, "test_cross_entropy")
        if x:
            series.append((study.variant(key).label, x, acc, acc_std, loss, loss_std))
    if not series:
        return None
    fig, (ax_acc, ax_loss) = _pyplot().subplots(1, 2, figsize=(11, 4))
    for label, x, acc, acc_std, loss, loss_std in series:
        y = [score(a, study.metric) for a in acc]
        s = [100.0 * d for d in acc_std]
        ax_acc.plot(x, y, marker=".", label=label)
        ax_acc.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)], alpha=0.15)
        if loss:
            ax_loss.plot(x[: len(loss)], loss, marker=".", label=label)
            ax_loss.fill_between(
                x[: len(loss)],
                [a - b for a, b in zip(loss, loss_std)],
                [a + b for a, b in zip(loss, loss_std)],
                alpha=0.15,
            )
    ax_acc.set(xlabel="epoch", ylabel=unit(study.metric), title="test " + study.metric)
    ax_loss.set(xlabel="epoch", ylabel="test cross-entropy", title="test loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{study.title}: {group} on {dataset} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_sweep(study, path, rows, datasets, group, xlabel, xs):
    """The final score of the variants in ``xs`` (variant key -> x) against x, one line
    per dataset, written to ``path``; None when none has a result yet."""
    check_study(study)
    path = checks.path(path, "path")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for dataset in datasets:
        points = [
            (x, r["mean"], r["std"])
            for key, x in xs.items()
            for r in rows
            if r["variant"] == key and r["dataset"] == dataset and r["mean"] is not None
        ]
        if not points:
            continue
        points.sort()
        x, y, s = zip(*points)
        ax.errorbar(x, y, yerr=s, marker="o", capsize=3, label=dataset)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xlabel=xlabel, ylabel=unit(study.metric), title=f"{group} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text)).strip("-").lower()
