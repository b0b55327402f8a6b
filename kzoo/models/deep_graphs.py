"""Room for very deep graphs: keras walks a functional graph recursively, once per
layer, so building, loading or rebuilding a model of thousands of layers (ResNet-1202 has
about 4,000) needs more than Python's default recursion limit."""

import contextlib
import sys


@contextlib.contextmanager
def deep_graphs(limit=20000):
    """Let keras map graphs of thousands of layers (ResNet-1202 has ~4,000): its
    functional graph walk recurses once per layer, past Python's default limit."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)
