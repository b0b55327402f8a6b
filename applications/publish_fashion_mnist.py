"""Train and publish kzoo's Fashion-MNIST pretrained tags with the fastest recipe
(results/time_to_accuracy/before-the-rules/fastest.json): ResNet-20 as published, with EraseReLU, with
FReLU and as the 2:1 pre-activation proportional net, three seeds each (the median seed
ships), and ResNet-56 with EraseReLU (one seed). Each tag gets its weights and record
(kzoo/weights), a SavedModel with ONNX/LiteRT companions and the generated tables
(saved_models/), through ``kzoo publish``.

    python applications/publish_fashion_mnist.py [--only 'resnet20.*'] [--seeds 0,1,2]

Runs go to ``runs/publish/<tag>/seed<k>``; re-running resumes an unfinished run and
reuses finished ones. A tag kzoo already ships from the same commands and seeds is not
published again; one it ships from others is replaced only with ``--replace`` (``kzoo
publish`` refuses it otherwise, saying what would change).
"""

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kzoo import cli  # noqa: E402

# The fastest recipe (time_to_accuracy's fastest.json), trained on all 60k images.
RECIPE = (
    "--dataset fashion_mnist --protocol fashion_mnist_cpu --epochs 14 --mixed-precision bfloat16 "
    "--label-smoothing 0.1 --tta flip --validation-size 0 --quiet"
)
# tag: (architecture, builder options as `kzoo train` flags, seeds)
TAGS = {
    "resnet20.fashion_mnist": ("resnet20", "", 3),
    "resnet20.fashion_mnist_eraserelu": ("resnet20", "--erase last", 3),
    "resnet20.fashion_mnist_frelu": ("resnet20", "--activation frelu", 3),
    "resnet20.fashion_mnist_2to1": ("resnet20", "--preact --erase first", 3),
    "resnet56.fashion_mnist_eraserelu": ("resnet56", "--erase last", 1),
}


def train_command(tag, seed, runs):
    architecture, options, _ = TAGS[tag]
    out = os.path.join(runs, tag, f"seed{seed}")
    return f"kzoo train {architecture} {options} {RECIPE} --seed {seed} --out {out}".replace("  ", " "), out


def published_from(tag, seeds, runs):
    """Whether kzoo ships ``tag`` from these runs: its record lists these seeds, and its
    shipped seed's command is the one this script runs for it."""
    from kzoo.models import pretrained

    record = pretrained.read_manifest().get(tag)
    return (
        record is not None
        and sorted(s["seed"] for s in record.seeds) == sorted(seeds)
        and record.command == train_command(tag, record.source["seed"], runs)[0]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="*", help="fnmatch pattern of the tags to train and publish")
    parser.add_argument("--seeds", help="comma-separated seeds (default: each tag's count, from 0)")
    parser.add_argument("--runs", default=os.path.join("runs", "publish"))
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--train-only", action="store_true", help="train the runs, publish nothing")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace a tag kzoo ships from other runs (kzoo publish --replace)",
    )
    args = parser.parse_args(argv)
    import fnmatch

    tags = [t for t in TAGS if fnmatch.fnmatchcase(t, args.only)]
    if not tags:
        parser.error(f"--only {args.only!r} matches none of {', '.join(TAGS)}")
    for tag in tags:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(range(TAGS[tag][2]))
        outs = []
        for seed in seeds:
            command, out = train_command(tag, seed, args.runs)
            print(f"{tag} seed {seed}: {command}", flush=True)
            code = cli.main(shlex.split(command)[1:])
            if code:
                return code
            outs.append(out)
        if args.train_only:
            continue
        if published_from(tag, seeds, args.runs):
            print(f"{tag}: kzoo ships it from these runs already; not published again", flush=True)
            continue
        code = cli.main(
            ["publish", *outs, "--tag", tag, "--saved-models", args.saved_models]
            + ["--replace"] * args.replace
        )
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
