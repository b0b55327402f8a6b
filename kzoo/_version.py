"""kzoo's version, in one place (setup.py reads it; kzoo.__version__ re-exports it)."""

__version__ = "0.1.0"
