"""kzoo.atomic: a killed writer's temporaries are removed by the next run in the folder,
a live writer's never; a failed write leaves nothing."""

import os
import subprocess
import sys
import time

import pytest

from kzoo import atomic


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _make(path, folder, age_s=0):
    if folder:
        os.makedirs(path)
        open(os.path.join(path, "model.weights.h5"), "wb").close()
    else:
        open(path, "wb").close()
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))


@pytest.mark.parametrize("folder", [False, True], ids=["file", "folder"])
def test_remove_stale_removes_what_killed_writers_left_and_nothing_else(tmp_path, folder):
    host, day = atomic.host(), atomic.STALE_AGE_S + 60
    removed = {
        f".tmp-{host}-{_dead_pid()}-abc123.keras": 0,  # this host's, its process gone
        f".tmp-{host}-{_dead_pid()}-abc124": 0,
        ".tmp-otherhost_ns1-12-xyz.weights.h5": day,  # another host's, a day old
        ".tmp-k3j2_x9.keras": day,  # an older kzoo's nameless temporary, a day old
        ".tmp-3-otherhost-12-x": day,  # an export's version folder, another host's, a day old
        f".tmp-4-{host}-{_dead_pid()}-x": 0,  # an export's, this host's, its process gone
        ".tmp-2-oldstyle": day,  # an older kzoo's export folder
    }
    kept = {
        f".tmp-{host}-{os.getpid()}-live01.keras": 0,  # a live writer's (this one)
        ".tmp-otherhost_ns1-12-fresh.keras": 0,  # another host's, recent: it may be writing
        ".tmp-k3j2_x8.keras": 0,  # nameless and recent
        "last.keras": day,  # not a temporary
        ".best-epoch-0003.keras": day,  # not kzoo.atomic's
        ".tmp-3-otherhost-12-fresh": 0,  # an export's version folder, another host's, recent
    }
    for name, age in {**removed, **kept}.items():
        _make(str(tmp_path / name), folder, age)
    atomic.remove_stale(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    atomic.remove_stale(str(tmp_path / "missing"))  # a folder not made yet: nothing to do


def test_a_failed_write_leaves_nothing_and_the_old_file(tmp_path):
    path = str(tmp_path / "record.json")
    atomic.write_text(path, "old")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_file(path, broken)
    assert os.listdir(tmp_path) == ["record.json"] and open(path).read() == "old"


def test_temporaries_say_whose_they_are(tmp_path):
    tmp = atomic.temporary_file(str(tmp_path), ".keras")
    name = os.path.basename(tmp)
    assert name.startswith(atomic.owner_prefix()) and name.endswith(".keras")
    atomic.remove_stale(str(tmp_path))
    assert os.path.exists(tmp)  # ours, and we are alive
