"""The papers' recipes, one module per table or figure, each defining a ``STUDY`` (a
``kzoo.reproduce.Study``): part of the package, so an installed kzoo lists and runs them
wherever it runs (``kzoo reproduce NAME``, ``kzoo.reproduce.find_recipes()``).

Every module here whose name does not start with ``_`` is a recipe, named by its module
name; ``applications/NAME.py`` in the repository is a script that runs the same
``STUDY``. The modules only define their studies: nothing runs when one is imported.
"""
