"""The ``kzoo`` command: list the registered models and summarise one of them."""

import argparse
import os
import sys


def _shape(text):
    try:
        dims = tuple(None if d.strip().lower() in ("none", "") else int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W,C such as 32,32,3, got {text!r}")
    if len(dims) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated sizes H,W,C, got {text!r}")
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
        )


def _erase(text):
    """One slot (last), or several erased together joined by '+' (line1_last+line2_first)."""
    parts = [p.strip() for p in text.split("+")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected a slot name or slots joined by '+', got {text!r}")
    return parts[0] if len(parts) == 1 else parts


def _parser():
    parser = argparse.ArgumentParser(prog="kzoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list registered models with their paper and parameter count")
    ls.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet1*'")
    sm = sub.add_parser("summary", help="build a model and print its summary")
    sm.add_argument("name")
    sm.add_argument("--input-shape", type=_shape, help="H,W,C (default: the model's)")
    sm.add_argument("--classes", type=int)
    sm.add_argument("--activation", help="relu, frelu, prelu, leaky_relu or elu")
    sm.add_argument("--erase", type=_erase,
                    help="first, middle, second, third, last or a slot of the block; "
                         "several joined by '+'")
    sm.add_argument("--proportion", type=_proportion)
    sm.add_argument("--stochastic-depth", type=float, help="survival probability of the last block")
    sm.add_argument("--dropout-rate", type=float, help="dropout inside blocks (Wide ResNet, MLP)")
    sm.add_argument("--cross-type", help="DFN-MR cross-proportional blocks: type1, type2, type3 or mix1")
    sm.add_argument("--ensemble", action="store_true", default=None,
                    help="plain nets: a shortcut across each ReLU (the ensemble module)")
    pre = sm.add_mutually_exclusive_group()
    pre.add_argument("--preact", dest="preact", action="store_true", default=None)
    pre.add_argument("--no-preact", dest="preact", action="store_false")
    sm.add_argument("--brief", action="store_true", help="only the totals and the activations kept")
    return parser


def _list(pattern):
    from kzoo.models.registry import list_models, model_info

    names = list_models(pattern)
    if not names:
        print(f"no model matches {pattern!r}")
        return 1
    # "published": the paper's figure ("-" where it prints none); "kzoo": kzoo's exact count.
    print(f"{'model':<18} {'family':<19} {'published':>9} {'kzoo':>11} {'input':<10} {'dataset':<13} paper")
    for name in names:
        info = model_info(name)
        published = f"{info.published_params / 1e6:.2f}M" if info.published_params else "-"
        exact = f"{info.expected_params:,}" if info.expected_params else "-"
        shape = "x".join(str(d) for d in info.input_shape)
        print(f"{name:<18} {info.family:<19} {published:>9} {exact:>11} {shape:<10} {info.dataset:<13} {info.paper}")
    return 0


def _summary(args):
    import kzoo

    kwargs = {}
    for key in ("input_shape", "classes", "activation", "erase", "proportion", "preact",
                "stochastic_depth", "dropout_rate", "cross_type", "ensemble"):
        value = getattr(args, key)
        if value is not None:
            kwargs[key] = value
    model = kzoo.create_model(args.name, **kwargs)
    if not args.brief:
        model.summary(line_length=110)
    trainable = kzoo.trainable_params(model)
    acts = kzoo.activation_layers(model)
    print(f"model: {model.name}  params: {model.count_params():,} (trainable {trainable:,})")
    print(f"activation layers kept: {len(acts)}")
    return 0


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list(args.pattern)
        return _summary(args)
    except (ValueError, TypeError) as err:
        print(f"kzoo: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
