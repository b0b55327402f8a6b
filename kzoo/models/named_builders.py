"""keras.applications-style builders for the named members of a family (``ResNet20`` is
``CifarResNet`` at depth 20): keras' arguments first in an explicit signature, so
``help()`` and ``inspect`` show them, and an unknown argument is refused naming the
model and what it takes."""

import inspect

from kzoo import checks
from kzoo.models import pretrained
from kzoo.models.registry import model_info


def named_builder(family, model_name, summary, classes, fixed, options, builder_name=None, module=None):
    """A builder for one member of ``family``.

    ``fixed`` are family arguments the name decides (depth, block); ``options`` the
    keyword-only placement arguments and their defaults; ``model_name`` the default
    ``name`` of the model built.
    """
    P = inspect.Parameter
    params = [
        P("include_top", P.POSITIONAL_OR_KEYWORD, default=True),
        P("weights", P.POSITIONAL_OR_KEYWORD, default=None),
        P("input_tensor", P.POSITIONAL_OR_KEYWORD, default=None),
        P("input_shape", P.POSITIONAL_OR_KEYWORD, default=None),
        P("pooling", P.POSITIONAL_OR_KEYWORD, default=None),
        P("classes", P.POSITIONAL_OR_KEYWORD, default=classes),
        P("classifier_activation", P.POSITIONAL_OR_KEYWORD, default="softmax"),
        P("name", P.POSITIONAL_OR_KEYWORD, default=model_name),
    ] + [P(key, P.KEYWORD_ONLY, default=value) for key, value in options.items()]
    signature = inspect.Signature(params)

    def builder(*args, **kwargs):
        bound = checks.bind(signature, model_name, *args, **kwargs)
        if pretrained.names_weights(bound.arguments["weights"]):
            return pretrained.build(
                model_info(model_name), signature, lambda **kw: family(**fixed, **kw), bound.arguments
            )
        return family(**fixed, **bound.arguments)

    builder.__signature__ = signature
    builder.__name__ = builder.__qualname__ = builder_name or (
        model_name.replace("resnet", "ResNet").replace("v2", "V2")
    )
    builder.__doc__ = builder_doc(family, summary, signature, fixed)
    if module is not None:
        builder.__module__ = module
    return builder


def _arg_entries(doc):
    """[(names, text)] of a Google-style ``Args:`` section: each entry's comma-separated
    names and its lines (continuations kept with their indentation)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    if "Args:" not in lines:
        return []
    entries = []
    for line in lines[lines.index("Args:") + 1 :]:
        if not line.strip():
            break
        body = line[4:]
        if not body.startswith(" ") and ":" in body:
            names, _, text = body.partition(":")
            entries.append(([n.strip() for n in names.split(",")], [f"{names}:{text}"]))
        elif entries:
            entries[-1][1].append(body)
    return entries


def builder_doc(family, summary, signature, fixed):
    """A named builder's docstring: its summary, what the name fixes, and the family's
    ``Args:`` entries for the arguments it takes (as keras.applications' builders
    document theirs), so ``help(kzoo.ResNet20)`` is complete on its own."""
    takes = set(signature.parameters)
    fixed_text = ", ".join(f"{k}={v!r}" for k, v in fixed.items())
    lines = [summary, "", f"``kzoo.{family.__name__}({fixed_text})``, as a keras.applications builder."]
    entries = [(names, text) for names, text in _arg_entries(family.__doc__) if takes & set(names)]
    if entries:
        lines += ["", "Args:"] + [f"    {line}" for _, text in entries for line in text]
    return "\n".join(lines)


def member_of(family, *, classes, fixed, options, model_name=None):
    """Decorator: the named builder of ``family`` that a stub defines by its name and
    docstring, e.g. ``@member_of(CifarResNet, ...)`` above ``def ResNet20(): "summary"``.

    The builder takes the stub's name, module and summary; the model it builds is named
    ``model_name``, by default the stub's name lower-cased ("resnet20").
    """

    def decorator(stub):
        if inspect.signature(stub).parameters or not stub.__doc__:
            raise TypeError(f"{stub.__name__}: a member stub takes no arguments and has a docstring")
        return named_builder(
            family,
            model_name or stub.__name__.lower(),
            inspect.cleandoc(stub.__doc__),
            classes,
            fixed,
            options,
            builder_name=stub.__name__,
            module=stub.__module__,
        )

    return decorator
