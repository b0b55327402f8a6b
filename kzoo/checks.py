"""Checks of what a user hands kzoo, shared by every layer (builders, data, training,
export, tuning, the CLI), so that a bad value fails early with one kind of message:
the argument's name, what was expected, and what it got.

Every number is checked finite (``nan`` and ``inf`` compare False with everything, so a
bare ``lr <= 0`` lets them through); every path is checked before anything is read or
written; every file kzoo wrote itself and reads back is read through ``read_json`` /
``require_file``, which name the file and say what to do when it is missing or damaged.
TypeError for a value of the wrong kind, ValueError for a wrong value (a path that is a
file or not writable included), FileNotFoundError for a path that is not there.
"""

import difflib
import json
import math
import numbers
import os

# What kzoo raises for a bad input (a path that is not there or not usable included): the
# command lines answer these with exit status 2, everything else that fails with 1.
INPUT_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (keras.utils.set_random_seed) takes [0, 2**32)
VERBOSE = ("auto", 0, 1, 2)


def _got(value):
    return repr(value) if not isinstance(value, float) else f"{value!r}"


def boolean(value, arg):
    """``value`` if it is True or False; a TypeError naming ``arg`` otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"`{arg}` must be True or False, got {_got(value)}")
    return value


def _bounds_text(minimum, maximum, min_open, max_open):
    if minimum is not None and maximum is not None and not (min_open or max_open):
        return f"in [{minimum}, {maximum}]"
    parts = []
    if minimum is not None:
        parts.append(f"{'greater than' if min_open else 'at least'} {minimum}")
    if maximum is not None:
        parts.append(f"{'less than' if max_open else 'at most'} {maximum}")
    return " and ".join(parts)


def _in_bounds(value, minimum, maximum, min_open, max_open):
    if minimum is not None and (value <= minimum if min_open else value < minimum):
        return False
    if maximum is not None and (value >= maximum if max_open else value > maximum):
        return False
    return True


def integer(value, arg, *, minimum=None, maximum=None, optional=False):
    """``value`` as an int (numpy integers too, never a bool), within the bounds."""
    if value is None and optional:
        return None
    bounds = _bounds_text(minimum, maximum, False, False)
    expected = "an integer" + (f" {bounds}" if bounds else "") + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{arg}` must be {expected}, got {_got(value)}")
    if not _in_bounds(value, minimum, maximum, False, False):
        raise ValueError(f"`{arg}` must be {expected}, got {value}")
    return int(value)


def number(value, arg, *, minimum=None, maximum=None, min_open=False, max_open=False, optional=False):
    """``value`` as a finite float (ints and numpy numbers too, never a bool), within the
    bounds (``min_open``/``max_open``: the bound itself excluded)."""
    if value is None and optional:
        return None
    bounds = _bounds_text(minimum, maximum, min_open, max_open)
    expected = "a finite number" + (f" {bounds}" if bounds else "") + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{arg}` must be {expected}, got {_got(value)}")
    value = float(value)
    if not math.isfinite(value) or not _in_bounds(value, minimum, maximum, min_open, max_open):
        raise ValueError(f"`{arg}` must be {expected}, got {value!r}")
    return value


def seed(value, arg="seed", *, optional=False):
    """A random seed numpy, TensorFlow and Keras all accept: an integer in [0, 2**32 - 1]."""
    return integer(value, arg, minimum=0, maximum=SEED_MAX, optional=optional)


def verbose(value, arg="verbose"):
    """Keras' ``verbose``: "auto", 0 (silent), 1 (progress bars) or 2 (a line per epoch)."""
    if isinstance(value, bool):
        return int(value)
    if value not in VERBOSE or (not isinstance(value, str) and not isinstance(value, numbers.Integral)):
        raise ValueError(f"`{arg}` must be 'auto', 0, 1 or 2, got {_got(value)}")
    return value


def choice(value, arg, choices, what=None):
    """``value`` if it is one of ``choices``; else a ValueError listing them, with the
    closest ones first ("did you mean ...?") when ``value`` is a misspelt string."""
    choices = list(choices)
    try:
        if value in choices:
            return value
    except TypeError:  # unhashable / incomparable
        pass
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=3)
        if close:
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?"
    known = ", ".join(repr(c) for c in choices)
    raise ValueError(f"`{arg}` must be one of {known}, got {_got(value)}.{hint}")


def path(value, arg, *, optional=False):
    """``value`` as a str path (os.PathLike too); a TypeError naming ``arg`` otherwise."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        raise TypeError(f"`{arg}` must be a path{' or None' if optional else ''}, got {_got(value)}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise ValueError(f"`{arg}` must be a non-empty path, got {_got(value)}")
    return text


def existing_dir(value, arg):
    """A path that is an existing directory: FileNotFoundError when nothing is there,
    ValueError when it is a file."""
    folder = path(value, arg)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"`{arg}`={folder!r} does not exist")
    if not os.path.isdir(folder):
        raise ValueError(f"`{arg}`={folder!r} is a file, not a directory")
    return folder


def writable_dir(value, arg):
    """A directory kzoo may create (or add to) and write into: it exists as a writable
    directory, or its nearest existing ancestor is one. Checked before any data is read,
    so a run does not train for an hour and then fail to save. Returns the absolute path."""
    folder = os.path.abspath(path(value, arg))
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        where = "is a file" if probe == folder else f"lies under the file {probe!r}"
        raise ValueError(f"`{arg}`={folder!r} {where}, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == folder else f"cannot be created: {probe!r} is not writable"
        raise ValueError(f"`{arg}`={folder!r} {what}")
    return folder


def require_file(file, what):
    """``file`` if it exists as a file; else a FileNotFoundError saying which of kzoo's
    files (``what``, e.g. "the run's last model") is missing."""
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{what} {file!r} is missing")
    return file


def read_json(file, what, fix="delete it to start over"):
    """The JSON object in ``file``, a file kzoo wrote; a FileNotFoundError when it is
    missing and a ValueError naming it (and ``fix``) when it is not a JSON object."""
    require_file(file, what)
    try:
        with open(file, encoding="utf-8") as f:
            value = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {file!r} is damaged ({err}); {fix}") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{what} {file!r} is damaged (expected a JSON object, got {type(value).__name__}); {fix}"
        )
    return value


def unknown_keys(given, known, arg, what="keys"):
    """A ValueError naming ``arg`` when ``given`` holds keys outside ``known``, with the
    closest known one for each misspelling."""
    unknown = [k for k in given if k not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ValueError(f"`{arg}` has unknown {what} {', '.join(hints)}; known: {', '.join(map(str, known))}")


def bind(signature, owner, *args, **kwargs):
    """``signature`` bound to the arguments, defaults applied; an argument it does not
    take is a TypeError naming ``owner`` (the model) and what it takes, rather than
    inspect's bare "got an unexpected keyword argument"."""
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{owner}: {err}; it takes {', '.join(signature.parameters)}") from None
    bound.apply_defaults()
    return bound
