"""Render benchmarks/results/latest.json as Markdown (SUMMARY.md): the summary is
generated from the measured JSON, never written by hand.

    python benchmarks/summary.py [latest.json] [SUMMARY.md]
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _range(r):
    return f"{r['median']:.3f} (rounds {r['min']:.3f} to {r['max']:.3f})"


def _resnet50(r):
    rows = ["| mode | kzoo img/s | keras.applications img/s | kzoo / keras (paired) |", "|---|---|---|---|"]
    for mode in ("inference", "train"):
        m = r[mode]
        rows.append(
            f"| {mode} | {m['kzoo']['images_per_s']:.1f} | {m['keras.applications']['images_per_s']:.1f} "
            f"| {_range(m['ratio_kzoo_over_keras'])} |"
        )
    return (
        f"ResNet-50 at {r['image_size']}x{r['image_size']}, batch {r['batch']}, "
        f"{r['rounds']} interleaved rounds.\n\n" + "\n".join(rows)
    )


def _frelu(r):
    t = r["train"]
    text = (
        f"{r['model']} training steps, batch {r['batch']}, {r.get('precision', 'float32')}, {r['rounds']} rounds: ReLU "
        f"{t['relu']['images_per_s']:.1f} img/s, FReLU {t['frelu']['images_per_s']:.1f} img/s; "
        f"FReLU step-time overhead {_range(r['frelu_step_time_overhead'])} (goal: at most 0.02)."
    )
    if "fixed_bias_step_time_overhead" in r:
        text += (
            f" With its biases frozen (the forward `+ b` alone): {t['frelu_fixed_bias']['images_per_s']:.1f} "
            f"img/s, overhead {_range(r['fixed_bias_step_time_overhead'])}."
        )
    if "xla_frelu_step_time_overhead" in r:
        text += (
            f" With the whole step compiled by XLA: ReLU {t['relu_xla']['images_per_s']:.1f} img/s, FReLU "
            f"{t['frelu_xla']['images_per_s']:.1f} img/s, overhead {_range(r['xla_frelu_step_time_overhead'])}; "
            f"XLA's ReLU throughput over TensorFlow's runtime's: {_range(r['xla_over_runtime_relu'])}."
        )
    if "graph" in r:
        g = r["graph"]
        added = ", ".join(f"{n} {op}" for op, n in g["ops_added_by_frelu"].items() if n > 0)
        fused = g["fused_batchnorm_relu"]
        text += (
            f" In the optimized training step, FReLU's {g['frelu_layers']} layers add {added}; fused batch "
            f"normalisation + ReLU kernels: {fused['relu']} with ReLU, {fused['frelu']} with FReLU."
        )
    return text


def _fused_bn(r):
    t, f = r["train"], r["fused_over_keras"]
    return (
        f"{r['model']} training steps at 28x28, batch {r['batch']}, {r['rounds']} interleaved rounds: "
        f"keras' BatchNormalization {t['float32_keras']['images_per_s']:.0f} img/s (float32) and "
        f"{t['bfloat16_keras']['images_per_s']:.0f} (mixed_bfloat16); kzoo's fused one "
        f"{t['float32_fused']['images_per_s']:.0f} and {t['bfloat16_fused']['images_per_s']:.0f}. "
        f"Fused / keras: float32 {_range(f['float32'])}, bfloat16 {_range(f['bfloat16'])}; "
        f"bfloat16 fused / float32 keras {_range(r['bfloat16_fused_over_float32_keras'])}."
    )


def _grouped_conv(r):
    parts = []
    for case, what in (
        ("conv3x3_512ch_8groups", "a 3x3, 512-channel, 8-group convolution at 16x16"),
        ("resnext_8x8d", f"ResNeXt-{r['depth']} 8x8d at 28x28"),
    ):
        t = r[case]["train"]
        parts.append(
            f"{what}: keras' path (XLA) {t['keras']['images_per_s']:.1f} img/s, kzoo's "
            f"`GroupedConv2D` {t['kzoo']['images_per_s']:.1f} ({_range(r[case]['kzoo_over_keras'])})"
        )
    return (
        f"Float32 training steps, batch {r['batch']}, {r['rounds']} interleaved rounds; "
        + "; ".join(parts)
        + "."
    )


def _pipeline(r):
    return (
        f"{r['images']:,} {r['dataset']} images, batch {r['batch']}, {r['rounds']} rounds: kzoo "
        f"{r['kzoo_img_s']:,.0f} img/s vs a naive per-example pipeline {r['naive_img_s']:,.0f} img/s, "
        f"ratio {r['ratio']:.2f} (rounds {r['ratio_range'][0]:.2f} to {r['ratio_range'][1]:.2f}; goal: 2)."
    )


SERVING_CALLERS = {  # label in serving_latency's JSON: what the row says was timed
    "saved_model_signature": "SavedModel `serving_default` (TensorFlow)",
    "onnxruntime": "model.onnx (ONNX Runtime)",
    "litert": "model.tflite (LiteRT)",
    "litert_dynamic_int8": "model.tflite, dynamic-range int8 (LiteRT)",
    "keras_predict_on_batch": "Keras `predict_on_batch` on normalised floats",
    "keras_call_tf_function": "Keras call in a `tf.function` on normalised floats",
}


def _serving(r):
    rows = ["| batch | runtime | ms per call | / SavedModel signature (paired) |", "|---|---|---|---|"]
    for key, m in r["latency"].items():
        ratios = m.get("vs_saved_model_signature", {})
        for label, name in SERVING_CALLERS.items():
            if label in m:
                if label == "saved_model_signature":
                    ratio = "1"
                else:
                    ratio = _range(ratios[label]) if label in ratios else "-"
                rows.append(f"| {key.split('_')[1]} | {name} | {m[label]['ms_per_call']:.3f} | {ratio} |")
    keras = "; ".join(
        f"batch {key.split('_')[1]} {_range(m['signature_vs_keras_tf_function'])}"
        for key, m in r["latency"].items()
    )
    text = (
        f"{r['model']} exported for {r['dataset']}, uint8 in, preprocessing and top-k in the graph, each "
        f"format through its runtime's own call, against the Keras model on normalised floats; median of "
        f"{r['rounds']} interleaved rounds of {r['calls_per_round']} calls"
        + (f", measured {r['date']}" if "date" in r else "")
        + ".\n\n"
        + "\n".join(rows)
        + f"\n\nSavedModel signature / Keras tf.function call (paired): {keras}."
    )
    if "threads" in r:
        t = r["threads"]
        tf_threads = t["tensorflow_intra_op"] or "default (one per CPU)"
        text += (
            f" Intra-op threads: TensorFlow {tf_threads}, ONNX Runtime {t['onnxruntime_intra_op']}, "
            f"LiteRT {t['litert']}."
        )
    if r.get("checks"):
        checked = []
        for label, c in r["checks"].items():
            if "min_top1_agreement" in c:
                checked.append(
                    f"{label} top-1 agreement {c['top1_agreement']:.1%} (at least "
                    f"{c['min_top1_agreement']:.0%}; max |probability difference| "
                    f"{c['max_abs_diff_probabilities']:.2g})"
                )
            else:
                checked.append(f"{label} max |probability difference| {c['max_abs_diff_probabilities']:.2g}")
        images = next(iter(r["checks"].values()))["images"]
        text += f" Checked against the SavedModel before timing, on {images}: {'; '.join(checked)}."
    return text


def _precision(r):
    if "skipped" in r:
        return f"Skipped: {r['skipped']} (this benchmark needs a GPU; `--force` runs it anyway)."
    out = []
    for m in r["results"]:
        rows = ["| configuration | img/s | speed-up vs float32 (paired) |", "|---|---|---|"]
        for label, t in m["train"].items():
            speedup = m["speedup_vs_float32"].get(label)
            rows.append(f"| {label} | {t['images_per_s']:.1f} | {_range(speedup) if speedup else '1'} |")
        shape = "x".join(map(str, m["input_shape"][:2]))
        out.append(
            f"{m['model']} training steps, batch {m['batch']}, {shape}, {r['rounds']} rounds "
            f"on {', '.join(r['machine']['gpus']) or 'the CPU (forced)'}.\n\n" + "\n".join(rows)
        )
    return "\n\n".join(out)


def _torch_ratio(r):
    if "skipped" in r:
        return f"Skipped: {r['skipped']}."
    rows = ["| precision | kzoo img/s | PyTorch img/s | ratio (kzoo / PyTorch) |", "|---|---|---|---|"]
    for precision, m in r["results"].items():
        p = m["paired_ratio"]
        rows.append(
            f"| {precision} | {m['kzoo']['images_per_s']:.1f} | {m['torch']['images_per_s']:.1f} "
            f"| {m['ratio']:.3f} (rounds {p['min']:.3f} to {p['max']:.3f}) |"
        )
    machine, params = r["machine"], r["trainable_params"]
    flags = ", ".join(machine.get("cpu_flags", [])) or "none of note"
    met = "met" if r["meets_goal"] else "not met"
    return (
        f"kzoo's ResNet-20 trained by Keras' `model.fit` (TensorFlow {machine['tensorflow']}, Keras "
        f"{machine['keras']}) against the same network in PyTorch {machine['torch']} eager, channels_last "
        f"(trainable parameters: kzoo {params['kzoo']:,}, PyTorch {params['torch']:,}): "
        f"{'x'.join(map(str, r['input_shape']))} inputs, batch {r['batch']}, {r['threads']} threads, "
        f"on {machine.get('cpu_model', 'this CPU')} ({flags}); each framework in its own process, "
        f"{r['rounds']} alternating rounds of {r['steps_per_round']} steps per precision. bfloat16: "
        "Keras' `mixed_bfloat16` policy, PyTorch's `torch.autocast`. Ratio: the medians' ratio (the "
        f"per-round ratios' range); goal: at least 1.0 in each precision ({met}).\n\n" + "\n".join(rows)
    )


def _gpu_jax(r):
    m, s = r["machine"], r["settings"]
    target = f"{100 * s['target']:.0f}%"
    rows = [
        f"| model | precision | epochs | img/s | s / epoch | first epoch s | s to {target} "
        "| best test top-1 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    num = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for model, runs in r["results"].items():
        for precision, run in runs.items():
            if run["status"] == "skipped":
                rows.append(f"| {model} | {precision} | {run['stop_reason']} | | | | | |")
                continue
            if run["status"] != "done":  # the command was stopped during this run
                precision += " (unfinished)"
            best = None if run["best_test_accuracy"] is None else 100 * run["best_test_accuracy"]
            reached = run["time_to_target_s"]
            rows.append(
                f"| {model} | {precision} | {run['epochs_run']} | {num(run['images_per_s'], ',.0f')} "
                f"| {num(run['seconds_per_epoch'], '.1f')} | {num(run['first_epoch_s'], '.1f')} "
                f"| {'not reached' if reached is None else format(reached, '.0f')} "
                f"| {num(best, '.2f')} |"
            )
    return (
        f"`benchmarks/gpu_jax.py` ({r['date']}) on {', '.join(m['gpus']) or m['device_kind']}: Keras "
        f"{m['keras']} on JAX {m['jax']}, Python {m['python']}; {s['train_images']:,} Fashion-MNIST "
        f"training images, batch {s['batch_size']}, {s['epochs']}-epoch schedule, {s['budget_s']:.0f} s "
        "budget; first epoch includes XLA compilation.\n\n" + "\n".join(rows)
    )


def _model_speed(r):
    rows = [
        "| model | input | params | GFLOPs | inference img/s fp32 | bf16 | train img/s fp32 | bf16 "
        "| train ms/step fp32 | bf16 / fp32 train |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in r["rows"]:
        rows.append(
            f"| {m['model']} | {'x'.join(map(str, m['input_shape']))} | {m['params'] / 1e6:.2f}M "
            f"| {m['gflops_per_image']:.3g} | {m['inference_float32_img_s']:.1f} "
            f"| {m['inference_bfloat16_img_s']:.1f} | {m['train_float32_img_s']:.1f} "
            f"| {m['train_bfloat16_img_s']:.1f} | {m['train_float32_ms_per_step']:.0f} "
            f"| {m['train_bfloat16_over_float32']:.2f} |"
        )
    cpu = r["machine"].get("cpu_model", "this CPU")
    pattern = r.get("models", "*")
    which = (
        "Every registered model"
        if pattern == "*"
        else f"{len(r['rows'])} registered models (`--models {pattern}`), each"
    )
    if not r.get("complete", True):
        which = (
            f"An interrupted run's {len(r['rows'])} models (`benchmarks/model_speed.py --write-results "
            "--resume` measures the rest), each"
        )
    when = f", {r['date']}" if "date" in r else ""
    return (
        f"{which} at its own input size, batch {r['batch']}, on {cpu}{when} "
        f"({r['machine'].get('cpus', '?')} cores); median of {r['rounds']} interleaved rounds of "
        f"about {r['seconds_per_round']:g} s per precision (`benchmarks/model_speed.py`, "
        f"{r['wall_seconds'] / 60:.0f} min). GFLOPs: one image's forward pass (convolutions and dense "
        "layers; training is about 3x). bf16: Keras' `mixed_bfloat16` policy.\n\n" + "\n".join(rows)
    )


SECTIONS = {
    "resnet50_vs_keras": ("kzoo vs keras.applications: ResNet-50 throughput", _resnet50),
    "frelu_overhead": ("FReLU overhead", _frelu),
    "fused_batchnorm": ("Fused batch normalisation", _fused_bn),
    "grouped_conv": ("Grouped convolutions (ResNeXt)", _grouped_conv),
    "model_speed": ("Speed of every model (CPU, batch 32)", _model_speed),
    "input_pipeline": ("Input pipeline", _pipeline),
    "serving_latency": ("Serving latency: SavedModel, ONNX Runtime, LiteRT", _serving),
    "precision_xla": ("Mixed precision and XLA (GPU)", _precision),
    "torch_ratio": ("kzoo vs PyTorch: ResNet-20 training throughput (CPU)", _torch_ratio),
}
# Benchmarks run apart from `make bench` (on a GPU machine), each its own JSON beside
# latest.json: rendered when present, never listed as missing.
APART = {"gpu_jax": ("Keras on JAX, GPU: throughput and time to accuracy", _gpu_jax)}
# Benchmarks of `make bench` that keep their own JSON beside latest.json (model_speed
# rewrites its file after every model, so an interrupted run keeps its rows).
OWN_FILE = ("model_speed",)


def render(results):
    machine = next(
        (
            r["machine"]
            for k, r in results.items()
            if k not in APART and isinstance(r, dict) and "machine" in r
        ),
        {},
    )
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `benchmarks/summary.py` from `latest.json` (`make bench`, {results.get('date', '?')}); "
        f"{machine.get('cpus', '?')} CPUs, GPUs: {', '.join(machine.get('gpus', [])) or 'none'}, "
        f"TensorFlow {machine.get('tensorflow', '?')}, Keras {machine.get('keras', '?')}.",
        "",
    ]
    for key, (title, fmt) in SECTIONS.items():
        if key in results:
            lines += [f"## {title}", "", fmt(results[key]), ""]
    missing = [k for k in SECTIONS if k not in results]
    if missing:
        lines += [f"Not in this run: {', '.join(missing)}.", ""]
    for key, (title, fmt) in APART.items():
        if key in results:
            lines += [f"## {title}", "", fmt(results[key]), ""]
    return "\n".join(lines)


def write(results, path):
    """SUMMARY.md at ``path``, with the JSONs of the APART and OWN_FILE benchmarks found
    beside it (a file there wins over a part of ``results`` of the same name)."""
    from kzoo import atomic  # here: rendering needs no Keras

    for key in (*OWN_FILE, *APART):
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), f"{key}.json")
        if (key in OWN_FILE or key not in results) and os.path.exists(beside):
            with open(beside) as f:
                results = {**results, key: json.load(f)}
    atomic.write_text(path, render(results))


def save(results, folder):
    """``results`` as ``folder``/latest.json (written whole, then renamed into place) and
    SUMMARY.md generated from it beside it."""
    from kzoo import atomic

    os.makedirs(folder, exist_ok=True)
    atomic.write_text(os.path.join(folder, "latest.json"), json.dumps(results, indent=2) + "\n")
    write(results, os.path.join(folder, "SUMMARY.md"))


RESULTS = os.path.join(HERE, "results")


def update(key, result, folder=RESULTS):
    """Replace the ``key`` part of ``folder``/latest.json with ``result`` (a benchmark run
    on its own; the others' parts kept) and regenerate SUMMARY.md."""
    save({**_latest(folder), key: result}, folder)


def _latest(folder):
    """``folder``/latest.json's results ({} when there is none yet)."""
    path = os.path.join(folder, "latest.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write_summary(folder=RESULTS):
    """Regenerate ``folder``/SUMMARY.md from the JSONs there."""
    write(_latest(folder), os.path.join(folder, "SUMMARY.md"))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    source = argv[0] if argv else os.path.join(HERE, "results", "latest.json")
    target = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(source), "SUMMARY.md")
    with open(source) as f:
        write(json.load(f), target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
