"""The ``kzoo`` command line's arguments: their types and one parser function per
sub-command; the builder options every command that builds a model shares are one table
in ``kzoo.cli_model_options``."""

import argparse
import sys

from kzoo.cli_model_options import MODEL_HELP, add_model_options


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
        self.exit(
            2, f"kzoo: error: {self.prog.partition(' ')[2] + ': ' if ' ' in self.prog else ''}{message}\n"
        )


# Builder options, defined once for every command that builds a model: (flags, argparse
# settings, the commands that take it). The dataset sets the input shape and classes of a
# trained model; a search searches the activation and the erase location and proportion.
def build_parser(description=None):
    """The ``kzoo`` parser: one sub-command per step of the pipeline."""
    from kzoo.reproduce import cli as reproduce_cli
    from kzoo.transform import stats_cli

    parser = _Parser(prog="kzoo", description=description)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ls = sub.add_parser("list", help="list registered models with their paper and parameter count")
    ls.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet1*'")
    ls.add_argument("--pretrained", action="store_true", help="list the pretrained tags instead")
    sm = sub.add_parser("summary", help="build a model and print its summary")
    sm.add_argument("name", help=MODEL_HELP)
    add_model_options(sm, "summary")
    sm.add_argument("--brief", action="store_true", help="only the totals and the activations kept")
    sm.add_argument(
        "--modules",
        action="store_true",
        help="the modules and activation slots found in the model's graph (kzoo.modules), and "
        "which activations --erase/--proportion remove",
    )
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_publish(sub)
    _add_tune(sub)
    reproduce_cli.add_parser(sub)
    stats_cli.add_parser(sub)
    sub.add_parser("protocols", help="list the training protocols")
    return parser


def _add_train(sub):
    tr = sub.add_parser("train", help="train a model under a protocol (resumes when re-run)")
    tr.add_argument("name", help=MODEL_HELP)
    tr.add_argument("--dataset", help="default: the protocol's")
    tr.add_argument("--protocol", default="fashion_mnist_demo", help="see `kzoo protocols`")
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float, help="base learning rate (overrides the protocol's)")
    tr.add_argument("--validation-size", type=int, help="training images held out for validation")
    _add_protocol_fields(tr)
    add_model_options(tr, "train")
    tr.add_argument(
        "--mixed-precision",
        default="auto",
        help="auto (float16 on GPU, bfloat16 on a CPU with AMX or AVX512_BF16, else float32), float16, "
        "bfloat16, float32",
    )
    tr.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--data-dir", help="TFDS data_dir / folder with the IDX files")
    tr.add_argument("--out", help="run directory (default runs/MODEL-DATASET-PROTOCOL)")
    tr.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    tr.add_argument(
        "--test-curve",
        action="store_true",
        help="also evaluate the test set after every epoch (recorded in epochs.csv, never selected on)",
    )
    tr.add_argument(
        "--no-test",
        dest="test",
        action="store_false",
        help="leave the test set alone (candidates compared on the validation split)",
    )
    tr.add_argument(
        "--activation-log",
        type=int,
        nargs="?",
        const=256,
        help="after every epoch, each activation's zero fraction and FReLU's biases on N validation "
        "images (default 256) into activations.csv/.png",
    )
    tr.add_argument(
        "--workers",
        help="multi-worker training: every worker's host:port, comma-separated, "
        "the same list on each worker (instead of setting TF_CONFIG)",
    )
    tr.add_argument(
        "--task-index", type=int, help="with --workers: this worker's position in the list (0 = chief)"
    )


# Protocol fields a `kzoo train` command may override, beyond --epochs/--batch-size/--lr:
# the schedule and the fast-training tools (each off unless its protocol or flag sets it).
PROTOCOL_FLAGS = (
    ("--schedule", {"help": "step, cosine or onecycle (the protocol's by default)"}),
    ("--warmup-steps", {"type": int, "help": "steps of linear warm-up (onecycle: to its peak)"}),
    ("--weight-decay", {"type": float, "help": "L2 weight decay (the papers' SGD)"}),
    ("--label-smoothing", {"type": float, "help": "label smoothing of the training loss, e.g. 0.1"}),
    ("--ema-decay", {"type": float, "help": "keep, score and save an EMA of the weights, e.g. 0.999"}),
    ("--ema-every", {"type": int, "help": "with --ema-decay: update the average every N steps"}),
    ("--random-erasing", {"type": float, "help": "probability an image has a rectangle erased"}),
    (
        "--alternating-flip",
        {"action": "store_const", "const": True, "help": "flip each image every other epoch (airbench)"},
    ),
    (
        "--lookahead",
        {
            "action": "store_const",
            "const": True,
            "help": "pull the weights to a slow copy every 5 steps (airbench)",
        },
    ),
    ("--tta", {"help": "test-time augmentation of the test scores: flip, flip_translate or multicrop"}),
)


def _add_protocol_fields(parser):
    for flag, settings in PROTOCOL_FLAGS:
        parser.add_argument(flag, **settings)


def protocol_overrides(args):
    """The protocol fields a command's flags set (those given only)."""
    fields = [flag[2:].replace("-", "_") for flag, _ in PROTOCOL_FLAGS]
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    if args.lr is not None:
        overrides["lr"] = args.lr
    return overrides


def _add_evaluate(sub):
    ev = sub.add_parser("evaluate", help="test top-1/top-5 of a .keras file or a run directory")
    ev.add_argument("path", help="a .keras file, or a run directory (its last.keras)")
    ev.add_argument("--dataset", help="default: the run's dataset")
    ev.add_argument("--data-dir")
    ev.add_argument("--batch-size", type=int, default=256)
    ev.add_argument("--tta", help="average the scores over views: flip, flip_translate or multicrop")


def _add_export(sub):
    ex = sub.add_parser(
        "export",
        help="export a run directory, .keras file or SavedModel version: SavedModel (TF Serving), ONNX or LiteRT",
    )
    ex.add_argument(
        "source",
        help="a finished run directory (its last.keras and metrics), a .keras file or a SavedModel "
        "version kzoo exported (BASE/NAME/<version>)",
    )
    ex.add_argument(
        "--base", default="saved_models", help="TF Serving's model base path (default saved_models)"
    )
    ex.add_argument("--name", help="model name, the directory under --base (default: the model's name)")
    ex.add_argument("--version", type=int, help="version number (default: the next free one)")
    ex.add_argument(
        "--dataset",
        help="sets the preprocessing (default: the run's or version's dataset; another one is refused "
        "unless its preprocessing is the same)",
    )
    ex.add_argument("--top-k", type=int, default=5, help="class ids returned per image")
    ex.add_argument("--keras", action="store_true", help="also write model.keras into the version")
    ex.add_argument(
        "--format",
        default="saved_model",
        help="saved_model (TF Serving, the default), onnx (ONNX Runtime) or litert (.tflite)",
    )
    ex.add_argument("--quantize", help="litert only: dynamic_int8, or int8 (calibrated on training images)")
    ex.add_argument("--opset", type=int, help="onnx only: the ONNX opset (default 17)")
    ex.add_argument(
        "--data-dir", help="where the dataset is, for verifying on its test images (never downloaded)"
    )
    ex.add_argument("--no-warmup", action="store_true", help="skip TF Serving's warm-up requests file")
    ex.add_argument(
        "--apply-softmax",
        action="store_true",
        help="the model outputs logits: serve softmax(logits) as the probabilities",
    )


def _add_publish(sub):
    pb = sub.add_parser(
        "publish",
        help="publish finished runs (one per seed) as a pretrained tag: weights, record, SavedModel; "
        "without runs, export a published tag again from its weights",
    )
    pb.add_argument(
        "runs",
        nargs="*",
        help="finished run directories of one command, one per seed (none: export the published --tag "
        "again, a new SavedModel version and companions, from its shipped weights and record)",
    )
    pb.add_argument(
        "--tag", required=True, help="architecture.variant, e.g. resnet20.fashion_mnist_eraserelu"
    )
    pb.add_argument("--weights-dir", help="where the weights and pretrained.json go (default: kzoo/weights)")
    pb.add_argument("--saved-models", help="where the SavedModel and tables go (default saved_models)")
    pb.add_argument("--no-export", action="store_true", help="weights and record only, no SavedModel")
    pb.add_argument("--no-companions", action="store_true", help="SavedModel only, no ONNX/LiteRT")
    pb.add_argument("--data-dir", help="where the dataset is (default: the run's)")
    pb.add_argument(
        "--replace",
        action="store_true",
        help="publish a tag that is already published: its record is replaced and its old weights "
        "file removed (without it, that is refused, saying what would change)",
    )


def _add_tune(sub):
    tu = sub.add_parser(
        "tune",
        help="search erase location/proportion/activation with keras-tuner "
        "(selects on validation; resumes when re-run)",
    )
    tu.add_argument("name", help=MODEL_HELP)
    tu.add_argument("--dataset", help="default: the protocol's")
    tu.add_argument(
        "--protocol", default="fashion_mnist_demo", help="how each trial trains; see `kzoo protocols`"
    )
    tu.add_argument("--tuner", default="random", help="random, grid, bayesian or hyperband")
    tu.add_argument("--max-trials", type=int, help="default: every point of the space (10 if continuous)")
    tu.add_argument("--out", help="search directory (default runs/tune-MODEL-DATASET)")
    tu.add_argument(
        "--locations",
        type=_strings,
        default=("last",),
        help="erase locations, comma-separated ('none' = the original net); default last",
    )
    tu.add_argument(
        "--proportions",
        type=_floats,
        default=(0.25, 0.5, 0.75, 1.0),
        help="fractions of blocks erased, each in (0, 1]; default 0.25,0.5,0.75,1",
    )
    tu.add_argument(
        "--activations",
        type=_strings,
        default=("relu",),
        help="among relu, frelu, prelu, leaky_relu, elu; default relu",
    )
    tu.add_argument(
        "--learning-rates",
        type=_rates,
        help="values (0.05,0.1) or a log range LOW:HIGH (default: the protocol's)",
    )
    tu.add_argument("--weight-decays", type=_rates, help="values or a log range LOW:HIGH")
    tu.add_argument("--epochs", type=int, help="epochs per trial (hyperband: the most a trial trains)")
    tu.add_argument("--batch-size", type=int)
    tu.add_argument("--validation-size", type=int, help="training images held out for selection")
    add_model_options(tu, "tune")
    tu.add_argument(
        "--max-failures", type=int, default=3, help="stop after this many failed trials in a row (default 3)"
    )
    tu.add_argument("--mixed-precision", default="auto")
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--data-dir")
    tu.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
