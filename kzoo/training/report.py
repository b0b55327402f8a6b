"""What a run draws and tabulates: its training curves, figures written atomically, and
Markdown tables (the machine it ran on is kzoo.training.machine's)."""

from kzoo import atomic


def plot_curves(rows, path, title=""):
    """Loss and top-1 accuracy per epoch (training, validation, and test when recorded), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation"), ("test_loss", "test")):
        if rows and key in rows[0]:
            ax_loss.plot(epochs, [float(r[key]) for r in rows], marker=".", label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation"), ("test_accuracy", "test")):
        if rows and key in rows[0]:
            ax_acc.plot(epochs, [float(r[key]) for r in rows], marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def save_figure(fig, path, dpi=90):
    """Write a matplotlib figure to ``path`` atomically (a temporary file, then a rename)
    and close it. Returns ``path``."""
    import matplotlib.pyplot as plt

    try:
        atomic.write_file(path, lambda tmp: fig.savefig(tmp, dpi=dpi), suffix=".png")
    finally:
        plt.close(fig)
    return path


def markdown_table(header, rows):
    """A GitHub Markdown table: a header row, then one row per sequence of cells."""
    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
