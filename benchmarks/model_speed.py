"""Inference and training speed of every registered model on this machine's CPU, at
batch 32 and the model's own input size, in float32 and mixed_bfloat16: the table
keras.applications gives as ms per step, with each model's parameters and operations.

The two precisions of a model are timed in interleaved rounds, so their ratio is measured
under one machine load. Each precision's step function is called once untimed (the call
that traces it); each round then calls it until about ``--seconds`` have passed (at least
once), so a model whose step takes longer than that costs one call per round.

Results go to benchmarks/results/model_speed.json, rewritten after every model: a run
that is interrupted keeps the rows it finished, and ``--resume`` measures only the models
that file lacks for the same settings and machine. ``make bench`` runs every model.

    python benchmarks/model_speed.py --write-results              # every model
    python benchmarks/model_speed.py --write-results --resume     # finish an interrupted run
    python benchmarks/model_speed.py --models 'resnet[235]*' --rounds 2
"""

import argparse
import fnmatch
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from timing import interleaved_for, machine  # noqa: E402

import kzoo  # noqa: E402
from kzoo import atomic  # noqa: E402
from kzoo.training.precision import dtype_policy  # noqa: E402

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def _build(name, policy):
    with dtype_policy(policy):
        keras.utils.set_random_seed(0)
        model = kzoo.create_model(name)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy"
        )
        return model


def _time_pair(fns, batch, rounds, seconds):
    """img/s of each labelled step function: one untimed call (it traces), then
    ``rounds`` rounds, the functions taking turns, each round calling one function until
    ``seconds`` have passed (at least once)."""
    for fn in fns.values():
        fn()
    samples = interleaved_for(fns, rounds, seconds)
    return {
        label: {
            "images_per_s": round(statistics.median(batch * n / t for n, t in v), 2),
            "ms_per_step": round(1000 * statistics.median(t / n for n, t in v), 1),
            "rounds": [round(batch * n / t, 2) for n, t in v],
        }
        for label, v in samples.items()
    }


def measure(name, batch=32, rounds=2, seconds=1.5):
    """One row: the model's shape, size and operations, and its speeds."""
    start = time.perf_counter()
    info = kzoo.model_info(name)
    models = {label: _build(name, policy) for label, policy in PRECISIONS.items()}
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *info.input_shape)).astype("float32")
    y = rng.integers(0, info.classes, (batch,))
    row = {
        "model": name,
        "input_shape": list(info.input_shape),
        "classes": info.classes,
        "params": kzoo.trainable_params(models["float32"]),
        "gflops_per_image": round(kzoo.forward_flops(models["float32"]) / 1e9, 4),
    }
    for mode in ("inference", "train"):
        if mode == "inference":
            fns = {label: (lambda m=m: m.predict_on_batch(x)) for label, m in models.items()}
        else:
            fns = {label: (lambda m=m: m.train_on_batch(x, y)) for label, m in models.items()}
        speed = _time_pair(fns, batch, rounds, seconds)
        for label in PRECISIONS:
            row[f"{mode}_{label}_img_s"] = speed[label]["images_per_s"]
            row[f"{mode}_{label}_ms_per_step"] = speed[label]["ms_per_step"]
        ratios = [b / f for b, f in zip(speed["bfloat16"]["rounds"], speed["float32"]["rounds"])]
        row[f"{mode}_bfloat16_over_float32"] = round(statistics.median(ratios), 3)
    keras.backend.clear_session()
    row["seconds"] = round(time.perf_counter() - start, 1)  # what the row cost, builds and traces included
    return row


RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "model_speed.json")


def _settings(pattern, batch, rounds, seconds):
    return {"batch": batch, "rounds": rounds, "seconds_per_round": seconds, "models": pattern}


def _resumable(path, settings, here):
    """The rows of ``path`` measured with ``settings`` on this machine (``here``), by model."""
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        old = json.load(f)
    same = all(old.get(k) == v for k, v in settings.items() if k != "models")
    if not same or old.get("machine") != here:
        return {}
    return {r["model"]: r for r in old.get("rows", [])}


def _record(result, path, complete):
    """Stamp ``result`` (its cost so far, whether every model is in) and, with ``path``,
    write it there whole."""
    result["wall_seconds"] = round(sum(r.get("seconds", 0) for r in result["rows"]), 1)
    result["complete"] = complete
    result.setdefault("date", time.strftime("%Y-%m-%d %H:%M:%S"))
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic.write_text(path, json.dumps(result, indent=2) + "\n")


def measure_apart(name, batch, rounds, seconds):
    """``measure`` in a process of its own: TensorFlow keeps memory a model used after it is
    gone, so 43 models in one process outgrow 24 GiB (the ImageNet-size ResNets' training
    steps take several each); a process per model starts each from nothing."""
    argv = [sys.executable, os.path.abspath(__file__), "--row", name, "--batch", str(batch)]
    argv += ["--rounds", str(rounds), "--seconds", str(seconds)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        why = " (killed: out of memory?)" if done.returncode in (-9, 137) else ""
        raise RuntimeError(f"timing {name} failed with exit status {done.returncode}{why}:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _matching(names, pattern):
    patterns = pattern.split(",")
    return [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]


def run(
    pattern="*",
    batch=32,
    rounds=2,
    seconds=1.5,
    verbose=True,
    write=None,
    resume=False,
    apart=False,
    first=None,
):
    """Every model matching ``pattern`` (fnmatch patterns, comma-separated). With
    ``write`` (a path), the result is rewritten there after each model; with ``resume``,
    the rows already there for the same settings and machine are kept, not measured again;
    with ``apart``, each model is timed in a process of its own (``measure_apart``); with
    ``first`` (patterns), the models it matches are measured before the others (a run cut
    short then lacks the others). Rows stay in the registry's order."""
    names = _matching(kzoo.list_models(), pattern)
    if not names:
        raise ValueError(f"`pattern`={pattern!r} matches no registered model (see `kzoo list`)")
    if resume and not write:
        raise ValueError("`resume` needs `write`: the file whose rows it continues")
    here, settings = machine(), _settings(pattern, batch, rounds, seconds)
    done = _resumable(write, settings, here) if resume else {}
    rows = {n: done[n] for n in names if n in done}
    early = _matching(names, first) if first else []
    for part in first.split(",") if first else []:
        if not _matching(names, part):  # a typo would silently measure in the usual order
            raise ValueError(f"`first` pattern {part!r} matches none of the models {pattern!r} selects")
    todo = [n for n in dict.fromkeys(early + names) if n not in rows]
    start = time.perf_counter()
    result = {"benchmark": "model_speed", **settings, "rows": [], "machine": here}
    for count, name in enumerate(todo, 1):
        rows[name] = (measure_apart if apart else measure)(name, batch, rounds, seconds)
        result["rows"] = [rows[n] for n in names if n in rows]
        result["date"] = time.strftime("%Y-%m-%d %H:%M:%S")  # of the latest row measured
        if count < len(todo):
            _record(result, write, complete=False)  # the last one is recorded below
        if verbose:
            r = rows[name]
            print(
                f"[{count}/{len(todo)}, {(time.perf_counter() - start) / 60:.1f} min] {name}: inference "
                f"{r['inference_float32_img_s']:.1f} / {r['inference_bfloat16_img_s']:.1f} img/s, train "
                f"{r['train_float32_img_s']:.1f} / {r['train_bfloat16_img_s']:.1f} img/s (float32 / bfloat16), "
                f"{r['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    result["rows"] = [rows[n] for n in names if n in rows]
    _record(result, write, complete=True)
    return result


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default="*", help="fnmatch patterns over the registered names, comma-separated"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5, help="about how long each timed round lasts")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="write benchmarks/results/model_speed.json (after every model) and regenerate SUMMARY.md",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --write-results: keep that file's rows for the same settings and machine",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="time every model in this process, not one process each"
    )
    parser.add_argument("--first", help="fnmatch patterns of the models to measure before the others")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # measure_apart's child: one model's row as JSON
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(args.row, args.batch, args.rounds, args.seconds)))
        return
    if args.resume and not args.write_results:
        parser.error("--resume needs --write-results")
    result = run(
        args.models,
        args.batch,
        args.rounds,
        args.seconds,
        write=RESULT if args.write_results else None,
        resume=args.resume,
        apart=not args.in_process,
        first=args.first,
    )
    if args.write_results:
        import summary

        summary.write_summary()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
