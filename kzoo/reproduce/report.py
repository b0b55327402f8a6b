"""A study's report, rebuilt from the finished jobs' own records: ``runs.csv`` (one row
per job), ``results.md`` (kzoo's mean ± std per row and dataset next to the paper's
numbers, each against its baseline row) and the plots."""

import csv
import io
import json
import math
import os
import statistics

from kzoo import atomic, checks
from kzoo.reproduce.outputs import RESULTS, RUNS_CSV, existing_out, is_diverged, read_job, writing
from kzoo.reproduce.plots import plot_study
from kzoo.reproduce.scores import check_metric, mean_std, score, unit
from kzoo.reproduce.study import check_job_list, check_scale, check_study, jobs
from kzoo.training.report import markdown_table


def csv_columns(metric):
    """The columns of ``runs.csv``; ``metric`` ("error" or "accuracy") is the study's score."""
    check_metric(metric)
    return [
        "variant",
        "dataset",
        "seed",
        "model",
        "model_kwargs",
        "protocol",
        "epochs",
        "test_top1",
        "test_top5",
        metric,
        "test_loss",
        "best_val_top1",
        "params",
        "train_seconds",
        "wall_seconds",
        "command",
    ]


def summarize(study, scale, out, todo=None):
    """One row per (variant, dataset): kzoo's scores over the finished seeds and the
    paper's number. Also returns the per-job records. Every record read is checked: a
    damaged one is an error naming its file."""
    todo = _check_todo(study, scale, todo)
    out = checks.path(out, "out")
    cells, records, diverged = {}, [], {}
    for job in todo:
        key = (job.variant.key, job.dataset)
        if is_diverged(out, job):
            diverged[key] = diverged.get(key, 0) + 1
            continue
        rec = read_job(out, job)
        if rec is None:
            continue
        record = _record(study, job, rec)
        cells.setdefault(key, []).append(record[study.metric])
        records.append(record)
    rows = []
    for job in todo:
        key = (job.variant.key, job.dataset)
        if any((r["variant"], r["dataset"]) == key for r in rows):
            continue
        v = job.variant
        mean, std = mean_std(cells.get(key, []))
        expected = sum(1 for j in todo if (j.variant.key, j.dataset) == key)
        rows.append(
            {
                "variant": v.key,
                "label": v.label,
                "model": job.model,
                "dataset": job.dataset,
                "n": len(cells.get(key, [])),
                "of": expected,
                "mean": mean,
                "std": std,
                "diverged": diverged.get(key, 0),
                "paper": v.paper,
                "baseline": v.baseline,
            }
        )
    return rows, records


def _record(study, job, rec):
    """One ``runs.csv`` row (and, under ``_epochs``, the job's epoch rows for the plots)."""
    m = rec["metrics"]
    return {
        "variant": job.variant.key,
        "dataset": job.dataset,
        "seed": job.seed,
        "model": job.model,
        "model_kwargs": json.dumps(job.model_kwargs, sort_keys=True),
        "protocol": m["protocol"],
        "epochs": m["epochs"],
        "test_top1": m["test_top1"],
        "test_top5": m.get("test_top5"),
        study.metric: score(m["test_top1"], study.metric),
        "test_loss": m.get("test_loss"),
        "best_val_top1": m.get("best_val_top1"),
        "params": m["params"],
        "train_seconds": m["train_seconds"],
        "wall_seconds": rec["wall_seconds"],
        "command": m.get("command"),
        "_epochs": rec["epochs"],
    }


def _check_todo(study, scale, todo):
    """``todo`` (jobs of ``study``), or all of the study's jobs at ``scale`` when None."""
    check_study(study)
    check_scale(scale)
    if todo is None:
        return jobs(study, scale)
    todo = check_job_list(todo)
    keys = {v.key for v in study.variants}
    for job in todo:
        if job.variant.key not in keys:
            raise ValueError(
                f"`todo` holds a job of row {job.variant.key!r}, which is not a row of {study.name}"
            )
    return todo


def write_report(study, scale, out, todo=None):
    """Rewrite ``runs.csv``, ``results.md`` and the curve plots from the finished jobs in
    ``out`` (which must exist: FileNotFoundError naming `out` otherwise). Returns the
    report's rows (see ``summarize``)."""
    todo = _check_todo(study, scale, todo)
    out = existing_out(out)
    checks.writable_dir(out, "out")
    summarize(study, scale, out, todo)  # every record read and checked before anything is written
    with writing(out):
        return write_files(study, scale, out, todo)


def write_files(study, scale, out, todo):
    """``write_report``'s files, written into ``out`` while this process holds it
    (``outputs.writing``), with nothing checked again."""
    rows, records = summarize(study, scale, out, todo)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, csv_columns(study.metric), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    atomic.write_text(os.path.join(out, RUNS_CSV), buf.getvalue())
    plots = plot_study(study, out, rows, records)
    atomic.write_text(os.path.join(out, RESULTS), render(study, scale, rows, records, plots))
    return rows


def render(study, scale, rows, records, plots=()):
    """The report: the table (kzoo mean ± std over seeds, the paper's number, each
    against its baseline row), wall times, commands and plots."""
    check_study(study)
    check_scale(scale)
    lines = [
        f"# {study.title}",
        "",
        f"Source: {study.source}.",
        "",
        f"Scale: **{scale}**. Metric: {unit(study.metric)}, mean ± sample std over seeds; "
        '"vs baseline" is the row minus its baseline row (same dataset) ± the standard '
        "error of that difference.",
        "",
    ]
    if study.notes:
        lines += [study.notes, ""]
    lines += [results_table(study, rows), ""]
    if scale == "cpu":
        skipped = [v.label for v in study.variants if v.cpu_model is None]
        if skipped:
            lines += [
                "Not run at CPU scale (too deep or too wide for it, or the same run as "
                "another row there): " + "; ".join(skipped) + ".",
                "",
            ]
    lines += _run_facts(records)
    for path in plots:
        lines += [f"![{os.path.basename(path)}]({os.path.basename(path)})", ""]
    lines += ["Per-run numbers: `runs.csv`; every run's epochs, config and metrics: `runs/`."]
    return "\n".join(lines) + "\n"


def results_table(study, rows):
    """The Markdown table: per row and dataset kzoo's result, its seeds and its difference
    from the baseline row, then each paper column's number and difference."""
    check_study(study)
    by_key = {(r["variant"], r["dataset"]): r for r in rows}
    paper_columns = []
    for v in study.variants:
        paper_columns += [d for d in v.paper if d not in paper_columns]
    header = ["row", "model", "dataset", f"kzoo {unit(study.metric)}", "seeds", "vs baseline"]
    for d in paper_columns:
        header += [f"paper {d}", "paper vs baseline"]
    table = []
    for r in rows:
        base = by_key.get((r["baseline"], r["dataset"])) if r["baseline"] else None
        delta = _difference(r, base) if base else "-"
        seeds = f"{r['n']}/{r['of']}" + (f", {r['diverged']} diverged" if r["diverged"] else "")
        result = "diverged" if r["diverged"] and not r["n"] else _fmt(r["mean"], r["std"])
        line = [r["label"], r["model"], r["dataset"], result, seeds, delta]
        base_variant = study.variant(r["baseline"]) if r["baseline"] else None
        for d in paper_columns:
            mean, std = _paper_value(r["paper"].get(d))
            line.append(_fmt(mean, std))
            bmean = _paper_value(base_variant.paper.get(d))[0] if base_variant else None
            numbers = all(isinstance(x, (int, float)) for x in (mean, bmean))
            line.append(_signed(mean - bmean) if numbers else "-")
        table.append(line)
    return markdown_table(header, table)


def _run_facts(records):
    """Lines on the finished runs: protocols, epochs, wall times and the commands that made them."""
    lines = []
    if records:
        walls = [r["wall_seconds"] for r in records if r["wall_seconds"] is not None]
        proto = sorted({r["protocol"] for r in records})
        epochs = sorted({r["epochs"] for r in records})
        lines += [
            f"Finished runs: {len(records)}; protocol(s): {', '.join(proto)}; epochs: "
            f"{', '.join(map(str, epochs))}; total wall time {sum(walls) / 60:.1f} min "
            f"(training alone {sum(r['train_seconds'] for r in records) / 60:.1f} min).",
            "",
        ]
        per = {}
        for r in records:
            per.setdefault((r["variant"], r["dataset"]), []).append(r["wall_seconds"] or 0.0)
        lines += [
            "Wall time per run (s): "
            + "; ".join(f"{k[0]} on {k[1]} {statistics.fmean(v):.0f}" for k, v in per.items()),
            "",
        ]
    commands = sorted({r["command"] for r in records if r["command"]})
    if commands:
        lines += ["Made by:", "", *[f"    {c}" for c in commands], ""]
    return lines


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
