"""The weights manifest, ``pretrained.json``, as ``kzoo publish`` writes it: a tag already
recorded is refused unless replaced (the error says what the new runs change), the
records are read again just before the move so that those another publication added
meanwhile stay, the text is sorted by tag and has the package's file mode, and a replaced
tag's old weights file goes once the new record is in. Reading the records back is
kzoo.models.pretrained_records' (Keras only: the builders load weights by them).
"""

import contextlib
import json
import os

from kzoo import atomic
from kzoo.models import pretrained
from kzoo.models.pretrained_records import MANIFEST

PACKAGE_MODE = 0o644  # the weights and records ship in the package, read by every user
# What the runs say about the weights, compared with the record they would replace.
_COMPARED = ("options", "dataset", "protocol", "epochs", "precision", "seeds")


def manifest_text(records):
    """``pretrained.json``'s text: the records (``{tag: Pretrained}``), sorted by tag."""
    return json.dumps([records[t].to_dict() for t in sorted(records)], indent=1) + "\n"


def write_manifest(directory, records):
    """``pretrained.json`` in ``directory``: the records, sorted by tag; written whole."""
    path = os.path.join(directory, MANIFEST)
    atomic.write_text(path, manifest_text(records))
    os.chmod(path, PACKAGE_MODE)


def records_before(weights_dir, tag, found, replace):
    """``weights_dir``'s records by tag (a damaged manifest refused, naming it), once
    ``tag`` is checked free to publish from the runs ``found``: see ``_check_replace``."""
    records = pretrained.read_manifest(weights_dir)
    _check_replace(records.get(tag), found, replace, os.path.join(weights_dir, MANIFEST))
    return records


def merged(weights_dir, record, found, replace):
    """(the record ``record.tag`` had, or None; the records with ``record`` as its tag's),
    from the manifest read again now: the records another publication added meanwhile stay."""
    before = records_before(weights_dir, record.tag, found, replace)
    return before.get(record.tag), {**before, record.tag: record}


def stage(staging, weights_dir, records):
    """The manifest of ``records``, staged in ``weights_dir`` (kzoo.serving.publish_staging)."""
    staging.text(weights_dir, MANIFEST, manifest_text(records), PACKAGE_MODE)


def retire(weights_dir, replaced, record, say):
    """Once ``record`` is in: ``replaced``'s weights file removed when the new record no
    longer names it, and what changed said."""
    if replaced.file != record.file:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(weights_dir, replaced.file))
    say(f"{record.tag}: replaced its record: {_differences(_facts(replaced), _facts(record)) or 'no change'}")


def _facts(record):
    """What ``record`` says about its weights, to compare with another's."""
    return {
        "options": record.options,
        "dataset": record.dataset,
        "protocol": record.protocol,
        "epochs": record.epochs,
        "precision": record.source.get("precision"),
        "seeds": sorted(s.get("seed") for s in record.seeds),
        "top1": record.top1,
        "file": record.file,
    }


def _differences(old, new):
    """ "key old -> new" for each fact that differs, in a line."""
    return "; ".join(f"{k} {old.get(k)!r} -> {new[k]!r}" for k in new if old.get(k) != new[k])


def _check_replace(existing, found, replace, manifest):
    """Refuse to publish a tag ``manifest`` already records unless ``replace``, saying
    what the new runs (``found``: (run, config, metrics) of each seed) change."""
    if existing is None or replace:
        return
    first = found[0][2]
    runs = {
        "options": first["model_kwargs"],
        "dataset": first["dataset"],
        "protocol": first["protocol"],
        "epochs": first["epochs"],
        "precision": first.get("precision"),
        "seeds": sorted(m["seed"] for _, _, m in found),
    }
    changes = _differences(_facts(existing), runs) or (
        f"nothing the runs record ({', '.join(_COMPARED)} are the same); the weights and scores may differ"
    )
    raise ValueError(
        f"`tag`={existing.tag!r} is already published in {manifest} (top-1 {existing.top1:.4f}, "
        f"{existing.file}); publishing it again replaces its record and removes that file. What changes: "
        f"{changes}. Pass replace=True (kzoo publish --replace) to replace it, or publish another tag"
    )
