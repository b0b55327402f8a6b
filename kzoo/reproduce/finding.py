"""Finding the recipes and loading one, so ``kzoo reproduce NAME`` runs the same study as
``python applications/NAME.py``.

The papers' recipes are the modules of ``kzoo.reproduce.recipes``, found through the
package (``pkgutil``) and imported by name, so an installed wheel lists and runs them from
any folder. A user's own recipes are found too, as before the recipes moved into the
package: a recipe file's path (``kzoo reproduce path/to/my_recipe.py``) runs that file,
and a name is looked for first in ``applications/`` under the current directory (its
files that assign a ``STUDY``), then in the package, so a user's recipe of the same name
comes first. The ``applications/`` folder next to the installed package is no longer
searched: in a checkout its recipe files are scripts importing the package's studies, and
next to an installed wheel it would be whatever ``site-packages/applications`` holds.
"""

import ast
import importlib
import importlib.util
import os
import pkgutil
import re
import sys
import traceback

from kzoo import checks
from kzoo.reproduce.study import Study

PACKAGE = "kzoo.reproduce.recipes"
FOLDER = "applications"


def package_recipes():
    """Recipe name -> module file, for every module of ``kzoo.reproduce.recipes`` whose
    name does not start with ``_``, sorted by name. Read from the package's folder, not
    imported."""
    package = importlib.import_module(PACKAGE)
    found = {}
    for module in pkgutil.iter_modules(package.__path__):
        if module.ispkg or module.name.startswith("_"):
            continue
        spec = importlib.util.find_spec(f"{PACKAGE}.{module.name}")
        if spec is not None and spec.origin:
            found[module.name] = spec.origin
    return dict(sorted(found.items()))


def user_recipes():
    """Recipe name -> file, for the recipes in ``applications/`` under the current directory."""
    folder = os.path.join(os.getcwd(), FOLDER)
    if not os.path.isdir(folder):
        return {}
    found = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.endswith(".py") and os.path.isfile(path) and defines_study(path):
            found[entry[:-3]] = path
    return found


_ASSIGNS_STUDY = re.compile(r"^STUDY\s*(:|=(?!=))", re.MULTILINE)


def defines_study(path):
    """Whether the file assigns ``STUDY`` at its top level; read, not run, so scripts that
    are not recipes (demo.py, time_to_accuracy.py) are never executed to find out. A file
    that is not valid Python is a recipe when a line of it starts with ``STUDY =`` (so
    that loading it reports its error); an unreadable one is none."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return False
    try:
        tree = ast.parse(text, path)
    except (SyntaxError, ValueError):
        return bool(_ASSIGNS_STUDY.search(text))
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "STUDY" for t in targets):
            return True
    return False


def find_recipes():
    """Recipe name -> file, sorted by name: the package's recipes and the user's in
    ``applications/`` under the current directory (the user's, for a name in both)."""
    return dict(sorted({**package_recipes(), **user_recipes()}.items()))


def _package_module(path):
    """The module name of the package's recipe at ``path``; None for any other file."""
    real = os.path.realpath(path)
    for name, origin in package_recipes().items():
        if os.path.realpath(origin) == real:
            return f"{PACKAGE}.{name}"
    return None


def load_study(path, arg="study"):
    """The ``STUDY`` of the recipe file at ``path``: one of the package's recipes imported
    by its module name, any other file run with importlib as a module that is not
    ``__main__``, with its folder first on ``sys.path`` as ``python
    applications/<recipe>.py`` has it. A ValueError naming ``arg`` (None: the file) when it defines none,
    and when running it fails (a syntax error, a missing import, a bad ``Study``): the
    file, the line and the error, not a traceback."""
    path = checks.path(path, arg or "path")
    named = f"`{arg}`={path!r}" if arg else f"recipe file {path!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{named}: no such recipe file")
    module_name = _package_module(path)
    if module_name is not None:
        module = _run(lambda: importlib.import_module(module_name), path, named)
    else:
        module = _run_file(path, named)
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study):
        raise ValueError(
            f"{named} defines no STUDY (a kzoo.reproduce.Study), so it is not a "
            "recipe; `kzoo reproduce --list-studies` lists the recipes"
        )
    return study


def _run_file(path, named):
    """The module the file at ``path`` makes, run with its folder first on ``sys.path``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"kzoo_recipe_{stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{named} is not a Python recipe file (a recipe's name ends in .py)")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        _run(lambda: spec.loader.exec_module(module), path, named)
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    return module


def _run(load, path, named):
    """What ``load()`` returns; its failure as a ValueError naming the recipe file's line."""
    try:
        return load()
    except SyntaxError as err:
        if not err.filename or os.path.realpath(err.filename) == os.path.realpath(path):
            where = f"line {err.lineno}: " if err.lineno else ""
            raise ValueError(f"{named}: the recipe is not valid Python ({where}{err.msg})") from None
        raise ValueError(f"{named}: the recipe failed to load ({_failure(err, path)})") from None
    except (Exception, SystemExit) as err:
        raise ValueError(f"{named}: the recipe failed to load ({_failure(err, path)})") from None


def _failure(err, path):
    """Where in the recipe file ``err`` was raised (its deepest line there) and what it is."""
    if isinstance(err, SystemExit):
        what = (
            f"it exited (SystemExit {err.code!r}); a recipe calls main(STUDY) only under "
            '`if __name__ == "__main__":`'
        )
    elif isinstance(err, SyntaxError):
        what = f"SyntaxError in {err.filename!r}, line {err.lineno}: {err.msg}"
    else:
        what = f"{type(err).__name__}: {err}"
    target = os.path.realpath(path)
    lines = [
        f.lineno for f in traceback.extract_tb(err.__traceback__) if os.path.realpath(f.filename) == target
    ]
    return f"line {lines[-1]}: {what}" if lines else what


def resolve_study(text, arg="study"):
    """The study named by ``text``: a path to a recipe file (it ends in .py, holds a
    folder separator or is an existing file) or a recipe name from ``find_recipes()``."""
    text = checks.path(text, arg)
    separators = [s for s in (os.sep, os.altsep) if s]
    if text.endswith(".py") or any(s in text for s in separators) or os.path.isfile(text):
        if not os.path.isfile(text):
            raise FileNotFoundError(
                f"`{arg}`={text!r}: no such recipe file (a recipe is named without its folder and "
                "`.py`; `kzoo reproduce --list-studies` lists them)"
            )
        return load_study(text, arg)
    recipes = find_recipes()
    if not recipes:
        raise ValueError(
            f"`{arg}`={text!r}: no recipes found (none in the package {PACKAGE} nor in {FOLDER}/ "
            "under the current directory); give the path to a recipe file"
        )
    checks.choice(text, arg, recipes)
    return load_study(recipes[text], arg)
