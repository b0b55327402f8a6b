"""Re-running a paper's table or figure: every row (a ``Variant``: a model and its
placement options) on every dataset with several seeds, each one ``kzoo.train`` run, then
aggregated as mean ± std next to the published numbers, with the per-epoch test curves
the papers plot.

A ``Study`` is the recipe of one table or figure. It runs at two scales:

- ``"paper"``: the published protocol on the paper's datasets (a GPU's work), 5 seeds;
- ``"cpu"``: Fashion-MNIST under a short CPU protocol, 3 seeds, with each row's
  ``cpu_model`` (a shallower network where the paper's is out of reach on a CPU).

Layout of ``out``::

    runs/<dataset>/<variant>/seed<k>/   one kzoo run directory per job (test curve on),
                                        with wall.json (its wall time) and, for a run whose
                                        loss became NaN, diverged.json
    runs.csv                            one row per finished job
    results.md                          mean ± std per row and dataset, the paper's numbers
    curves-<dataset>-<group>.png        mean test error and loss per epoch (± std band)

Re-running continues: finished jobs (those with ``metrics.json``) are not touched, an
interrupted one resumes from its last epoch, and the report is rewritten after every job,
so it always shows what has been run. A job's record is its ``metrics.json`` and
``epochs.csv``; the weights may be dropped (``results/`` in the repository keeps only the
records) without the job being run again.
"""

import csv
import dataclasses
import fnmatch
import io
import json
import math
import os
import shlex
import statistics
import sys
import time

from kzoo.training.callbacks import EpochLog, atomic_write_text
from kzoo.training.report import markdown_table, save_figure

SCALES = ("paper", "cpu")
METRICS = ("error", "accuracy")
CPU_DATASET = "fashion_mnist"
CPU_PROTOCOL = "fashion_mnist_demo"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a table: ``model`` with ``model_kwargs`` at paper scale.

    ``paper`` maps a dataset to the published number in the study's metric, a mean, a
    ``(mean, std)`` pair or a phrase ("not converge"); a dataset absent from it (but in
    ``datasets``) has no published number (the paper shows only a curve). When
    ``datasets`` is given, ``paper``'s keys are free column labels (e.g. one per source
    paper, when two papers report the same network). ``datasets`` are
    the paper-scale datasets (default: those in ``paper``). ``protocol`` is the
    paper-scale protocol (default: the study's), or a dict dataset -> protocol;
    ``overrides`` are protocol fields set at both scales (e.g. ``{"lr": 0.01}``).
    ``cpu_model`` is the network run at CPU scale ("" = ``model``; None = the row is not
    run on the CPU), with ``cpu_kwargs`` (default: ``model_kwargs``). ``baseline`` is the
    key of the row this one is compared with (the difference is shown for both kzoo and
    the paper).
    """

    key: str
    label: str
    model: str
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    paper: dict = dataclasses.field(default_factory=dict)
    datasets: tuple = ()
    protocol: object = None
    overrides: dict = dataclasses.field(default_factory=dict)
    cpu_model: object = ""
    cpu_kwargs: object = None
    baseline: object = None

    def paper_datasets(self):
        return tuple(self.datasets) or tuple(self.paper)


@dataclasses.dataclass(frozen=True)
class Study:
    """The recipe of one table or figure (see the module docstring).

    ``metric`` is what the paper reports ("error" or "accuracy", in %). ``curves`` maps
    a figure name to the variant keys drawn together per epoch (original vs erased);
    ``sweeps`` maps a figure name to ``(x label, {variant key: x})`` for a final-score
    against-a-setting plot (EraseReLU's proportion sweeps).
    """

    name: str
    title: str
    source: str
    metric: str
    variants: tuple
    protocol: object = None
    seeds: int = 5
    cpu_protocol: object = CPU_PROTOCOL
    cpu_seeds: int = 3
    cpu_overrides: dict = dataclasses.field(default_factory=dict)
    curves: dict = dataclasses.field(default_factory=dict)
    sweeps: dict = dataclasses.field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"Study {self.name!r}: `metric` must be one of {METRICS}, got {self.metric!r}")
        if not self.variants:
            raise ValueError(f"Study {self.name!r}: `variants` is empty")
        keys = [v.key for v in self.variants]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"Study {self.name!r}: variant keys {repeated} are repeated")
        for v in self.variants:
            if v.baseline is not None and v.baseline not in keys:
                raise ValueError(f"Study {self.name!r}: variant {v.key!r} has `baseline`={v.baseline!r}, "
                                 f"which is not a variant key")
            if not v.paper_datasets():
                raise ValueError(f"Study {self.name!r}: variant {v.key!r} names no paper dataset")
            if v.protocol is None and self.protocol is None:
                raise ValueError(f"Study {self.name!r}: variant {v.key!r} has no protocol and the "
                                 "study sets none")
        groups = [*self.curves.items(), *((g, tuple(xs)) for g, (_, xs) in self.sweeps.items())]
        for group, members in groups:
            unknown = [k for k in members if k not in keys]
            if unknown:
                raise ValueError(f"Study {self.name!r}: curve group {group!r} names unknown variants {unknown}")

    def variant(self, key):
        return next(v for v in self.variants if v.key == key)


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run of a study: a variant on a dataset with a seed."""

    variant: Variant
    dataset: str
    seed: int
    model: str
    model_kwargs: dict
    protocol: object
    overrides: dict

    @property
    def folder(self):
        return os.path.join("runs", self.dataset, self.variant.key, f"seed{self.seed}")


def _check_scale(scale):
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}, got {scale!r}")


def jobs(study, scale="cpu", seeds=None, only=None):
    """The study's jobs at ``scale``: every variant (or those matching the ``only``
    patterns, e.g. ``["resnet20-*"]``) on each of its datasets for seeds 0..seeds-1,
    seed-major, so an interrupted study has every row at its first seeds."""
    _check_scale(scale)
    if seeds is None:
        seeds = study.seeds if scale == "paper" else study.cpu_seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"`seeds` must be a positive integer, got {seeds!r}")
    variants = _select(study, only)
    out = []
    for v in variants:
        if scale == "paper":
            model, kwargs, datasets, overrides = v.model, v.model_kwargs, v.paper_datasets(), dict(v.overrides)
        else:
            if v.cpu_model is None:
                continue
            model = v.cpu_model or v.model
            kwargs = v.model_kwargs if v.cpu_kwargs is None else v.cpu_kwargs
            datasets, overrides = (CPU_DATASET,), {**study.cpu_overrides, **v.overrides}
        for dataset in datasets:
            protocol = _protocol(study, v, dataset, scale)
            for seed in range(seeds):
                out.append(Job(v, dataset, seed, model, dict(kwargs), protocol, overrides))
    return sorted(out, key=lambda j: j.seed)  # stable: variant and dataset order kept


def _select(study, only):
    if only is None:
        return list(study.variants)
    if isinstance(only, str):
        only = [only]
    keys = [v.key for v in study.variants]
    for pattern in only:
        if not any(fnmatch.fnmatchcase(k, pattern) for k in keys):
            raise ValueError(f"`only`: {pattern!r} matches no variant of {study.name}; "
                             f"variants are {', '.join(keys)}")
    return [v for v in study.variants if any(fnmatch.fnmatchcase(v.key, p) for p in only)]


def _protocol(study, variant, dataset, scale):
    if scale == "cpu":
        return study.cpu_protocol
    protocol = variant.protocol if variant.protocol is not None else study.protocol
    if isinstance(protocol, dict):
        return protocol[dataset]
    return protocol


DIVERGED = "diverged.json"


def is_done(out, job):
    """Finished (``metrics.json``) or diverged (``diverged.json``): not run again."""
    folder = os.path.join(out, job.folder)
    return any(os.path.exists(os.path.join(folder, f)) for f in ("metrics.json", DIVERGED))


def run(study, scale="cpu", out=None, *, seeds=None, only=None, data_dir=None, epochs=None,
        verbose=2, command=None):
    """Train every job of the study not yet finished in ``out`` (default
    ``runs/reproduce/<study>-<scale>``), rewriting the report after each. Returns the
    report's rows (see ``summarize``)."""
    from kzoo.training import NonFiniteLossError, train

    todo = jobs(study, scale, seeds, only)
    everything = jobs(study, scale, seeds)  # the report covers the whole study, not just `only`
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
    suffix = f"-{epochs}epochs" if epochs is not None else ""  # a quick look never fills the recipe's folder
    out = out or os.path.join("runs", "reproduce", f"{study.name}-{scale}{suffix}")
    _check_finished_epochs(out, todo, epochs)
    os.makedirs(out, exist_ok=True)
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    pending = [j for j in todo if not is_done(out, j)]
    print(f"{study.name} ({scale}): {len(todo)} jobs, {len(todo) - len(pending)} finished, "
          f"{len(pending)} to run; out={out}", flush=True)
    for i, job in enumerate(pending, 1):
        print(f"[{i}/{len(pending)}] {job.variant.key} on {job.dataset}, seed {job.seed}: "
              f"{job.model} {job.model_kwargs or ''} under {_protocol_name(job.protocol)}", flush=True)
        start = time.perf_counter()
        overrides = dict(job.overrides)
        if epochs is not None:
            overrides["epochs"] = epochs
        outcome = "done"
        try:
            train(job.model, job.dataset, job.protocol, model_kwargs=job.model_kwargs, seed=job.seed,
                  out=os.path.join(out, job.folder), data_dir=data_dir, verbose=verbose,
                  command=command, test_curve=True, **overrides)
        except NonFiniteLossError as e:  # a result too (FReLU Table 1: "exploding")
            _write_json(out, job, DIVERGED, {"reason": str(e), "command": command})
            outcome = "diverged"
        wall = time.perf_counter() - start
        _write_json(out, job, "wall.json", {"wall_seconds": wall})
        write_report(study, scale, out, everything)
        print(f"  {outcome} in {wall:.0f}s", flush=True)
    return write_report(study, scale, out, everything)


def _check_finished_epochs(out, todo, epochs):
    """Refuse an ``out`` whose finished runs were trained for other epochs than asked:
    they would otherwise count as this call's results."""
    from kzoo.training import get_protocol

    for job in todo:
        path = os.path.join(out, job.folder, "metrics.json")
        if not os.path.exists(path):
            continue
        expected = epochs if epochs is not None else job.overrides.get("epochs")
        if expected is None:
            expected = get_protocol(job.protocol).epochs  # None: counted in steps, not checked
        with open(path) as f:
            done = json.load(f)["epochs"]
        if expected is not None and done != expected:
            raise ValueError(f"`out`={out!r} holds {job.folder} trained for {done} epochs, but this call "
                             f"asks for {expected}; give another `out` (--out)")


def _protocol_name(protocol):
    return protocol if isinstance(protocol, str) else getattr(protocol, "name", str(protocol))


def _write_json(out, job, name, record):
    """A small record in the job's folder (``wall.json``: data, build, training and test
    curve time of the call that finished the job; ``diverged.json``), written atomically."""
    os.makedirs(os.path.join(out, job.folder), exist_ok=True)
    atomic_write_text(os.path.join(out, job.folder, name), json.dumps(record, indent=2))


def _read_job(out, job):
    """A finished job's record: final metrics, epoch rows and wall time, or None."""
    folder = os.path.join(out, job.folder)
    if not os.path.exists(os.path.join(folder, "metrics.json")):
        return None
    with open(os.path.join(folder, "metrics.json")) as f:
        metrics = json.load(f)
    rows = EpochLog(os.path.join(folder, "epochs.csv")).read()
    wall = None
    if os.path.exists(os.path.join(folder, "wall.json")):
        with open(os.path.join(folder, "wall.json")) as f:
            wall = json.load(f)["wall_seconds"]
    return {"metrics": metrics, "epochs": rows, "wall_seconds": wall}


def score(top1, metric):
    """A top-1 accuracy (0-1) in the study's metric, in percent."""
    return 100.0 * (1.0 - top1) if metric == "error" else 100.0 * top1


def mean_std(values):
    """Mean and sample standard deviation (n-1; 0 for a single value)."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(study, scale, out, todo=None):
    """One row per (variant, dataset): kzoo's scores over the finished seeds and the
    paper's number. Also returns the per-job records."""
    todo = todo if todo is not None else jobs(study, scale)
    cells, records, diverged = {}, [], {}
    for job in todo:
        if os.path.exists(os.path.join(out, job.folder, DIVERGED)):
            diverged[(job.variant.key, job.dataset)] = diverged.get((job.variant.key, job.dataset), 0) + 1
            continue
        rec = _read_job(out, job)
        if rec is None:
            continue
        m = rec["metrics"]
        value = score(m["test_top1"], study.metric)
        cells.setdefault((job.variant.key, job.dataset), []).append(value)
        records.append({
            "variant": job.variant.key, "dataset": job.dataset, "seed": job.seed, "model": job.model,
            "model_kwargs": json.dumps(job.model_kwargs, sort_keys=True), "protocol": m["protocol"],
            "epochs": m["epochs"], "test_top1": m["test_top1"], "test_top5": m.get("test_top5"),
            study.metric: value,
            "test_loss": m.get("test_loss"), "best_val_top1": m.get("best_val_top1"),
            "params": m["params"], "train_seconds": m["train_seconds"],
            "wall_seconds": rec["wall_seconds"], "command": m.get("command"),
            "_epochs": rec["epochs"],
        })
    rows = []
    seen = []
    for job in todo:
        key = (job.variant.key, job.dataset)
        if key in seen:
            continue
        seen.append(key)
        v = job.variant
        mean, std = mean_std(cells.get(key, []))
        expected = sum(1 for j in todo if (j.variant.key, j.dataset) == key)
        rows.append({"variant": v.key, "label": v.label, "model": job.model, "dataset": job.dataset,
                     "n": len(cells.get(key, [])), "of": expected, "mean": mean, "std": std,
                     "diverged": diverged.get(key, 0), "paper": v.paper, "baseline": v.baseline})
    return rows, records


def _paper_value(value):
    if value is None or isinstance(value, str):
        return value, None
    if isinstance(value, (tuple, list)):
        return float(value[0]), (float(value[1]) if len(value) > 1 and value[1] is not None else None)
    return float(value), None


def _fmt(mean, std=None):
    if mean is None:
        return "-"
    if isinstance(mean, str):
        return mean
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def _difference(row, base):
    """``row`` minus ``base`` ± the standard error of that difference (Welch's,
    sqrt(s1²/n1 + s2²/n2)), so a reader can tell a difference from the seeds' spread."""
    if row["mean"] is None or base["mean"] is None:
        return "-"
    text = _signed(row["mean"] - base["mean"])
    if row["n"] > 1 and base["n"] > 1:
        text += f" ± {math.sqrt(row['std'] ** 2 / row['n'] + base['std'] ** 2 / base['n']):.2f}"
    return text


def _signed(x):
    return "-" if x is None else f"{x:+.2f}"


def write_report(study, scale, out, todo=None):
    """Rewrite ``runs.csv``, ``results.md`` and the curve plots from the finished jobs."""
    todo = todo if todo is not None else jobs(study, scale)
    rows, records = summarize(study, scale, out, todo)
    columns = ["variant", "dataset", "seed", "model", "model_kwargs", "protocol", "epochs", "test_top1",
               "test_top5", study.metric, "test_loss", "best_val_top1", "params", "train_seconds", "wall_seconds",
               "command"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(os.path.join(out, "runs.csv"), buf.getvalue())
    plots = plot_study(study, out, rows, records)
    atomic_write_text(os.path.join(out, "results.md"), render(study, scale, rows, records, plots))
    return rows


def render(study, scale, rows, records, plots=()):
    """The report: the table (kzoo mean ± std over seeds, the paper's number, each
    against its baseline row), wall times, commands and plots."""
    unit = "test error %" if study.metric == "error" else "test top-1 %"
    by_key = {(r["variant"], r["dataset"]): r for r in rows}
    paper_datasets = []
    for v in study.variants:
        paper_datasets += [d for d in v.paper if d not in paper_datasets]
    header = ["row", "model", "dataset", f"kzoo {unit}", "seeds", "vs baseline"]
    for d in paper_datasets:
        header += [f"paper {d}", "paper vs baseline"]
    table = []
    for r in rows:
        base = by_key.get((r["baseline"], r["dataset"])) if r["baseline"] else None
        delta = _difference(r, base) if base else "-"
        seeds = f"{r['n']}/{r['of']}" + (f", {r['diverged']} diverged" if r["diverged"] else "")
        result = "diverged" if r["diverged"] and not r["n"] else _fmt(r["mean"], r["std"])
        line = [r["label"], r["model"], r["dataset"], result, seeds, delta]
        base_variant = study.variant(r["baseline"]) if r["baseline"] else None
        for d in paper_datasets:
            mean, std = _paper_value(r["paper"].get(d))
            line.append(_fmt(mean, std))
            bmean = _paper_value(base_variant.paper.get(d))[0] if base_variant else None
            numbers = all(isinstance(x, (int, float)) for x in (mean, bmean))
            line.append(_signed(mean - bmean) if numbers else "-")
        table.append(line)
    walls = [r["wall_seconds"] for r in records if r["wall_seconds"] is not None]
    commands = sorted({r["command"] for r in records if r["command"]})
    lines = [f"# {study.title}", "", f"Source: {study.source}.", "",
             f"Scale: **{scale}**. Metric: {unit}, mean ± sample std over seeds; "
             "\"vs baseline\" is the row minus its baseline row (same dataset) ± the standard "
             "error of that difference.", ""]
    if study.notes:
        lines += [study.notes, ""]
    lines += [markdown_table(header, table), ""]
    if scale == "cpu":
        skipped = [v.label for v in study.variants if v.cpu_model is None]
        if skipped:
            lines += ["Not run at CPU scale (too deep or too wide for it, or the same run as "
                      "another row there): " + "; ".join(skipped) + ".", ""]
    if records:
        proto = sorted({r["protocol"] for r in records})
        epochs = sorted({r["epochs"] for r in records})
        lines += [f"Finished runs: {len(records)}; protocol(s): {', '.join(proto)}; epochs: "
                  f"{', '.join(map(str, epochs))}; total wall time {sum(walls) / 60:.1f} min "
                  f"(training alone {sum(r['train_seconds'] for r in records) / 60:.1f} min).", ""]
        per = {}
        for r in records:
            per.setdefault((r["variant"], r["dataset"]), []).append(r["wall_seconds"] or 0.0)
        lines += ["Wall time per run (s): " + "; ".join(
            f"{k[0]} on {k[1]} {statistics.fmean(v):.0f}" for k, v in per.items()), ""]
    if commands:
        lines += ["Made by:", "", *[f"    {c}" for c in commands], ""]
    for path in plots:
        lines += [f"![{os.path.basename(path)}]({os.path.basename(path)})", ""]
    lines += ["Per-run numbers: `runs.csv`; every run's epochs, config and metrics: `runs/`."]
    return "\n".join(lines) + "\n"


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
    """One PNG per dataset and curve group: test error (or accuracy) and test loss per
    epoch, mean over seeds with a ± std band; one per sweep: the final score against the
    swept setting. Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    groups = study.curves or {"all": tuple(v.key for v in study.variants)}
    datasets = []
    for r in rows:
        if r["dataset"] not in datasets:
            datasets.append(r["dataset"])
    written = []
    for dataset in datasets:
        for group, members in groups.items():
            series = []
            for key in members:
                x, acc, acc_std = curve_series(records, key, dataset, "test_accuracy")
                _, loss, loss_std = curve_series(records, key, dataset, "test_cross_entropy")
                if x:
                    series.append((study.variant(key).label, x, acc, acc_std, loss, loss_std))
            if not series:
                continue
            fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
            for label, x, acc, acc_std, loss, loss_std in series:
                y = [score(a, study.metric) for a in acc]
                s = [100.0 * d for d in acc_std]
                ax_acc.plot(x, y, marker=".", label=label)
                ax_acc.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)], alpha=0.15)
                if loss:
                    ax_loss.plot(x[:len(loss)], loss, marker=".", label=label)
                    ax_loss.fill_between(x[:len(loss)], [a - b for a, b in zip(loss, loss_std)],
                                         [a + b for a, b in zip(loss, loss_std)], alpha=0.15)
            ax_acc.set(xlabel="epoch", ylabel="test error %" if study.metric == "error" else "test top-1 %",
                       title="test " + study.metric)
            ax_loss.set(xlabel="epoch", ylabel="test cross-entropy", title="test loss")
            for ax in (ax_acc, ax_loss):
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            fig.suptitle(f"{study.title}: {group} on {dataset} (mean ± std over seeds)", fontsize=10)
            fig.tight_layout()
            written.append(save_figure(fig, os.path.join(out, f"curves-{dataset}-{_slug(group)}.png")))
    for group, (xlabel, xs) in study.sweeps.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = False
        for dataset in datasets:
            points = [(x, r["mean"], r["std"]) for key, x in xs.items() for r in rows
                      if r["variant"] == key and r["dataset"] == dataset and r["mean"] is not None]
            if not points:
                continue
            points.sort()
            x, y, s = zip(*points)
            ax.errorbar(x, y, yerr=s, marker="o", capsize=3, label=dataset)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set(xlabel=xlabel, ylabel="test error %" if study.metric == "error" else "test top-1 %",
               title=f"{group} (mean ± std over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(save_figure(fig, os.path.join(out, f"sweep-{_slug(group)}.png")))
    return written


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text)).strip("-").lower()


def main(study, argv=None):
    """The command line of a recipe in ``applications/``: run (or only report) a study."""
    import argparse

    parser = argparse.ArgumentParser(description=f"{study.title} ({study.source}). " + (study.notes or ""))
    parser.add_argument("--scale", choices=SCALES, default="cpu",
                        help="paper: the published protocol and datasets (GPU), 5 seeds; "
                             "cpu: Fashion-MNIST, short protocol, 3 seeds (default)")
    parser.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    parser.add_argument("--only", help="comma-separated variant keys or patterns (e.g. 'resnet20-*')")
    parser.add_argument("--out", help="output folder (default runs/reproduce/STUDY-SCALE, "
                                      "with -Nepochs appended under --epochs)")
    parser.add_argument("--epochs", type=int, help="override the protocol's epochs (a quick look, not the recipe)")
    parser.add_argument("--data-dir", help="TFDS data_dir / folder with the IDX files")
    parser.add_argument("--list", action="store_true", help="print the jobs and exit")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from finished jobs")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    only = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else None
    suffix = f"-{args.epochs}epochs" if args.epochs is not None else ""
    out = args.out or os.path.join("runs", "reproduce", f"{study.name}-{args.scale}{suffix}")
    try:
        todo = jobs(study, args.scale, args.seeds, only)
        if args.list:
            for j in todo:
                state = "done" if is_done(out, j) else "todo"
                print(f"{state}  {j.folder}  {j.model} {json.dumps(j.model_kwargs)} {_protocol_name(j.protocol)}")
            return 0
        if args.report:
            rows = write_report(study, args.scale, out, jobs(study, args.scale, args.seeds))
        else:
            command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
            rows = run(study, args.scale, out, seeds=args.seeds, only=only, data_dir=args.data_dir,
                       epochs=args.epochs, verbose=0 if args.quiet else 2, command=command)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    done = sum(r["n"] for r in rows)
    print(f"{done} runs finished; report: {os.path.join(out, 'results.md')}")
    return 0
