"""The records of published weights (``pretrained.json``): one ``Pretrained`` per tag,
read back with every field checked, so a damaged file fails naming itself, the tag and
the field rather than with a bare json or dataclass error.

``kzoo publish`` writes the file whole (kzoo.serving.manifest); a record that does
not read back was changed since, by hand or by another program.
"""

import dataclasses
import json
import os
import re

from kzoo import checks

MANIFEST = "pretrained.json"
TAG = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
WEIGHTS_SUFFIX = ".weights.h5"
_FIX = "it was changed after kzoo publish wrote it: restore it (reinstall kzoo for the package's own) or publish again"


class DamagedManifest(ValueError):
    """A ``pretrained.json`` (or one record of it) that kzoo cannot read back."""


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
    def from_dict(cls, record, where="a pretrained record"):
        """The record of the JSON object ``record``, every field checked; ``where`` (the
        manifest's path) is named in the error of a record that is not one."""
        if not isinstance(record, dict):
            raise DamagedManifest(f"{where}: a record must be a JSON object, got {record!r:.80}; {_FIX}")
        tag = record.get("tag")
        about = f"{where}: the record of {tag!r}" if isinstance(tag, str) else f"{where}: a record"
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - set(fields))
        missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in record]
        if unknown or missing:
            what = "; ".join(
                part
                for part in (
                    f"unknown fields {unknown}" if unknown else "",
                    f"no {', '.join(missing)}" if missing else "",
                )
                if part
            )
            raise DamagedManifest(f"{about} has {what}; {_FIX}")
        try:
            values = _checked(record)
        except (TypeError, ValueError) as err:
            raise DamagedManifest(f"{about} is damaged: {err}; {_FIX}") from None
        return cls(**values)

    def to_dict(self):
        record = dataclasses.asdict(self)
        record["input_shape"] = list(self.input_shape)
        record["seeds"] = list(self.seeds)
        return record


def _checked(record):
    """The record's fields as ``Pretrained`` holds them, each checked (the errors name the field)."""
    values = dict(record)
    for name in ("tag", "architecture", "dataset", "command", "protocol", "sha256", "file"):
        if not isinstance(values[name], str) or not values[name]:
            raise TypeError(f"`{name}` must be a non-empty string, got {values[name]!r}")
    tag = values["tag"]
    if not TAG.match(tag):
        raise ValueError(f"`tag` must be architecture.variant in lower case, got {tag!r}")
    architecture, variant = tag.split(".")
    if values["architecture"] != architecture:
        raise ValueError(
            f"`architecture` must be the tag's, {architecture!r}; got {values['architecture']!r}"
        )
    dataset = values["dataset"]
    if variant != dataset and not variant.startswith(dataset + "_"):
        raise ValueError(f"`dataset` must begin the tag's variant {variant!r}, got {dataset!r}")
    if not SHA256.match(values["sha256"]):
        raise ValueError(f"`sha256` must be 64 lower-case hex digits, got {values['sha256']!r}")
    file = values["file"]
    if (
        os.path.basename(file) != file
        or "/" in file
        or file.startswith(".")
        or not file.endswith(WEIGHTS_SUFFIX)
    ):
        raise ValueError(f"`file` must be a plain file name ending in {WEIGHTS_SUFFIX}, got {file!r}")
    for name in ("options", "source"):
        if not isinstance(values[name], dict) or not all(isinstance(k, str) for k in values[name]):
            raise TypeError(f"`{name}` must be a JSON object, got {values[name]!r}")
    shape = values["input_shape"]
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ValueError(f"`input_shape` must be [height, width, channels], got {shape!r}")
    values["input_shape"] = tuple(checks.integer(d, "input_shape", minimum=1) for d in shape)
    values["classes"] = checks.integer(values["classes"], "classes", minimum=1)
    values["params"] = checks.integer(values["params"], "params", minimum=0)
    values["epochs"] = checks.integer(values["epochs"], "epochs", minimum=0)
    for name in ("top1", "top5", "top1_tta"):
        checks.number(values.get(name), name, minimum=0, maximum=1, optional=name == "top1_tta")
    seeds = values.get("seeds", ())
    if not isinstance(seeds, (list, tuple)) or not all(isinstance(s, dict) for s in seeds):
        raise TypeError(f"`seeds` must be a list of JSON objects, got {seeds!r}")
    values["seeds"] = tuple(seeds)
    return values


def read_manifest(directory):
    """The records of ``directory``'s manifest, by tag (empty when it has none); a
    ``DamagedManifest`` naming the file, and the tag, when it does not read back."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.lexists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedManifest(f"{path} cannot be read ({type(err).__name__}: {err}); {_FIX}") from None
    if not isinstance(records, list):
        raise DamagedManifest(
            f"{path} is damaged: it must hold a JSON list of records, got a {type(records).__name__}; {_FIX}"
        )
    found = {}
    for record in records:
        record = Pretrained.from_dict(record, path)
        if record.tag in found:
            raise DamagedManifest(f"{path} is damaged: it holds two records of {record.tag!r}; {_FIX}")
        found[record.tag] = record
    return found
