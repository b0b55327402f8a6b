"""The ``kzoo`` command: list models, summarise one, train one under a protocol,
evaluate a trained model on a test set, export it for TF Serving, publish runs as a
pretrained tag, search its
activation placement with keras-tuner, reproduce the papers' tables (``kzoo reproduce``), and
see what each activation of a trained model does (``kzoo stats``)."""

import json
import os
import shlex
import sys

from kzoo import checks, cli_parser
from kzoo.cli_model_options import model_kwargs as _model_kwargs
from kzoo.cli_parser import build_parser


def _parser():
    return build_parser(__doc__)


def _list(pattern, pretrained=False):
    from kzoo.models.registry import list_models, model_info

    if pretrained:
        return _list_tags(pattern)
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
        print(
            f"{name:<18} {info.family:<19} {published:>9} {exact:>11} {shape:<10} {info.dataset:<13} {info.paper}"
        )
    return 0


def _list_tags(pattern):
    from kzoo.models.registry import list_models, model_info

    tags = list_models(pattern, pretrained=True)
    if not tags:
        print(f"no pretrained tag matches {pattern!r}")
        return 1
    print(f"{'tag':<36} {'top-1':>6} {'params':>9} {'input':<9} options")
    for tag in tags:
        record = model_info(tag).pretrained
        shape = "x".join(str(d) for d in record.input_shape)
        print(f"{tag:<36} {100 * record.top1:>6.2f} {record.params:>9,} {shape:<9} {record.options or '-'}")
    return 0


def _summary(args):
    import kzoo

    kwargs = _model_kwargs(args)
    if args.modules:  # the model without erasing, and what --erase/--proportion would remove
        erase, proportion = kwargs.pop("erase", None), kwargs.pop("proportion", None)
        model = kzoo.create_model(args.name, **kwargs)
        print(kzoo.modules(model, erase=erase, proportion=proportion))
        return 0
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
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task_index}}
    )
    from kzoo.training import distribute

    try:
        distribute.cluster()
    except ValueError:
        del os.environ["TF_CONFIG"]
        raise


def _run_options(args):
    """The run options ``kzoo train`` and ``kzoo tune`` share, as keywords of
    ``RunConfig.create`` and ``kzoo.tuning.tune``."""
    return {
        "dataset": args.dataset,
        "protocol": args.protocol,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "validation_size": args.validation_size,
        "model_kwargs": _model_kwargs(args),
        "mixed_precision": args.mixed_precision,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "out": args.out,
        "verbose": 2 if args.quiet else 1,
    }


def run_train(args, command):
    """``kzoo train``'s parsed ``args`` as a ``RunConfig``, trained (``command``: the line
    recorded in the run); returns its TrainResult."""
    from kzoo.training import trainer
    from kzoo.training.run_config import RunConfig

    _cluster_env(args.workers, args.task_index)
    config = RunConfig.create(
        args.name,
        **_run_options(args),
        xla=args.xla,
        command=command,
        test=args.test,
        test_curve=args.test_curve,
        activation_log=args.activation_log,
        **cli_parser.protocol_overrides(args),
    )
    return trainer.train_from_config(config)


def _train(args):
    result = run_train(args, args.command_line)
    m = result.metrics
    print(f"run: {result.run_dir}")
    scores = []
    if m.get("test_top1") is not None:
        scores.append(f"test top-1 {m['test_top1']:.4f}  top-5 {m['test_top5']:.4f}")
    if m.get("val_top1") is not None:
        scores.append(f"validation top-1 {m['val_top1']:.4f}")
    print(
        "  ".join(scores) + f"  params {m['params']:,}  "
        f"train {m['train_seconds']:.0f}s ({m['train_images_per_s']:.0f} img/s)"
    )
    return 0


def _evaluate(args):
    from kzoo.training.evaluation import evaluate

    print(
        json.dumps(
            evaluate(
                args.path, args.dataset, data_dir=args.data_dir, batch_size=args.batch_size, tta=args.tta
            ),
            indent=2,
        )
    )
    return 0


def _export(args):
    from kzoo.serving import export

    result = export(
        args.source,
        args.base,
        args.name,
        version=args.version,
        dataset=args.dataset,
        top_k=args.top_k,
        keras_file=args.keras,
        warmup=False if args.no_warmup else None,
        apply_softmax=args.apply_softmax,
        format=args.format,
        quantize=args.quantize,
        opset=args.opset,
        data_dir=args.data_dir,
    )
    card = result.card
    score = f"test top-1 {card['test_top1']:.4f}" if card.get("test_top1") is not None else "no test score"
    check = card.get("verification")
    verified = (
        f"; verified by {check['runtime']}: top-1 agreement {check['top1_agreement']:.2%}, "
        f"max probability difference {check['max_abs_diff_probabilities']:.2g}"
        if check
        else "; not verified"
    )
    print(
        f"exported {result.path} ({card['format']} version {result.version}; {card['model']}, {score}{verified})"
    )
    return 0


def _publish(args):
    from kzoo.serving.publish import export_tag, publish

    if args.no_export and (args.saved_models or args.no_companions):
        given = "--saved-models" if args.saved_models else "--no-companions"
        raise ValueError(f"{given} does nothing with --no-export (nothing is exported): leave one out")
    saved_models = None if args.no_export else args.saved_models or "saved_models"
    if not args.runs:
        if args.no_export or args.weights_dir or args.replace:
            raise ValueError(
                "`runs` are needed with --no-export, --weights-dir or --replace: without runs, publish "
                "exports the tag kzoo ships again"
            )
        record = export_tag(
            args.tag,
            saved_models=saved_models,
            data_dir=args.data_dir,
            companions=not args.no_companions,
        )
        print(f"exported {record.tag} again: test top-1 {record.top1:.4f} (seed {record.source['seed']})")
        return 0
    record = publish(
        args.runs,
        args.tag,
        weights_dir=args.weights_dir,
        saved_models=saved_models,
        data_dir=args.data_dir,
        companions=not args.no_companions,
        replace=args.replace,
    )
    print(
        f"published {record.tag}: test top-1 {record.top1:.4f} (seed {record.source['seed']}), {record.file}"
    )
    return 0


def _tune(args):
    from kzoo.tuning import SearchSpace, tune

    space = SearchSpace(
        locations=args.locations,
        proportions=args.proportions,
        activations=args.activations,
        learning_rates=args.learning_rates,
        weight_decays=args.weight_decays,
    )
    result = tune(
        args.name,
        space=space,
        tuner=args.tuner,
        max_trials=args.max_trials,
        max_consecutive_failed_trials=args.max_failures,
        command=args.command_line,
        **_run_options(args),
    )
    if result.role == "worker":
        print(f"worker {os.environ.get('KERASTUNER_TUNER_ID')}: no trials left; the chief writes the results")
        return 0
    with open(os.path.join(result.out, "results.md")) as f:
        print(f.read())
    m = result.metrics
    print(f"best: {result.best_hyperparameters}")
    print(
        f"best run: {result.best_run_dir}  val top-1 {m['selected']['val_top1']:.4f}  "
        f"test top-1 {m['test_top1']:.4f}  top-5 {m['test_top5']:.4f}"
    )
    return 0


def _reproduce(args):
    from kzoo.reproduce import cli as reproduce_cli

    return reproduce_cli.run_command(args)


def _stats(args):
    from kzoo.transform import stats_cli

    return stats_cli.run_command(args)


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
    commands = {
        "list": lambda a: _list(a.pattern, a.pretrained),
        "protocols": lambda a: _protocols(),
        "summary": _summary,
        "train": _train,
        "evaluate": _evaluate,
        "export": _export,
        "publish": _publish,
        "tune": _tune,
        "reproduce": _reproduce,
        "stats": _stats,
    }
    return commands[args.command](args)


def main(argv=None):
    """Exit 0 on success, 2 for a bad input (usage, argument, missing or unusable file),
    1 for a run that failed (diverged, a failed search, a write that failed), 130 for
    Ctrl-C: each with one line ``kzoo: error: ...``, never a traceback. The ``kzoo``
    command (``kzoo_command``) runs it with TensorFlow's start-up notices filtered out."""
    args = build_parser(__doc__).parse_args(argv)
    # The line a run records: this call's arguments (main(argv) in a script), not the script's.
    args.command_line = "kzoo " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return _fail("interrupted; re-running the same command resumes a run or a search", 130)
    except checks.INPUT_ERRORS as err:
        return _fail(err, 2)
    except (RuntimeError, OSError) as err:  # NonFiniteLossError, SearchFailedError, disk errors
        return _fail(err, 1)


if __name__ == "__main__":
    sys.exit(main())
