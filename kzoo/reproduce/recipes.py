"""Finding the recipes (``applications/<name>.py`` files that define a ``STUDY``) and
loading one, so ``kzoo reproduce <name>`` runs the same study as
``python applications/<name>.py``.

Recipes are looked for in ``applications/`` under the current directory, then in the
``applications/`` of the repository checkout kzoo is installed from; a name found in both
is the current directory's.
"""

import ast
import importlib.util
import os
import re
import sys
import traceback

import kzoo
from kzoo import checks
from kzoo.reproduce.study import Study

FOLDER = "applications"


def recipe_dirs():
    """The existing folders recipes are looked for in, in lookup order."""
    candidates = [
        os.path.join(os.getcwd(), FOLDER),
        os.path.normpath(os.path.join(os.path.dirname(kzoo.__file__), "..", FOLDER)),
    ]
    found = []
    for folder in candidates:
        if os.path.isdir(folder) and all(not os.path.samefile(folder, f) for f in found):
            found.append(folder)
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
    """Recipe name -> file, sorted by name, for every recipe in ``recipe_dirs()``."""
    recipes = {}
    for folder in recipe_dirs():
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry)
            name = entry[:-3]
            if entry.endswith(".py") and name not in recipes and os.path.isfile(path) and defines_study(path):
                recipes[name] = path
    return dict(sorted(recipes.items()))


def load_study(path, arg="study"):
    """The ``STUDY`` of the recipe file at ``path``, run with importlib as a module that
    is not ``__main__``, with its folder first on ``sys.path`` as ``python
    applications/<recipe>.py`` has it. A ValueError naming ``arg`` (None: the file) when it defines none,
    and when running it fails (a syntax error, a missing import, a bad ``Study``): the
    file, the line and the error, not a traceback."""
    path = checks.path(path, arg or "path")
    named = f"`{arg}`={path!r}" if arg else f"recipe file {path!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{named}: no such recipe file")
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"kzoo_recipe_{stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{named} is not a Python recipe file (a recipe's name ends in .py)")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        if not err.filename or os.path.realpath(err.filename) == os.path.realpath(path):
            where = f"line {err.lineno}: " if err.lineno else ""
            raise ValueError(f"{named}: the recipe is not valid Python ({where}{err.msg})") from None
        raise ValueError(f"{named}: the recipe failed to load ({_failure(err, path)})") from None
    except (Exception, SystemExit) as err:
        raise ValueError(f"{named}: the recipe failed to load ({_failure(err, path)})") from None
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study):
        raise ValueError(
            f"{named} defines no STUDY (a kzoo.reproduce.Study), so it is not a "
            "recipe; `kzoo reproduce --list-studies` lists the recipes"
        )
    return study


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
            f"`{arg}`={text!r}: no recipes found (no {FOLDER}/ folder with a recipe under the "
            "current directory or next to the kzoo package); give the path to a recipe file"
        )
    checks.choice(text, arg, recipes)
    return load_study(recipes[text], arg)
