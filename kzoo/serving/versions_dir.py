"""A TF Serving model directory, ``BASE/NAME/<version>/``: the name TF Serving can use,
the versions already there, and publishing a new version all at once.

A version is written under a temporary name that TF Serving ignores
(``.tmp-<version>-<host>-<pid>-XXXX``, which says whose it is, so a later export removes
it once its process is dead) and renamed into place without replacing anything
(``renameat2(RENAME_NOREPLACE)``), so a polling server never sees half of it, and an
existing version is never replaced.
"""

import ctypes
import errno
import os

from kzoo import atomic, checks

VERSION_MAX = 2**63 - 1  # TF Serving reads a version directory's name as an int64
NAME_MAX = 255  # bytes in a directory name (ext4, xfs, ...)

AT_FDCWD = -100
RENAME_NOREPLACE = 1


def check_name(name):
    """A name TF Serving can use: a directory name that is also a URL path segment
    (``/v1/models/NAME:predict``) and is not hidden (``.tmp-*`` is kzoo's own)."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a plain directory name (a string), got {name!r}")
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    problem = (
        "it is empty"
        if not name.strip()
        else "it starts with '.' (hidden, and '.tmp-*' is kzoo's own)"
        if name.startswith(".")
        else "it has a path separator"
        if any(s in name for s in seps)
        else "it has a NUL or control character"
        if any(ord(c) < 32 or ord(c) == 127 for c in name)
        else "it starts or ends with whitespace"
        if name != name.strip()
        else "it has ':' (TF Serving's REST API reads NAME:predict)"
        if ":" in name
        else f"it is longer than {NAME_MAX} bytes"
        if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX
        else None
    )
    if problem:
        raise ValueError(f"`name` must be a plain directory name TF Serving can use; {problem}: got {name!r}")
    return name


def model_dir(base_dir, name):
    """``base_dir/name``, refused when it is a file or cannot be written."""
    folder = os.path.join(base_dir, name)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ValueError(f"`name`={name!r}: {folder!r} is a file, not a model directory")
    checks.writable_dir(folder, "base_dir/name")
    return folder


def versions(model_dir):
    """The integer versions already in ``model_dir`` (what TF Serving would serve)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(n)
        for n in os.listdir(model_dir)
        if n.isascii() and n.isdigit() and os.path.isdir(os.path.join(model_dir, n))
    )


# ----------------------------------------------------------------------------- temporary folders


def remove_stale_tmp(folder):
    """Remove the temporary folders of exports killed before they finished (kzoo.atomic's
    rule: this host's whose process is gone, others once a day old; never a live one's)."""
    atomic.remove_stale(folder)


def make_dirs(folder):
    """Create ``folder`` and the folders above it that are missing; returns those it made,
    deepest first, for ``remove_dirs`` when the export fails."""
    made, probe = [], os.path.abspath(folder)
    while not os.path.lexists(probe):
        made.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(folder, exist_ok=True)
    return made


def remove_dirs(made):
    """Remove the folders ``make_dirs`` made, deepest first, while they are empty (one
    another export filled meanwhile stays, and so do those above it)."""
    for folder in made:
        try:
            os.rmdir(folder)
        except OSError:
            return


def make_tmp(folder, version):
    """A new temporary folder in ``folder`` for ``version``, readable as the version will be.
    Not an integer, so TF Serving skips it; the name says whose it is (remove_stale_tmp)."""
    return atomic.temporary_dir(folder, tag=version)  # readable as a plain mkdir's would be


# ----------------------------------------------------------------------------- publication


def _renameat2():
    """libc's renameat2, or None where there is none (not Linux, old glibc, musl)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def rename_noreplace(src, dst):
    """Rename ``src`` to ``dst``, a FileExistsError if ``dst`` exists, even as an empty
    directory (which a plain ``os.rename`` silently replaces)."""
    fn = _renameat2()
    if fn is not None:
        if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS):
            raise (FileExistsError if err in (errno.EEXIST, errno.ENOTEMPTY) else OSError)(
                err, os.strerror(err), dst
            )
    # No renameat2, or a file system without RENAME_NOREPLACE: check, then rename; this
    # leaves a race between the two (a folder made in between is replaced if empty).
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)
