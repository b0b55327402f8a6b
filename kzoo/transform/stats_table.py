"""The table ``kzoo.activation_stats`` returns: its rows as data (a dict, CSV, JSON), as
text, and as a plot over the modules' depth."""

import csv
import io
import json
import math
import os

from kzoo import atomic, checks

COLUMNS = (
    "module",
    "slot",
    "layer",
    "kind",
    "fused",
    "erased",
    "channels",
    "zero_fraction",
    "dead_fraction",
    "in_mean",
    "in_std",
    "out_mean",
    "out_std",
    "frelu_bias",
    "note",
)


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """A row value as JSON takes it: NaN (not measured) as null."""
    return None if _missing(value) else value


def _bias_mean(value):
    if _missing(value):
        return math.nan
    return sum(value) / len(value) if isinstance(value, list) else value


class ActivationStats:
    """One row per activation (``rows``: dicts of ``COLUMNS``; ``module`` None for one
    outside every module), measured on ``images`` images of ``model``."""

    NUMBERS = ("zero_fraction", "dead_fraction", "in_mean", "in_std", "out_mean", "out_std")

    def __init__(self, model, images, rows):
        self.model = model
        self.images = images
        self.rows = [{c: row.get(c) for c in COLUMNS} for row in rows]

    def to_dict(self):
        return {
            "model": self.model,
            "images": self.images,
            "rows": [{k: _plain(v) for k, v in row.items()} for row in self.rows],
        }

    def to_json(self):
        return json.dumps(self.to_dict(), indent=1)

    def to_csv(self):
        """CSV text: a header of ``COLUMNS``, then the rows; not measured is empty, a
        per-channel FReLU bias a JSON list."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.rows:
            writer.writerow(
                "" if _missing(v) else json.dumps(v) if isinstance(v, list) else v for v in row.values()
            )
        return out.getvalue()

    def __str__(self):
        def num(value, pattern="{:.3f}"):
            return "-" if _missing(value) else pattern.format(value)

        lines = [
            f"{self.model}: {len(self.rows)} activation(s) on {self.images} image(s)",
            f"{'module':>6} {'slot':<10} {'kind':<14} {'zero':>6} {'dead':>6} {'in mean':>8} {'in std':>8} "
            f"{'out mean':>8} {'out std':>8} {'bias':>7}  layer",
        ]
        for r in self.rows:
            kind = r["kind"] + (" (erased)" if r["erased"] else "")
            lines.append(
                f"{'-' if r['module'] is None else r['module']:>6} {r['slot']:<10} {kind:<14} "
                f"{num(r['zero_fraction'], '{:.1%}'):>6} {num(r['dead_fraction'], '{:.1%}'):>6} "
                f"{num(r['in_mean']):>8} {num(r['in_std']):>8} {num(r['out_mean']):>8} {num(r['out_std']):>8} "
                f"{num(_bias_mean(r['frelu_bias'])):>7}  {r['layer']}"
                + (f"  [{r['note']}]" if r["note"] else "")
            )
        return "\n".join(lines)

    def plot(self, path=None, title=None):
        """The zero fraction and dead fraction of each slot over the module index (erased
        activations hollow: what they would have zeroed), and FReLU's bias where there is
        one; activations outside modules are left out. Returns the matplotlib Figure, or
        writes it to ``path`` (PNG, atomically: a killed plot's temporary goes at the next
        write into that folder) and returns ``path``."""
        if path is not None:  # checked before anything is drawn
            path = os.path.abspath(checks.path(path, "path"))
            if os.path.isdir(path):
                raise ValueError(f"`path`={path!r} is a directory; give the file to write, such as stats.png")
            checks.writable_dir(os.path.dirname(path), "path's folder")
        if title is not None and not isinstance(title, str):
            raise TypeError(f"`title` must be a string or None, got {title!r}")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in self.rows if isinstance(r["module"], int)]
        slots = list(dict.fromkeys(r["slot"] for r in rows))
        panels = [("zero_fraction", "zero fraction"), ("dead_fraction", "dead units")]
        if any(not _missing(r["frelu_bias"]) for r in rows):
            panels.append(("frelu_bias", "FReLU bias (mean per layer)"))
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        for ax, (key, label) in zip(axes[0], panels):
            for n, slot in enumerate(slots):
                color = f"C{n % 10}"
                for erased in (False, True):
                    points = [
                        (r["module"], _bias_mean(r[key]) if key == "frelu_bias" else r[key])
                        for r in rows
                        if r["slot"] == slot and bool(r["erased"]) == erased
                    ]
                    points = [(x, y) for x, y in points if not _missing(y)]
                    if not points:
                        continue
                    xs, ys = zip(*points)
                    ax.plot(
                        xs,
                        ys,
                        marker="o",
                        linestyle="none" if erased else "-",
                        color=color,
                        markerfacecolor="none" if erased else color,
                        label=f"{slot} (erased)" if erased else slot,
                    )
            ax.set(xlabel="module", ylabel=label, title=label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        fig.suptitle(title or f"{self.model}: activations on {self.images} images")
        fig.tight_layout()
        if path is None:
            return fig
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            atomic.remove_stale(os.path.dirname(path))  # what a killed plot left
            atomic.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
        finally:
            plt.close(fig)
        return path
