"""A publication written whole, then moved in: what ``kzoo publish`` writes (the weights
file, the SavedModel version and its ONNX/LiteRT companions, the record, the tables) is
first written under temporary names in the folders it goes to, so that moving it in is a
rename on one file system. Only when all of it is written are the versions renamed into
place, then the weights, the tables and, last, the record (``pretrained.json``), which
is what makes the tag published. A publication that fails or is killed before that
leaves nothing a reader sees, and the next one removes the temporaries of a killed one
(``kzoo.atomic.remove_stale``; a live one's are never touched).
"""

import json
import os
import shutil

from kzoo import atomic
from kzoo.models import pretrained
from kzoo.serving import card_stats, versions_dir
from kzoo.serving.card import CARD_JSON, portable_path, write_card
from kzoo.serving.manifest import PACKAGE_MODE
from kzoo.serving.publish_tables import COMPANIONS, newest, serving_name, tables


class Staging:
    """One publication's temporaries in ``weights_dir`` and ``saved_models`` (either None:
    nothing goes there), moved in by ``commit``; whatever is not moved in is removed when
    the ``with`` block ends, with the folders it made for them."""

    def __init__(self, weights_dir, saved_models):
        self.weights_dir, self.saved_models = weights_dir, saved_models
        self.made = []  # folders made for this publication, deepest first
        self.files = []  # (temporary, destination), in the order they are moved in
        self.versions = {}  # {model directory: the version's staged folder}
        self.area = None
        self.moved = False

    def __enter__(self):
        try:
            for folder in (self.weights_dir, self.saved_models):
                if folder is not None:
                    self.made[:0] = versions_dir.make_dirs(folder)
                    atomic.remove_stale(folder)  # what killed publications left
            if self.saved_models is not None:
                self.area = atomic.temporary_dir(self.saved_models)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.area is not None:
            shutil.rmtree(self.area, ignore_errors=True)
        for tmp, _ in self.files:
            if os.path.exists(tmp):
                os.remove(tmp)
        if not self.moved:
            versions_dir.remove_dirs(self.made)

    def _file(self, folder, destination, suffix=""):
        tmp = atomic.temporary_file(folder, suffix)
        self.files.append((tmp, destination))
        return tmp

    def weights(self, model, tag):
        """``model``'s weights (no optimiser state), staged as ``<tag>-<sha256[:8]>.weights.h5``
        in ``weights_dir``: (file name, sha256). A file is never rewritten under its name
        with other contents: the name holds its checksum."""
        tmp = self._file(self.weights_dir, None, ".weights.h5")
        model.save_weights(tmp, overwrite=True)
        os.chmod(tmp, PACKAGE_MODE)
        digest = pretrained.sha256(tmp)
        name = f"{tag}-{digest[:8]}.weights.h5"
        self.files[-1] = (tmp, os.path.join(self.weights_dir, name))
        return name, digest

    def text(self, folder, name, text, mode=None):
        """A text file ``folder/name`` staged whole."""
        tmp = self._file(folder, os.path.join(folder, name))
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)

    def exports(self, model, record, card_record, data_dir, companions, say, stats_data_dir=None):
        """The tag's SavedModel and, with ``companions``, its ONNX/LiteRT, staged as the next
        versions of their model directories under ``saved_models``; their cards state
        ``card_record`` and name the paths they will have once moved in. The SavedModel's
        card carries the tag's activation statistics on the first test images (measured
        on ``stats_data_dir``'s copy of the dataset, default ``data_dir``'s), their full
        table beside it (kzoo.serving.card_stats)."""
        name = serving_name(record.tag)
        card_record = {**card_record, "tta": None, "pretrained_tag": record.tag}
        table = card_stats.measure(model, record, stats_data_dir or data_dir)
        saved_model, final = self._export(
            model, "", name, dataset=record.dataset, record=card_record, data_dir=data_dir
        )
        for file, text in card_stats.files(table, record).items():
            with open(os.path.join(saved_model, file), "w", encoding="utf-8") as f:
                f.write(text)
        entry = card_stats.card_entry(table, record)
        self._relocate(saved_model, final, card_record, **{card_stats.KEY: entry})
        say(f"{record.tag}: exported {final}")
        say(f"{record.tag}: activation statistics: {entry['summary_line']}")
        for folder, fmt, quantize in COMPANIONS if companions else ():
            staged, target = self._export(
                saved_model, folder, name, format=fmt, quantize=quantize, data_dir=data_dir
            )
            self._relocate(staged, target, card_record, converted_from=portable_path(final, target))
            say(f"{record.tag}: exported {target}")

    def _export(self, source, folder, name, **options):
        """(staged version folder, its destination): the next version of
        ``saved_models/folder/name``, exported into the staging area."""
        from kzoo.serving.export import export

        model_dir = (
            os.path.join(self.saved_models, folder, name) if folder else os.path.join(self.saved_models, name)
        )
        present = newest(model_dir)
        version = (present[0] if present else 0) + 1
        base = os.path.join(self.area, folder) if folder else self.area
        os.makedirs(base, exist_ok=True)
        result = export(source, base, name, version=version, **options)
        self.versions[model_dir] = result.path
        return result.path, os.path.join(model_dir, str(version))

    @staticmethod
    def _relocate(folder, target, card_record, **paths):
        """The card of the version staged in ``folder`` with its paths (``run_dir``,
        ``converted_from``) as they read from its destination ``target``, not from the
        staging area (a companion's card would otherwise hold its SavedModel's run_dir,
        relative to another folder), and any other entry given (the activation statistics)."""
        if "source" in card_record:  # the run directory, as a path
            paths["run_dir"] = portable_path(card_record["source"], target)
        if not paths:
            return
        with open(os.path.join(folder, CARD_JSON), encoding="utf-8") as f:
            card = json.load(f)
        write_card(folder, {**card, **paths})

    def tables(self, records):
        """``results.csv`` and ``README.md`` as they will be once the staged versions are in."""
        for name, text in tables(self.saved_models, records, self.versions).items():
            self.text(self.saved_models, name, text)

    def commit(self):
        """Move everything in: the versions (never over an existing one), then the files
        in the order they were staged. A version that cannot go in (another export took
        its number meanwhile) stops the publication with the versions already moved taken
        out again and nothing else changed."""
        placed = []
        try:
            for model_dir, staged in self.versions.items():
                self.made[:0] = versions_dir.make_dirs(model_dir)
                target = os.path.join(model_dir, os.path.basename(staged))
                versions_dir.rename_noreplace(staged, target)
                placed.append(target)
        except BaseException as err:
            for target in placed:
                shutil.rmtree(target, ignore_errors=True)
            if isinstance(err, FileExistsError):
                raise ValueError(
                    f"{err.filename!r} appeared while publishing (another export took that version); "
                    "nothing was published: run the same command again"
                ) from None
            raise
        self.moved = True
        for tmp, destination in self.files:
            os.replace(tmp, destination)
