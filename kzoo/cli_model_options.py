"""The builder options of the ``kzoo`` command line, defined once for every command that
builds a model (``summary``, ``train``, ``tune``): their argument types, the table, how a
parser gets them and how a command's parsed arguments become builder keywords."""

import argparse


def _shape(text):
    try:
        dims = tuple(None if d.strip().lower() in ("none", "") else int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W,C such as 32,32,3, got {text!r}") from None
    if len(dims) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated sizes H,W,C, got {text!r}")
    return dims


def _size(text):
    """H,W such as 32,32."""
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W such as 32,32, got {text!r}") from None
    if len(dims) != 2 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected two positive sizes H,W such as 32,32, got {text!r}")
    return dims


def _proportion(text):
    """A fraction (0.5) or a comma-separated list of 1-based block indices (1,3,5)."""
    try:
        if "," in text:
            return [int(i) for i in text.split(",") if i.strip()]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction in (0, 1] or block indices such as 1,3,5, got {text!r}"
        ) from None


def _erase(text):
    """One slot (last), or several erased together joined by '+' (line1_last+line2_first)."""
    parts = [p.strip() for p in text.split("+")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected a slot name or slots joined by '+', got {text!r}")
    return parts[0] if len(parts) == 1 else parts


def _ints(text):
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 32,64,128, got {text!r}"
        ) from None


_ALL, _BUILDS, _SUMMARY = ("summary", "train", "tune"), ("summary", "train"), ("summary",)
MODEL_OPTIONS = (
    (("--input-shape",), {"type": _shape, "help": "H,W,C (default: the model's)"}, _SUMMARY),
    (("--classes",), {"type": int}, _SUMMARY),
    (
        ("--weights",),
        {"help": "weights file (or keras:NAME's 'imagenet', a registered model's published weights)"},
        _ALL,
    ),
    (
        ("--resize",),
        {
            "type": _size,
            "help": "keras:NAME / .keras models: H,W the images are resized to inside the model",
        },
        _ALL,
    ),
    (("--activation",), {"help": "relu, frelu, prelu, leaky_relu or elu"}, _BUILDS),
    (
        ("--erase",),
        {
            "type": _erase,
            "help": "first, middle, second, third, last or a slot of the block; several joined by '+'",
        },
        _BUILDS,
    ),
    (
        ("--proportion",),
        {"type": _proportion, "help": "fraction of blocks erased, or 1-based block indices such as 1,3,5"},
        _BUILDS,
    ),
    (("--stochastic-depth",), {"type": float, "help": "survival probability of the last block"}, _ALL),
    (("--dropout-rate",), {"type": float, "help": "dropout inside blocks (Wide ResNet, MLP)"}, _ALL),
    (
        ("--widths",),
        {"type": _ints, "help": "airbench_net: the three blocks' channels, e.g. 32,64,128"},
        _ALL,
    ),
    (
        ("--no-whitening",),
        {
            "dest": "whitening",
            "action": "store_false",
            "default": None,
            "help": "airbench_net: a learned stem",
        },
        _ALL,
    ),
    (
        ("--no-dirac",),
        {
            "dest": "dirac",
            "action": "store_false",
            "default": None,
            "help": "airbench_net: he_normal convolutions",
        },
        _ALL,
    ),
    (
        ("--bn-bias-lr",),
        {"type": float, "help": "airbench_net: BN offsets' learning-rate factor, e.g. 64"},
        _ALL,
    ),
    (("--cross-type",), {"help": "DFN-MR cross-proportional blocks: type1, type2, type3 or mix1"}, _ALL),
    (
        ("--ensemble",),
        {
            "action": "store_true",
            "default": None,
            "help": "plain nets: a shortcut across each ReLU (the ensemble module)",
        },
        _ALL,
    ),
    (
        ("--preact",),
        {"dest": "preact", "action": "store_true", "default": None, "help": "pre-activation blocks"},
        _ALL,
    ),
    (("--no-preact",), {"dest": "preact", "action": "store_false", "help": "post-activation blocks"}, _ALL),
)


MODEL_HELP = (
    "a registered model (kzoo list), a keras.applications architecture as keras:NAME "
    "(keras:MobileNetV2) or a saved model file (model.keras), placed and given a head and input for the data"
)


def add_model_options(parser, command):
    preact = parser.add_mutually_exclusive_group()
    for flags, settings, commands in MODEL_OPTIONS:
        if command in commands:
            (preact if settings.get("dest") == "preact" else parser).add_argument(*flags, **settings)


def model_kwargs(args):
    """The builder keywords given on the command line (None: not given)."""
    dests = {
        settings.get("dest") or flags[0].lstrip("-").replace("-", "_") for flags, settings, _ in MODEL_OPTIONS
    }
    return {k: getattr(args, k) for k in sorted(dests) if getattr(args, k, None) is not None}
