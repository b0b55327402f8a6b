"""Atomic writes, and the temporaries they leave when killed: one owner for both.

A file is written under a temporary name in its own folder and renamed onto its name, so a
reader sees the old file or the new one, never half of one. The temporary's name says
whose it is, ``.tmp-<host>-<pid>-XXXXXXXX<suffix>``, so that the next run in that folder
(``remove_stale``) removes what a killed process left, and never a live writer's: this
host's whose process is gone at once, another host's (a shared disk) or a nameless one
(an older kzoo's) once older than ``STALE_AGE_S``.
"""

import os
import re
import shutil
import socket
import tempfile
import time

STALE_AGE_S = 24 * 3600  # a temporary whose owner cannot be asked is removed after this
PREFIX = ".tmp-"
# ``.tmp-[TAG-]HOST-PID-XXXXXXXX[.suffix]``: TAG a number (an export's version, say).
_OWNED = re.compile(r"\.tmp-(?:\d+-)?([A-Za-z0-9._]+)-(\d+)-[A-Za-z0-9_]+(\.[A-Za-z0-9.]+)?")
_NAMELESS = re.compile(r"\.tmp-(?:\d+-)?[A-Za-z0-9_]+(\.[A-Za-z0-9.]+)?")  # an older kzoo's names


def host():
    """This host (and PID namespace: containers may share a hostname) as a name token."""
    name = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
    try:
        name += f"_ns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        pass
    return name


def alive(pid):
    """Whether process ``pid`` of this host may still be running (True when it cannot be asked)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # another user's, or not a pid we can ask about
        return True
    return True


def owner_prefix(tag=None):
    """The start of a temporary's name made by this process (``tag``: a number that says
    more of it, as an export's version)."""
    return f"{PREFIX}{'' if tag is None else f'{int(tag)}-'}{host()}-{os.getpid()}-"


def _readable(path, mode):
    """Give a new temporary the mode a plain ``open``/``mkdir`` would: mkstemp's 0600 (and
    mkdtemp's 0700) would end up on the renamed file, hidden from a shared folder's users."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def temporary_file(folder, suffix=""):
    """A new, closed, empty temporary file in ``folder`` (its path), named for this process."""
    fd, tmp = tempfile.mkstemp(prefix=owner_prefix(), suffix=suffix, dir=folder)
    os.close(fd)
    _readable(tmp, 0o666)
    return tmp


def temporary_dir(folder, tag=None):
    """A new temporary folder in ``folder`` (its path), named for this process (and ``tag``)."""
    tmp = tempfile.mkdtemp(prefix=owner_prefix(tag), dir=folder)
    _readable(tmp, 0o777)
    return tmp


def write_file(path, write, suffix=""):
    """Call ``write(tmp)`` on a temporary beside ``path``, then rename it onto ``path``;
    nothing is left when ``write`` fails. ``suffix``: the extension ``write`` needs
    (``.keras``, ``.weights.h5``)."""
    tmp = temporary_file(os.path.dirname(os.path.abspath(path)), suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model, path):
    """``model`` saved to ``path`` (.keras), atomically."""
    write_file(path, model.save, suffix=".keras")


def write_text(path, text):
    """``text`` written to ``path``, atomically."""

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    write_file(path, write)


def remove_stale(folder):
    """Remove the temporaries (files and folders) that killed writers left in ``folder``:
    this host's whose process is gone, and those whose owner cannot be asked once older
    than STALE_AGE_S. A live writer's temporary is never touched."""
    if not os.path.isdir(folder):
        return
    me, now = host(), time.time()
    for entry in os.listdir(folder):
        if not entry.startswith(PREFIX):
            continue
        path = os.path.join(folder, entry)
        owned = _OWNED.fullmatch(entry)
        if not (owned or _NAMELESS.fullmatch(entry)) or os.path.islink(path):
            continue
        if owned and owned.group(1) == me:
            stale = not alive(int(owned.group(2)))
        else:
            try:
                stale = now - os.stat(path).st_mtime > STALE_AGE_S
            except OSError:
                continue
        if stale and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif stale:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
