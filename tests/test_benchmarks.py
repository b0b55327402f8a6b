"""The benchmark scripts run and the summary is generated from what they measured
(timings are not asserted: speed goals live in the benchmarks' JSON, not in tests)."""

import json
import os
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import frelu_overhead  # noqa: E402
import fused_batchnorm  # noqa: E402
import grouped_conv  # noqa: E402
import model_speed  # noqa: E402
import precision_xla  # noqa: E402
import serving_latency  # noqa: E402
import summary  # noqa: E402
import torch_ratio  # noqa: E402


def test_serving_latency_times_every_runtime_checked_against_the_saved_model(tmp_path):
    result = serving_latency.run("smallnet", batches=(1, 4), rounds=2, calls=1, warmup=1, threads=1)
    callers = (
        "saved_model_signature",
        "keras_predict_on_batch",
        "keras_call_tf_function",
        *serving_latency.RUNTIMES,
    )
    for batch in ("batch_1", "batch_4"):
        entry = result["latency"][batch]
        for caller in callers:
            assert len(entry[caller]["rounds"]) == 2 and entry[caller]["ms_per_call"] > 0
        assert set(entry["vs_saved_model_signature"]) == set(callers) - {"saved_model_signature"}
        for ratio in (entry["signature_vs_keras_tf_function"], *entry["vs_saved_model_signature"].values()):
            assert ratio["min"] <= ratio["median"] <= ratio["max"]
        for label in (
            "onnxruntime",
            "litert",
        ):  # the float runtimes answer as the SavedModel on what is timed
            assert entry["checks"][label]["max_abs_diff_probabilities"] <= serving_latency.FLOAT_TOLERANCE
    checks = result["checks"]
    assert checks["litert_dynamic_int8"]["top1_agreement"] >= serving_latency.QUANTIZED_MIN_AGREEMENT
    assert checks["onnxruntime"]["max_abs_diff_probabilities"] <= serving_latency.FLOAT_TOLERANCE
    assert result["threads"]["onnxruntime_intra_op"] == result["threads"]["litert"] == 1
    text = summary.render({"date": "today", "serving_latency": result})
    assert "## Serving latency: SavedModel, ONNX Runtime, LiteRT" in text
    for label, name in summary.SERVING_CALLERS.items():  # the table is the JSON's numbers
        assert f"| 4 | {name} | {result['latency']['batch_4'][label]['ms_per_call']:.3f} |" in text
    assert "litert_dynamic_int8 top-1 agreement" in text
    assert (
        "Not in this run: resnet50_vs_keras, frelu_overhead, fused_batchnorm, grouped_conv, model_speed, "
        "input_pipeline, precision_xla, torch_ratio." in text
    )


def test_serving_latency_refuses_to_time_a_runtime_that_answers_differently():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(10), 20).astype("float32")
    reference = {"probabilities": probabilities, "classes": np.argsort(-probabilities, axis=1)[:, :5]}
    close = {**reference, "probabilities": probabilities + 1e-6}
    assert serving_latency._check("onnxruntime", False, close, reference, "x")["top1_agreement"] == 1.0
    off = {**reference, "probabilities": probabilities + 1e-3}
    with pytest.raises(RuntimeError, match="onnxruntime disagrees with the SavedModel"):
        serving_latency._check("onnxruntime", False, off, reference, "x")
    shuffled = {"probabilities": probabilities, "classes": np.roll(reference["classes"], 1, axis=0)}
    with pytest.raises(RuntimeError, match="top-1 class on only"):
        serving_latency._check("litert_dynamic_int8", True, shuffled, reference, "x")
    # on a batch too small for a rate, a quantised runtime's agreement is reported, not required
    assert (
        serving_latency._check("litert_dynamic_int8", True, shuffled, reference, "x", False)["top1_agreement"]
        < 1
    )


def test_summary_writes_markdown_from_a_results_file(tmp_path):
    committed = os.path.join(os.path.dirname(summary.__file__), "results", "latest.json")
    if not os.path.exists(committed):
        pytest.skip("no benchmarks/results/latest.json")
    target = tmp_path / "SUMMARY.md"
    summary.main([committed, str(target)])
    text = target.read_text()
    assert text.startswith("# Benchmarks") and "kzoo vs keras.applications" in text


def test_precision_xla_skips_without_a_gpu_and_runs_when_forced():
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        skipped = precision_xla.run()
        assert "skipped" in skipped and "skipped" in summary.render({"precision_xla": skipped}).lower()
    # Forced on any machine at a tiny size: every configuration trains, speed-ups are paired.
    result = precision_xla.run(rounds=2, steps=1, force=True, models={"smallnet_bn": (2, (32, 32, 3), 100)})
    entry = result["results"][0]
    assert set(entry["train"]) == set(precision_xla.CONFIGS)
    assert set(entry["speedup_vs_float32"]) == set(precision_xla.CONFIGS) - {"float32"}
    for t in entry["train"].values():
        assert len(t["rounds"]) == 2 and t["images_per_s"] > 0
    text = summary.render({"precision_xla": result})
    assert f"| mixed_float16+xla | {entry['train']['mixed_float16+xla']['images_per_s']:.1f} |" in text


def test_model_speed_rows_and_their_table(tmp_path):
    result = model_speed.run("resnet20", rounds=1, seconds=0.01, verbose=False)
    (row,) = result["rows"]
    assert row["model"] == "resnet20" and row["input_shape"] == [32, 32, 3] and row["params"] == 269722
    assert row["gflops_per_image"] == pytest.approx(2 * 40.55104e6 / 1e9, rel=1e-3)
    for key in (
        "inference_float32_img_s",
        "inference_bfloat16_img_s",
        "train_float32_img_s",
        "train_bfloat16_img_s",
    ):
        assert row[key] > 0
    assert result["machine"]["cpu_model"] and result["complete"]
    summary.update("model_speed", result, str(tmp_path))
    text = (tmp_path / "SUMMARY.md").read_text()
    assert "| resnet20 | 32x32x3 | 0.27M | 0.0811 |" in text
    with pytest.raises(ValueError, match="`pattern`"):
        model_speed.run("nothing*", verbose=False)
    with pytest.raises(ValueError, match="`resume`"):
        model_speed.run("resnet20", verbose=False, resume=True)


def test_model_speed_keeps_its_rows_in_its_own_file_and_resumes(tmp_path):
    """Rewritten after every model; --resume keeps the rows measured with the same
    settings and machine and measures only the rest; other settings start afresh."""
    path = str(tmp_path / "model_speed.json")
    quick = {"rounds": 1, "seconds": 0.01, "verbose": False, "write": path}
    model_speed.run("smallnet_bn", **quick)
    first = json.loads(open(path).read())
    assert [r["model"] for r in first["rows"]] == ["smallnet_bn"] and first["complete"]
    both = model_speed.run("resnet20,smallnet_bn", resume=True, **quick)
    assert [r["model"] for r in both["rows"]] == ["resnet20", "smallnet_bn"]  # the registry's order
    assert both["rows"][1] == first["rows"][0]  # kept, not measured again
    assert json.loads(open(path).read())["rows"] == both["rows"]
    other = model_speed.run("smallnet_bn", resume=True, **{**quick, "seconds": 0.02})
    assert other["rows"][0] != first["rows"][0]  # other settings: measured again
    # an interrupted run's file renders as such in the summary (which reads it from beside latest.json)
    partial = {**first, "complete": False}
    (tmp_path / "model_speed.json").write_text(json.dumps(partial))
    summary.save({"date": "today"}, str(tmp_path))
    text = (tmp_path / "SUMMARY.md").read_text()
    assert "An interrupted run's 1 models" in text and "| smallnet_bn |" in text
    assert "Not in this run" in text and "model_speed" not in text.split("Not in this run")[1]


def test_model_speed_measures_first_what_it_is_told_and_keeps_the_registry_order(tmp_path, monkeypatch):
    order = []

    def measure(name, batch, rounds, seconds):
        order.append(name)
        speeds = {f"{m}_{p}_img_s": 1.0 for m in ("inference", "train") for p in ("float32", "bfloat16")}
        return {"model": name, "seconds": 0.0, **speeds}

    monkeypatch.setattr(model_speed, "measure", measure)
    path = str(tmp_path / "model_speed.json")
    result = model_speed.run("resnet2*,smallnet*", verbose=False, write=path, first="smallnet_bn,resnet200")
    assert order == [
        "resnet200",
        "smallnet_bn",
        "resnet20",
        "resnet200v2",
        "smallnet",
    ]  # first, in registry order
    assert [r["model"] for r in result["rows"]] == [
        "resnet20",
        "resnet200",
        "resnet200v2",
        "smallnet",
        "smallnet_bn",
    ]
    assert json.loads(open(path).read())["rows"] == result["rows"] and result["complete"]
    order.clear()
    model_speed.run("resnet2*,smallnet*", verbose=False, write=path, resume=True, first="smallnet")
    assert order == []  # every row was there
    with pytest.raises(ValueError, match="`first` pattern 'vgg\\*' matches none"):
        model_speed.run("resnet2*,smallnet*", verbose=False, first="smallnet,vgg*")
    assert order == []  # refused before measuring anything


def test_model_speed_apart_times_each_model_in_its_own_process(monkeypatch):
    """What a process of its own measures is the row measure gives (the same keys and
    model facts); a child that fails is an error naming the model, not a silent gap."""
    (row,) = model_speed.run("smallnet_bn", rounds=1, seconds=0.01, verbose=False, apart=True)["rows"]
    here = model_speed.measure("smallnet_bn", rounds=1, seconds=0.01)
    assert set(row) == set(here) and row["params"] == here["params"] and row["train_float32_img_s"] > 0
    monkeypatch.setattr(model_speed.sys, "executable", "false")
    with pytest.raises(RuntimeError, match="timing smallnet_bn failed with exit status 1"):
        model_speed.measure_apart("smallnet_bn", 32, 1, 0.01)


def test_fused_batchnorm_times_both_layers_in_both_precisions():
    result = fused_batchnorm.run(batch=8, rounds=1, steps=1)
    assert set(result["train"]) == {"float32_keras", "float32_fused", "bfloat16_keras", "bfloat16_fused"}
    assert set(result["fused_over_keras"]) == {"float32", "bfloat16"}
    assert "Fused / keras" in summary._fused_bn(result)


def test_grouped_conv_times_kzoo_and_keras_paths(monkeypatch):
    monkeypatch.setattr(grouped_conv, "LAYER_INPUT", (8, 8, 32))
    result = grouped_conv.run(batch=4, rounds=1, steps=1, depth=11)
    for case in ("conv3x3_512ch_8groups", "resnext_8x8d"):
        assert set(result[case]["train"]) == {"kzoo", "keras"}
        assert result[case]["kzoo_over_keras"]["median"] > 0
    assert "kzoo's `GroupedConv2D`" in summary._grouped_conv(result)


def test_frelu_overhead_splits_the_forward_add_from_training_the_bias():
    result = frelu_overhead.run(batch=4, rounds=2, steps=1, model="resnet20")
    assert set(result["train"]) == {"relu", "frelu", "frelu_fixed_bias"}
    for key in ("frelu_step_time_overhead", "fixed_bias_step_time_overhead"):
        assert result[key]["min"] <= result[key]["median"] <= result[key]["max"]
    g = result["graph"]
    # ResNet-20's 19 activations: each FReLU adds its `+ b`, and its bias's gradient (a sum).
    assert g["frelu_layers"] == 19
    assert g["ops_added_by_frelu"]["AddV2"] == g["ops_added_by_frelu"]["Sum"] == 19
    assert g["fused_batchnorm_relu"]["frelu"] == g["fused_batchnorm_relu"]["relu"] > 0
    text = summary._frelu(result)
    assert "FReLU step-time overhead" in text and "With its biases frozen" in text
    assert (
        "19 AddV2" in text and "fused batch normalisation + ReLU kernels: 10 with ReLU, 10 with FReLU" in text
    )


def test_frelu_overhead_in_bfloat16_builds_every_net_in_it_and_leaves_the_policy():
    result = frelu_overhead.run(batch=4, rounds=1, steps=1, model="resnet20", precision="bfloat16")
    assert result["precision"] == "mixed_bfloat16" and result["graph"]["compute_dtype"] == "bfloat16"
    assert set(result["train"]) == {"relu", "frelu", "frelu_fixed_bias"}
    assert "batch 4, mixed_bfloat16," in summary._frelu(result)
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="precision='float16': expected one of float32, bfloat16"):
        frelu_overhead.run(precision="float16")


def test_frelu_overhead_with_xla_times_both_nets_compiled_whole():
    result = frelu_overhead.run(batch=4, rounds=2, steps=1, model="resnet20", xla=True)
    t = result["train"]
    assert set(t) == {"relu", "frelu", "frelu_fixed_bias", "relu_xla", "frelu_xla"}
    # paired per round: XLA's throughput over the runtime's, FReLU's step time over ReLU's
    ratios = [a / b for a, b in zip(t["relu_xla"]["rounds"], t["relu"]["rounds"])]
    assert result["xla_over_runtime_relu"]["min"] == pytest.approx(min(ratios), abs=1e-3)
    over = [a / b - 1 for a, b in zip(t["relu_xla"]["rounds"], t["frelu_xla"]["rounds"])]
    assert result["xla_frelu_step_time_overhead"]["max"] == pytest.approx(max(over), abs=1e-3)
    assert "With the whole step compiled by XLA" in summary._frelu(result)
    plain = {k: v for k, v in result.items() if not k.startswith("xla_")}
    assert "XLA" not in summary._frelu(plain)


@pytest.mark.skipif(
    not os.access(torch_ratio.TORCH_PYTHON, os.X_OK), reason=".venv-torch is missing (make test-torch)"
)
def test_torch_ratio_times_kzoo_and_the_same_resnet20_in_pytorch():
    import kzoo

    result = torch_ratio.run(batch=8, rounds=1, steps=1, warmup=1)
    # The same network: kzoo's trainable count, from its Keras process and from this one, is PyTorch's.
    kzoo_net = kzoo.ResNet20(input_shape=(28, 28, 1), classes=10)
    here = int(sum(np.prod(v.shape) for v in kzoo_net.trainable_weights))
    assert result["trainable_params"] == {"kzoo": here, "torch": here}
    assert result["input_shape"] == [28, 28, 1] and result["classes"] == 10 and result["threads"] == 2
    assert set(result["results"]) == {"float32", "bfloat16"}
    for precision, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16")):
        m = result["results"][precision]
        assert m["kzoo"]["policy"] == policy and m["kzoo"]["keras_backend"] == "tensorflow"
        assert m["torch"]["autocast"] == (None if precision == "float32" else "bfloat16")
        assert m["torch"]["num_threads"] == 2 and m["torch"]["memory_format"] == "channels_last"
        for side in ("kzoo", "torch"):
            assert len(m[side]["rounds"]) == 1 and m[side]["images_per_s"] > 0
            assert m[side]["trainable_params"] == here
        assert m["ratio"] == pytest.approx(m["kzoo"]["images_per_s"] / m["torch"]["images_per_s"], rel=1e-2)
        assert m["paired_ratio"]["min"] <= m["paired_ratio"]["median"] <= m["paired_ratio"]["max"]
        assert m["meets_goal"] == (m["ratio"] >= 1.0)
    assert result["meets_goal"] == all(m["meets_goal"] for m in result["results"].values())
    machine = result["machine"]
    assert machine["cpu_model"] and "cpu_flags" in machine and machine["torch"] and machine["tensorflow"]
    text = summary.render({"torch_ratio": result})
    assert "## kzoo vs PyTorch: ResNet-20 training throughput (CPU)" in text
    f32 = result["results"]["float32"]
    assert f"| float32 | {f32['kzoo']['images_per_s']:.1f} | {f32['torch']['images_per_s']:.1f} |" in text


def test_torch_ratio_reports_itself_skipped_without_pytorch(tmp_path):
    skipped = torch_ratio.run(torch_python=str(tmp_path / "python"))
    assert "is missing" in skipped["skipped"] and skipped["machine"]["cpu_model"]
    assert "Skipped: no PyTorch environment" in summary.render({"torch_ratio": skipped})
    with pytest.raises(ValueError, match="precisions='float16'"):
        torch_ratio.run(precisions="float16")
