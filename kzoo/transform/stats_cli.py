"""``kzoo stats SOURCE``: ``kzoo.activation_stats`` of a trained model on the first
images of its dataset's test split, preprocessed as the model was evaluated, written as
``activation_stats.csv``/``.json``/``.png``.

A source is what says what the model was trained on: a run directory (its last model, its
config's dataset and builder), a published tag (its weights and record) or a ``.keras``
file (the run it lies in, else ``--dataset``). A model erased by its builder (``erase``,
``proportion`` in the run's or tag's options) is measured against the same builder
without the erasure, so its erased ReLUs have rows saying what they would have zeroed.
"""

import dataclasses
import os

from kzoo import atomic, checks
from kzoo.training.model import build_original
from kzoo.training.run_dir import CONFIG, LAST, RunDir
from kzoo.transform.stats_measure import DEFAULT_IMAGES, FILES, measure, texts

_EXPECTED = "a run directory, a published tag (kzoo list --pretrained) or a .keras file"


@dataclasses.dataclass
class Measured:
    """What ``stats`` returns: the table, where it was written and what it measured."""

    stats: object
    files: list
    dataset: str
    source: str


def add_parser(sub):
    st = sub.add_parser(
        "stats",
        help="what each activation of a trained model does on the first test images (kzoo.activation_stats)",
    )
    st.add_argument("source", help=_EXPECTED)
    st.add_argument(
        "--dataset", help="a .keras file's dataset (default: the run's or tag's; another one is refused)"
    )
    st.add_argument(
        "--images", type=int, default=DEFAULT_IMAGES, help=f"test images measured (default {DEFAULT_IMAGES})"
    )
    st.add_argument("--batch-size", type=int, default=100)
    st.add_argument("--data-dir", help="where the dataset is (default: the run's)")
    st.add_argument("--out", help="output folder (default: the run directory, else ./stats-NAME)")
    st.add_argument(
        "--original",
        help="a .keras source's network before erasure (a .keras file): its erased ReLUs get rows",
    )
    st.add_argument("--quiet", action="store_true", help="no progress bar")


def run_command(args):
    result = stats(
        args.source,
        args.dataset,
        images=args.images,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        out=args.out,
        original=args.original,
        verbose=0 if args.quiet else 1,
    )
    print(result.stats)
    print(f"{result.source} on {result.dataset}: wrote {', '.join(result.files)}")
    return 0


def _same_dataset(given, trained, what):
    from kzoo import data

    if given is not None and data.dataset_info(given).name != data.dataset_info(trained).name:
        raise ValueError(
            f"`dataset`={given!r}: {what} was trained on {trained!r}, and is measured on it; leave `dataset` out"
        )
    return trained


def _run_source(folder, dataset, data_dir):
    run = RunDir(folder)
    if not os.path.exists(run.config):
        raise ValueError(f"`source`={folder!r} is a folder without a run's {CONFIG}; expected {_EXPECTED}")
    config = run.read_config("train the run again, or give its .keras file with `dataset`")
    last = run.last
    if not os.path.isfile(last):
        raise FileNotFoundError(f"`source`={folder!r}: the run has no {LAST} yet (no epoch is finished)")
    if not isinstance(config.get("dataset"), str) or not isinstance(config.get("model_kwargs", {}), dict):
        raise ValueError(
            f"the run's config {run.config!r} names no dataset or builder options; train it again"
        )
    dataset = _same_dataset(dataset, config["dataset"], f"the run in {folder!r}")
    return {
        "model": lambda: _load(last),
        "dataset": dataset,
        "data_dir": data_dir or config.get("data_dir"),
        "original": lambda info: build_original(config.get("model"), config.get("model_kwargs") or {}, info),
        "out": folder,
    }


def _load(path, arg="source"):
    from kzoo.serving.source import load_keras

    return load_keras(path, arg)


def _tag_source(tag, dataset, data_dir):
    from kzoo.models import pretrained
    from kzoo.models.registry import create_model

    record = pretrained.get(tag)
    dataset = _same_dataset(dataset, record.dataset, f"the tag {record.tag!r}")
    return {
        "model": lambda: create_model(record.tag, pretrained=True),
        "dataset": dataset,
        "data_dir": data_dir,
        "original": lambda info: build_original(record.tag, record.options, info),
        "out": f"stats-{record.tag}",
    }


def _keras_source(path, dataset, data_dir, original):
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(folder, CONFIG)) and original is None:  # a run's model: its record
        found = _run_source(folder, dataset, data_dir)
        found["model"] = lambda: _load(path)
        found["out"] = f"stats-{os.path.basename(path)[: -len('.keras')]}"
        return found
    if dataset is None:
        raise ValueError(f"`dataset` is needed for {path!r}, a .keras file outside a run directory")
    return {
        "model": lambda: _load(path),
        "dataset": dataset,
        "data_dir": data_dir,
        "original": lambda info: None if original is None else _load(original, "original"),
        "out": f"stats-{os.path.basename(path)[: -len('.keras')]}",
    }


def _resolve(source, dataset, data_dir, original):
    """What ``source`` is, refused before anything loads when it is none of them."""
    from kzoo.models import pretrained
    from kzoo.models.registry import model_info

    source = checks.path(source, "source")
    is_keras = source.endswith(".keras")
    if original is not None:
        original = checks.path(original, "original")
        if not is_keras:
            raise ValueError(
                f"`original` is for a .keras source; the original of {source!r} is its builder without "
                "the erasure, from its record: leave `original` out"
            )
        if not original.endswith(".keras") or not os.path.isfile(original):
            raise FileNotFoundError(
                f"`original`={original!r} must be a .keras file, the network before erasure"
            )
    if os.path.isdir(source):
        return _run_source(source, dataset, data_dir)
    if is_keras:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"`source`={source!r} does not exist")
        return _keras_source(source, dataset, data_dir, original)
    if os.path.exists(source):
        raise ValueError(f"`source`={source!r} is a file that is not a .keras model; expected {_EXPECTED}")
    if pretrained.is_tag(source):
        return _tag_source(source, dataset, data_dir)
    try:
        model_info(source)
    except (TypeError, ValueError):
        raise ValueError(
            f"`source`={source!r} does not exist; expected {_EXPECTED}. {pretrained.listing()}"
        ) from None
    tags = pretrained.list_tags((source,))
    raise ValueError(
        f"`source`={source!r} names an architecture, which would be measured untrained; give "
        + (f"one of its published tags ({', '.join(tags)})" if tags else "a run directory or a .keras file")
    )


def stats(
    source,
    dataset=None,
    *,
    images=DEFAULT_IMAGES,
    batch_size=100,
    data_dir=None,
    out=None,
    original=None,
    verbose=1,
):
    """``kzoo stats``: measure ``source``'s activations on the first ``images`` test images
    of its dataset and write the table's CSV, JSON and plot into ``out`` (default: a run
    directory itself, else ``./stats-NAME``). Every argument is checked before anything
    loads; returns a ``Measured``."""
    from kzoo import data
    from kzoo.training.model import check_model_fits

    images = checks.integer(images, "images", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    verbose = checks.verbose(verbose)
    data_dir = None if data_dir is None else checks.existing_dir(data_dir, "data_dir")
    found = _resolve(source, dataset, data_dir, original)
    info = data.dataset_info(found["dataset"])
    out = checks.writable_dir(found["out"] if out is None else checks.path(out, "out"), "out")
    model = found["model"]()
    check_model_fits(model, info, "source")
    table = measure(
        model,
        info.name,
        found["original"](info),
        data_dir=found["data_dir"],
        images=images,
        batch_size=batch_size,
        verbose=verbose,
    )
    os.makedirs(out, exist_ok=True)
    atomic.remove_stale(out)  # what a killed kzoo stats left
    paths = [os.path.join(out, name) for name in FILES]
    for name, text in texts(table, os.fspath(source), info.name).items():
        atomic.write_text(os.path.join(out, name), text)
    table.plot(
        paths[2], title=f"{os.path.basename(os.fspath(source))} on {info.name}: {table.images} test images"
    )
    return Measured(table, paths, info.name, os.fspath(source))
