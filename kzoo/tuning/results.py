"""A search's results: one row per trial (its hyperparameters, status and validation
scores), written as ``results.csv`` (every column) and ``results.md`` (readable)."""

import csv
import io
import os

from kzoo.tuning.hypermodel import OBJECTIVE

HP_COLUMNS = ("erase", "proportion", "activation", "learning_rate", "weight_decay", "tuner/epochs")
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
_HEADINGS = {
    OBJECTIVE: "val top-1 %",
    "val_loss": "val loss",
    "train_seconds": "train s",
    "tuner/epochs": "epochs",
}  # results.md's column headings


def results_table(searcher, hypermodel):
    """One dict per trial, in trial order: its hyperparameters, status, final validation
    top-1 and loss, training seconds, run folder and, for a failed trial, why."""
    rows = []
    for trial_id in sorted(searcher.oracle.trials):
        trial = searcher.oracle.trials[trial_id]
        values = trial.hyperparameters.values
        row = {"trial": trial_id, "status": trial.status}
        for key in HP_COLUMNS:
            if key in values:
                row[key] = values[key]
        for key in (OBJECTIVE, "val_loss", "train_seconds"):
            row[key] = trial.metrics.get_last_value(key) if trial.metrics.exists(key) else None
        run = hypermodel.run_dir(values) if "erase" in values else None
        row["run"] = os.path.relpath(run, hypermodel.out) if run else None
        row["message"] = _reason(trial.message) if trial.status == "FAILED" else ""
        rows.append(row)
    return rows


def _reason(message):
    """The last line of a failed trial's traceback: the error itself."""
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def write_results(out, rows, best=None):
    """``results.csv`` (every column) and ``results.md`` (a readable table, the selected
    trial ``best`` marked), atomically."""
    from kzoo import atomic

    columns = [
        "trial",
        "status",
        *[c for c in HP_COLUMNS if any(c in r for r in rows)],
        OBJECTIVE,
        "val_loss",
        "train_seconds",
        "run",
        "message",
    ]
    atomic.write_text(os.path.join(out, RESULTS_CSV), _csv_text(columns, rows))
    atomic.write_text(os.path.join(out, RESULTS_MD), _markdown_text(columns, rows, best) + "\n")


def _csv_text(columns, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _markdown_text(columns, rows, best):
    """The table without the run folder, scores as percentages, ``best``'s row marked."""
    from kzoo.training.report import markdown_table

    shown = [c for c in columns if c != "run"]
    table = []
    for row in rows:
        cells = [_cell(row, c) for c in shown]
        if row["trial"] == best:
            cells[0] += " (best)"
        table.append(cells)
    return markdown_table([_HEADINGS.get(c, c) for c in shown], table)


def _cell(row, column):
    value = row.get(column)
    if value is None:
        return "-"
    if column == OBJECTIVE:
        return f"{100 * value:.2f}"
    if column == "val_loss":
        return f"{value:.4f}"
    if column == "train_seconds":
        return f"{value:.0f}"
    return str(value)
