"""A published tag's activation statistics on its card: ``kzoo.activation_stats`` of the
shipped weights on the first 1,000 test images of its dataset (``kzoo stats TAG``'s
measure, kzoo.transform.stats_measure), as a compact per-slot table and a one-line summary in
``model_card.json``/``model_card.md``; the full table is ``activation_stats.json`` and
``.csv`` beside the card, in the version's folder.

An erased tag is measured against its builder without the erasure, so its erased slots
have rows saying what the removed ReLU would have zeroed.
"""

import math

IMAGES = 1000  # the first test images measured
KEY = "activation_stats"  # the card's entry
# The compact rows' numbers, rounded to what the sample measures (1e-6 of 1,000 images'
# values is far below their spread).
_DIGITS = 6


def _number(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), _DIGITS)


def _bias_mean(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    values = value if isinstance(value, list) else [value]
    return _number(sum(values) / len(values))


def measure(model, record, data_dir=None, images=IMAGES, batch_size=100):
    """The ``ActivationStats`` of ``model`` (a tag's float32 build with its weights) on the
    first ``images`` test images of ``record``'s dataset, an erased one against its
    builder without the erasure (``record.architecture`` with ``record.options``)."""
    from kzoo.transform import stats_measure

    return stats_measure.measure_built(
        model,
        record.architecture,
        record.options,
        record.dataset,
        data_dir=data_dir,
        images=images,
        batch_size=batch_size,
        verbose=0,
    )


def files(table, record):
    """{file name: text} of the full table beside the card (``kzoo stats``' CSV and JSON)."""
    from kzoo.transform import stats_measure

    return stats_measure.texts(table, record.tag, record.dataset)


def slot_rows(table):
    """One compact row per activation: where it is, what it is and what it does."""
    return [
        {
            "module": r["module"],
            "slot": r["slot"],
            "layer": r["layer"],
            "kind": r["kind"],
            "erased": bool(r["erased"]),
            "channels": r["channels"],
            "zero_fraction": _number(r["zero_fraction"]),
            "dead_fraction": _number(r["dead_fraction"]),
            "frelu_bias_mean": _bias_mean(r["frelu_bias"]),
        }
        for r in table.rows
    ]


def summary(rows):
    """What the rows say in a few numbers: per kind of kept activation, how many and their
    mean zero fraction; the erased slots and what they would have zeroed on average; the
    dead units; FReLU's mean bias."""
    kept = [r for r in rows if not r["erased"] and r["zero_fraction"] is not None]
    erased = [r for r in rows if r["erased"]]
    measured_erased = [r["zero_fraction"] for r in erased if r["zero_fraction"] is not None]
    kinds = {}
    for r in kept:
        kinds.setdefault(r["kind"], []).append(r["zero_fraction"])
    counted = [r for r in rows if not r["erased"] and r["channels"] is not None]
    biases = [r["frelu_bias_mean"] for r in rows if r["frelu_bias_mean"] is not None]
    return {
        "activations": len(rows) - len(erased),
        "kept_zero_fraction_mean": {k: _number(sum(v) / len(v)) for k, v in sorted(kinds.items())},
        "kept_count": {k: len(v) for k, v in sorted(kinds.items())},
        "erased": len(erased),
        "erased_would_have_zeroed_mean": _number(sum(measured_erased) / len(measured_erased))
        if measured_erased
        else None,
        "dead_units": sum(round(r["dead_fraction"] * r["channels"]) for r in counted),
        "units": sum(r["channels"] for r in counted),
        "frelu_bias_mean": _number(sum(biases) / len(biases)) if biases else None,
    }


def card_entry(table, record):
    """The card's ``activation_stats``: what was measured, the summary, its line, the
    compact rows and the files holding the full table."""
    from kzoo.transform.stats_measure import FILES

    rows = slot_rows(table)
    entry = {
        "images": table.images,
        "dataset": record.dataset,
        "split": "test",
        "original": "the builder without the erasure" if any(r["erased"] for r in rows) else None,
        "files": list(FILES[:2]),
        "summary": summary(rows),
    }
    entry["summary_line"] = summary_line(entry)
    entry["slots"] = rows
    return entry


def _percent(value):
    return "-" if value is None else f"{value:.1%}"


def summary_line(entry):
    """The summary in a sentence."""
    s = entry["summary"]
    kept = ", ".join(
        f"{s['kept_count'][k]} {k} zero {_percent(v)} on average"
        for k, v in s["kept_zero_fraction_mean"].items()
    )
    parts = [f"{s['activations']} activations on {entry['images']:,} test images: {kept or 'none measured'}"]
    if s["erased"]:
        parts.append(
            f"{s['erased']} erased slots, whose removed ReLU would have zeroed "
            f"{_percent(s['erased_would_have_zeroed_mean'])} on average"
        )
    else:
        parts.append("no erased slot")
    parts.append(f"{s['dead_units']:,} of {s['units']:,} units dead")
    if s["frelu_bias_mean"] is not None:
        parts.append(f"FReLU bias {s['frelu_bias_mean']:+.3f} on average")
    return "; ".join(parts) + "."


def markdown_lines(entry):
    """The card page's section: the summary line and the per-slot table."""
    if not entry:
        return []
    lines = [
        "## Activation statistics",
        "",
        f"`kzoo.activation_stats` on the first {entry['images']:,} {entry['dataset']} test images, "
        "preprocessed as `kzoo evaluate` does"
        + (f" (erased slots: measured against {entry['original']})" if entry.get("original") else "")
        + f"; the full table is {' and '.join(f'`{f}`' for f in entry['files'])} beside this card.",
        "",
        entry["summary_line"],
        "",
        "| module | slot | activation | zero fraction | dead units | FReLU bias (mean) | erased: would have zeroed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in entry["slots"]:
        dead = (
            "-"
            if r["dead_fraction"] is None or r["channels"] is None
            else f"{round(r['dead_fraction'] * r['channels'])}/{r['channels']}"
        )
        bias = "-" if r["frelu_bias_mean"] is None else f"{r['frelu_bias_mean']:+.3f}"
        module = "-" if r["module"] is None else r["module"]
        if r["erased"]:
            cells = (f"{r['kind']} (erased)", "-", "-", bias, _percent(r["zero_fraction"]))
        else:
            cells = (r["kind"], _percent(r["zero_fraction"]), dead, bias, "-")
        lines.append(f"| {module} | {r['slot']} | " + " | ".join(map(str, cells)) + " |")
    return [*lines, ""]
