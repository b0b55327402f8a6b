"""Pretrained weights by name: timm-style tags (``resnet20.fashion_mnist_eraserelu``) for
the weights kzoo trained, and the checksum-verified lookup that loads them.

A tag's record (``Pretrained``) says what the weights are for (architecture, builder
options, input shape, classes, dataset) and how they were made and scored. The records
are ``kzoo/weights/pretrained.json``, written by ``kzoo publish``; the weights files
(``<tag>-<sha256[:8]>.weights.h5``) are looked up in the package, then in the cache (``$KZOO_HOME/weights``,
else ``~/.keras/models``), then downloaded from ``$KZOO_WEIGHTS_URL`` (else
``DEFAULT_BASE_URL``). A file whose sha256 differs from the record's is refused.

A builder's ``weights`` takes a dataset name or a tag (``weights="fashion_mnist"``), as
keras.applications takes "imagenet": the tag whose options match the call is loaded, and a
call no tag matches is refused with the list of tags that exist.
"""

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import warnings

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
MANIFEST = "pretrained.json"
DEFAULT_BASE_URL = "https://github.com/kzoo-dev/kzoo/releases/download/weights-v1/"
# The keras.applications arguments: everything else in a builder's signature is an option
# (depth, placement) that the weights depend on.
KERAS_ARGS = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
)


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One set of published weights: what they fit, how they were made, how they score.

    ``top1``/``top5`` are the test scores of these weights as loaded (no test-time
    augmentation; ``top1_tta`` is the run's own score with it, when it used one);
    ``seeds`` lists every seed's run that was trained for the tag (the shipped one is the
    median); ``source`` says where and when they were trained.
    """

    tag: str
    architecture: str
    dataset: str
    options: dict
    input_shape: tuple
    classes: int
    top1: float
    top5: float
    params: int
    command: str
    protocol: str
    epochs: int
    sha256: str
    file: str
    source: dict
    top1_tta: float | None = None
    seeds: tuple = ()

    @classmethod
    def from_dict(cls, record):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - fields)
        if unknown:
            raise ValueError(f"pretrained record {record.get('tag')!r} has unknown fields {unknown}")
        return cls(
            **{
                **record,
                "input_shape": tuple(record["input_shape"]),
                "seeds": tuple(record.get("seeds", ())),
            }
        )

    def to_dict(self):
        record = dataclasses.asdict(self)
        record["input_shape"] = list(self.input_shape)
        record["seeds"] = list(self.seeds)
        return record


def read_manifest(directory=None):
    """The records in ``directory``'s manifest (default: the package's), by tag; empty
    when it has none."""
    path = os.path.join(directory or PACKAGE_DIR, MANIFEST)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    return {r["tag"]: Pretrained.from_dict(r) for r in records}


_TAGS = None


def _tags():
    global _TAGS
    if _TAGS is None:
        _TAGS = read_manifest()
    return _TAGS


def reload():
    """Read the package's manifest again (after ``kzoo publish`` wrote it)."""
    global _TAGS
    _TAGS = None
    return _tags()


def is_tag(name):
    """Whether ``name`` is written as a tag (``arch.variant``)."""
    return isinstance(name, str) and "." in name and not name.endswith((".h5", ".keras"))


def list_tags(patterns=("*",), architectures=None):
    """Tags matching one of ``patterns`` (by the tag, or by its architecture's name) and,
    when given, whose architecture is in ``architectures``; in the manifest's order."""
    return [
        tag
        for tag, record in _tags().items()
        if any(fnmatch.fnmatchcase(tag, p) or fnmatch.fnmatchcase(record.architecture, p) for p in patterns)
        and (architectures is None or record.architecture in architectures)
    ]


def get(tag):
    """The record of ``tag``, or a ValueError listing the tags that exist."""
    if not isinstance(tag, str):
        raise TypeError(f"a pretrained tag must be a string, got {tag!r}")
    record = _tags().get(tag.lower())
    if record is None:
        raise ValueError(f"Unknown pretrained tag {tag!r}. {listing()}")
    return record


def listing(tags=None):
    tags = list(_tags()) if tags is None else tags
    if not tags:
        return "kzoo has no pretrained weights installed (see kzoo.list_models(pretrained=True))."
    return "Pretrained tags: " + ", ".join(tags) + "."


def names_weights(value):
    """Whether a builder's ``weights`` value names published weights (a dataset or a tag)
    rather than a file: a string without a path separator that is not an existing file."""
    return (
        isinstance(value, str)
        and os.sep not in value
        and "/" not in value
        and not value.endswith((".h5", ".keras"))
        and not os.path.isfile(value)
    )


def _options(signature, arguments):
    """The arguments of a build that are not keras.applications', defaults applied."""
    bound = signature.bind_partial(**arguments)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k not in KERAS_ARGS}


def _canonical(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def match(architecture, signature, arguments):
    """The record that a build of ``architecture`` with ``arguments`` (its builder's
    ``signature``; ``arguments["weights"]`` a dataset name, a tag, or None for any of the
    architecture's tags) asks for, or a ValueError listing the architecture's tags."""
    from kzoo.models.registry import model_info

    wanted = arguments.get("weights")
    info = model_info(architecture)
    own = list_tags(architectures=(info.name,))
    if not own:
        raise ValueError(f"`weights`={wanted!r}: kzoo has no pretrained weights for {info.name}. {listing()}")
    named = [t for t in own if wanted is None or wanted.lower() in (t, _tags()[t].dataset)]
    if not named:
        datasets = sorted({_tags()[t].dataset for t in own})
        raise ValueError(
            f"`weights` must be None, a weights file, a dataset with weights for {info.name} "
            f"({', '.join(datasets)}) or one of its tags; got {arguments['weights']!r}. {listing(own)}"
        )
    options = _canonical(_options(signature, {**info.kwargs, **arguments}))
    for tag in named:
        record = _tags()[tag]
        if _canonical(_options(signature, {**info.kwargs, **record.options})) == options:
            return record
    given = {k: v for k, v in options.items() if k not in info.kwargs}
    raise ValueError(
        f"`weights`={arguments['weights']!r}: no pretrained {info.name} has the options {given}; "
        + "the tags have "
        + "; ".join(f"{t}: {_tags()[t].options or 'the defaults'}" for t in named)
        + ". Pass the options of one of them."
    )


def _check_fit(record, arguments):
    """Refuse ``classes``/``input_shape`` the weights' top does not fit (include_top)."""
    shape = arguments.get("input_shape")
    if not isinstance(shape, (tuple, list)) or not shape:
        shape = None  # the default, or a bad value the builder refuses by name
    if not arguments.get("include_top", True):
        if shape is not None and tuple(shape)[-1] != record.input_shape[-1]:
            raise ValueError(
                f"`input_shape`={tuple(shape)} has {tuple(shape)[-1]} channels; the weights of "
                f"{record.tag} take {record.input_shape[-1]} (input_shape {record.input_shape})"
            )
        return
    if arguments.get("classes") != record.classes:
        raise ValueError(
            f"`classes`={arguments.get('classes')!r} does not fit the weights of {record.tag} "
            f"({record.classes} classes); pass classes={record.classes}, or include_top=False for "
            "the backbone only"
        )
    if shape is not None and tuple(shape) != record.input_shape:
        raise ValueError(
            f"`input_shape`={tuple(shape)} does not fit the weights of {record.tag} "
            f"(input_shape {record.input_shape}); leave it out, or pass include_top=False for the backbone only"
        )


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir():
    """(cache_dir, cache_subdir) of downloaded weights, as keras.utils.get_file takes them."""
    home = os.environ.get("KZOO_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home)), "weights"
    return os.path.join(os.path.expanduser("~"), ".keras"), "models"


def base_url():
    return os.environ.get("KZOO_WEIGHTS_URL") or DEFAULT_BASE_URL


def weights_file(record, package_dir=None):
    """A local copy of ``record``'s weights whose sha256 is the record's: the package's,
    the cache's, or a fresh download into the cache. A file that does not match is never
    returned; nothing found is a FileNotFoundError saying where kzoo looked."""
    import keras

    looked = []
    package = os.path.join(package_dir or PACKAGE_DIR, record.file)
    if os.path.exists(package):
        got = sha256(package)
        if got != record.sha256:
            raise ValueError(
                f"the weights file {package!r} of {record.tag} has sha256 {got}, not the "
                f"published {record.sha256}: it was changed after publication and is refused "
                "(reinstall kzoo)"
            )
        return package
    looked.append(f"{package} (not there)")
    directory, subdir = cache_dir()
    cached = os.path.join(directory, subdir, record.file)
    if os.path.exists(cached):
        if sha256(cached) == record.sha256:
            return cached
        looked.append(f"{cached} (wrong sha256, refused; downloading again)")
    else:
        looked.append(f"{cached} (not there)")
    url = base_url().rstrip("/") + "/" + record.file
    # keras falls back to /tmp/.keras for a cache folder that does not exist yet.
    os.makedirs(os.path.join(directory, subdir), exist_ok=True)
    try:
        path = keras.utils.get_file(
            record.file,
            url,
            file_hash=record.sha256,
            hash_algorithm="sha256",
            cache_dir=directory,
            cache_subdir=subdir,
        )
    except ValueError as err:  # keras' checksum refusal; it leaves the file in place
        _remove_unverified(cached, record)
        raise ValueError(
            f"the download of {url} for {record.tag} does not have the published sha256 "
            f"{record.sha256}: refused, and not kept ({err})"
        ) from err
    except Exception as err:  # urllib's errors, which keras re-raises as Exception
        _remove_unverified(cached, record)
        raise FileNotFoundError(
            f"no weights file for {record.tag}: kzoo looked in "
            + "; ".join(looked)
            + f"; and downloading {url} failed ({err}). Set $KZOO_WEIGHTS_URL to where the "
            "weights are, or put the file in the cache"
        ) from err
    return path  # get_file checked file_hash (a mismatch is the ValueError above)


def _remove_unverified(path, record):
    """Remove ``path`` unless it is ``record``'s verified file: a refused file never stays
    where the next lookup would find it."""
    if os.path.exists(path) and sha256(path) != record.sha256:
        os.remove(path)


def build(architecture, signature, call, arguments):
    """Build ``architecture`` by ``call(**arguments)`` (``signature``: the builder's) with
    the published weights that ``arguments["weights"]`` names loaded into it: all of them,
    or the backbone's only when ``include_top=False`` (any input size, the weights' channels)."""
    bound = signature.bind_partial(**arguments)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    record = match(architecture, signature, arguments)
    _check_fit(record, arguments)
    path = weights_file(record)
    include_top = arguments.get("include_top", True)
    arguments = {**arguments, "weights": None}
    if arguments.get("input_shape") is None and arguments.get("input_tensor") is None:
        arguments["input_shape"] = record.input_shape if include_top else (None, None, record.input_shape[-1])
    model = call(**arguments)
    if include_top:
        _load(model, path, record)
        return model
    full = call(
        **{
            **arguments,
            "include_top": True,
            "pooling": None,
            "input_shape": record.input_shape,
            "classes": record.classes,
            "input_tensor": None,
        }
    )
    _load(full, path, record)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    return model


@contextlib.contextmanager
def quiet_weight_loading():
    """Keras 3.15 warns "Skipping nested container at '_operations_by_depth/...'" for a
    functional model's internal lists, which hold no weights of their own; every weight
    still loads (tests/test_pretrained.py compares them all), so the warning only misleads."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Skipping nested container at '_operations_by_depth")
        yield


def _load(model, path, record):
    try:
        with quiet_weight_loading():
            model.load_weights(path)
    except Exception as err:  # keras raises many types for a mismatched file
        raise ValueError(
            f"the weights of {record.tag} ({path}) do not load into {model.name}: {err}"
        ) from err
