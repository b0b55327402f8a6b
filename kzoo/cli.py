"""The ``kzoo`` command: list models, summarise one, train one under a protocol,
evaluate a trained model on a test set, export it for TF Serving, and search its
activation placement with keras-tuner."""

import argparse
import json
import os
import sys

from kzoo import _quiet


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


def _strings(text):
    items = tuple(t.strip() for t in text.split(","))
    if not all(items):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return items


def _floats(text):
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _rates(text):
    """Comma-separated values, or LOW:HIGH for a log-uniform range."""
    if ":" in text:
        from kzoo.tuning import Range

        low, _, high = text.partition(":")
        try:
            return Range(float(low), float(high))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected LOW:HIGH such as 0.01:0.3, got {text!r}") from None
    return _floats(text)


class _Parser(argparse.ArgumentParser):
    """argparse with kzoo's error line: the usage, then ``kzoo: error: ...``, exit 2."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"kzoo: error: {self.prog.partition(' ')[2] + ': ' if ' ' in self.prog else ''}{message}\n")


def _parser():
    parser = _Parser(prog="kzoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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

    tr = sub.add_parser("train", help="train a registered model under a protocol (resumes when re-run)")
    tr.add_argument("name")
    tr.add_argument("--dataset", help="default: the protocol's")
    tr.add_argument("--protocol", default="fashion_mnist_demo", help="see `kzoo protocols`")
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float, help="base learning rate (overrides the protocol's)")
    tr.add_argument("--validation-size", type=int, help="training images held out for validation")
    tr.add_argument("--activation")
    tr.add_argument("--erase", type=_erase)
    tr.add_argument("--proportion", type=_proportion)
    tr.add_argument("--mixed-precision", default="auto", help="auto (float16 on GPU), float16, bfloat16, float32")
    tr.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--data-dir", help="TFDS data_dir / folder with the IDX files")
    tr.add_argument("--out", help="run directory (default runs/MODEL-DATASET-PROTOCOL)")
    tr.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    tr.add_argument("--test-curve", action="store_true",
                    help="also evaluate the test set after every epoch (recorded in epochs.csv, never selected on)")
    tr.add_argument("--workers", help="multi-worker training: every worker's host:port, comma-separated, "
                    "the same list on each worker (instead of setting TF_CONFIG)")
    tr.add_argument("--task-index", type=int, help="with --workers: this worker's position in the list (0 = chief)")

    ev = sub.add_parser("evaluate", help="test top-1/top-5 of a .keras file or a run directory")
    ev.add_argument("path", help="a .keras file, or a run directory (its last.keras)")
    ev.add_argument("--dataset", help="default: the run's dataset")
    ev.add_argument("--data-dir")
    ev.add_argument("--batch-size", type=int, default=256)

    ex = sub.add_parser("export", help="export a run directory or .keras file for TF Serving")
    ex.add_argument("source", help="a finished run directory (its last.keras and metrics) or a .keras file")
    ex.add_argument("--base", default="saved_models", help="TF Serving's model base path (default saved_models)")
    ex.add_argument("--name", help="model name, the directory under --base (default: the model's name)")
    ex.add_argument("--version", type=int, help="version number (default: the next free one)")
    ex.add_argument("--dataset", help="sets the preprocessing (default: the run's dataset)")
    ex.add_argument("--top-k", type=int, default=5, help="class ids returned per image")
    ex.add_argument("--keras", action="store_true", help="also write model.keras into the version")
    ex.add_argument("--no-warmup", action="store_true", help="skip TF Serving's warm-up requests file")
    ex.add_argument("--apply-softmax", action="store_true",
                    help="the model outputs logits: serve softmax(logits) as the probabilities")

    tu = sub.add_parser("tune", help="search erase location/proportion/activation with keras-tuner "
                        "(selects on validation; resumes when re-run)")
    tu.add_argument("name")
    tu.add_argument("--dataset", help="default: the protocol's")
    tu.add_argument("--protocol", default="fashion_mnist_demo", help="how each trial trains; see `kzoo protocols`")
    tu.add_argument("--tuner", default="random", help="random, grid, bayesian or hyperband")
    tu.add_argument("--max-trials", type=int, help="default: every point of the space (10 if continuous)")
    tu.add_argument("--out", help="search directory (default runs/tune-MODEL-DATASET)")
    tu.add_argument("--locations", type=_strings, default=("last",),
                    help="erase locations, comma-separated ('none' = the original net); default last")
    tu.add_argument("--proportions", type=_floats, default=(0.25, 0.5, 0.75, 1.0),
                    help="fractions of blocks erased, each in (0, 1]; default 0.25,0.5,0.75,1")
    tu.add_argument("--activations", type=_strings, default=("relu",),
                    help="among relu, frelu, prelu, leaky_relu, elu; default relu")
    tu.add_argument("--learning-rates", type=_rates,
                    help="values (0.05,0.1) or a log range LOW:HIGH (default: the protocol's)")
    tu.add_argument("--weight-decays", type=_rates, help="values or a log range LOW:HIGH")
    tu.add_argument("--epochs", type=int, help="epochs per trial (hyperband: the most a trial trains)")
    tu.add_argument("--batch-size", type=int)
    tu.add_argument("--validation-size", type=int, help="training images held out for selection")
    tu.add_argument("--max-failures", type=int, default=3,
                    help="stop after this many failed trials in a row (default 3)")
    tu.add_argument("--mixed-precision", default="auto")
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--data-dir")
    tu.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")

    sub.add_parser("protocols", help="list the training protocols")
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


def _cluster_env(workers, task_index):
    """Set TF_CONFIG from --workers/--task-index (checked by kzoo.training.distribute)."""
    if workers is None:
        if task_index is not None:
            raise ValueError("--task-index needs --workers")
        return
    if os.environ.get("TF_CONFIG"):
        raise ValueError("give the cluster either as TF_CONFIG or as --workers, not both")
    if task_index is None:
        raise ValueError("--workers needs --task-index (this worker's position in the list)")
    hosts = [h.strip() for h in workers.split(",")]
    if not all(h.rpartition(":")[2].isdigit() for h in hosts):
        raise ValueError(f"--workers must be host:port entries separated by commas, got {workers!r}")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": hosts},
                                          "task": {"type": "worker", "index": task_index}})
    from kzoo.training import distribute

    try:
        distribute.cluster()
    except ValueError:
        del os.environ["TF_CONFIG"]
        raise


def _train(args):
    from kzoo.training import train

    _cluster_env(args.workers, args.task_index)
    model_kwargs = {k: getattr(args, k) for k in ("activation", "erase", "proportion")
                    if getattr(args, k) is not None}
    overrides = {"lr": args.lr} if args.lr is not None else {}
    result = train(
        args.name, args.dataset, args.protocol, epochs=args.epochs, batch_size=args.batch_size,
        validation_size=args.validation_size, model_kwargs=model_kwargs,
        mixed_precision=args.mixed_precision, xla=args.xla, seed=args.seed, data_dir=args.data_dir,
        out=args.out, verbose=2 if args.quiet else 1, command="kzoo " + " ".join(sys.argv[1:]),
        test_curve=args.test_curve, **overrides,
    )
    m = result.metrics
    print(f"run: {result.run_dir}")
    print(f"test top-1 {m['test_top1']:.4f}  top-5 {m['test_top5']:.4f}  params {m['params']:,}  "
          f"train {m['train_seconds']:.0f}s ({m['train_images_per_s']:.0f} img/s)")
    return 0


def _evaluate(args):
    from kzoo.training.evaluate import evaluate

    print(json.dumps(evaluate(args.path, args.dataset, data_dir=args.data_dir,
                              batch_size=args.batch_size), indent=2))
    return 0


def _export(args):
    from kzoo.exporter import export

    result = export(args.source, args.base, args.name, version=args.version, dataset=args.dataset,
                    top_k=args.top_k, keras_file=args.keras, warmup=not args.no_warmup,
                    apply_softmax=args.apply_softmax)
    card = result.card
    score = f"test top-1 {card['test_top1']:.4f}" if card.get("test_top1") is not None else "no test score"
    print(f"exported {result.path} (version {result.version}; {card['model']}, {score})")
    return 0


def _tune(args):
    from kzoo.tuning import SearchSpace, tune

    space = SearchSpace(locations=args.locations, proportions=args.proportions, activations=args.activations,
                        learning_rates=args.learning_rates, weight_decays=args.weight_decays)
    result = tune(
        args.name, args.dataset, args.protocol, space, tuner=args.tuner, max_trials=args.max_trials,
        out=args.out, seed=args.seed, data_dir=args.data_dir, mixed_precision=args.mixed_precision,
        max_consecutive_failed_trials=args.max_failures, verbose=2 if args.quiet else 1,
        command="kzoo " + " ".join(sys.argv[1:]), epochs=args.epochs, batch_size=args.batch_size,
        validation_size=args.validation_size,
    )
    if result.role == "worker":
        print(f"worker {os.environ.get('KERASTUNER_TUNER_ID')}: no trials left; the chief writes the results")
        return 0
    with open(os.path.join(result.out, "results.md")) as f:
        print(f.read())
    m = result.metrics
    print(f"best: {result.best_hyperparameters}")
    print(f"best run: {result.best_run_dir}  val top-1 {m['selected']['val_top1']:.4f}  "
          f"test top-1 {m['test_top1']:.4f}  top-5 {m['test_top5']:.4f}")
    return 0


def _protocols():
    from kzoo.training import get_protocol, list_protocols

    for name in list_protocols():
        p = get_protocol(name)
        print(f"{name:<24} {p.dataset:<14} {p.description}")
    return 0


def _fail(message, code):
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    print("kzoo: error: " + ("; ".join(lines) or "failed"), file=sys.stderr)
    return code


def _run(args):
    if args.command == "list":
        return _list(args.pattern)
    if args.command == "protocols":
        return _protocols()
    if args.command == "train":
        return _train(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "export":
        return _export(args)
    if args.command == "tune":
        return _tune(args)
    return _summary(args)


def main(argv=None):
    """Exit 0 on success, 2 for a bad input (usage, argument, missing or unusable file),
    1 for a run that failed (diverged, a failed search, a write that failed), 130 for
    Ctrl-C: each with one line ``kzoo: error: ...``, never a traceback."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    with _quiet.filtered_stderr():
        try:
            return _run(args)
        except KeyboardInterrupt:
            return _fail("interrupted; re-running the same command resumes a run or a search", 130)
        except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                PermissionError) as err:
            return _fail(err, 2)
        except (RuntimeError, OSError) as err:  # NonFiniteLossError, SearchFailedError, disk errors
            return _fail(err, 1)


if __name__ == "__main__":
    sys.exit(main())
