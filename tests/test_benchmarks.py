"""The benchmark scripts run and the summary is generated from what they measured
(timings are not asserted: speed goals live in the benchmarks' JSON, not in tests)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import precision_xla  # noqa: E402
import serving_latency  # noqa: E402
import summary  # noqa: E402


def test_serving_latency_measures_the_signature_and_the_keras_model(tmp_path):
    result = serving_latency.run(batches=(1, 4), rounds=2, calls=1, warmup=1)
    for batch in ("batch_1", "batch_4"):
        entry = result["latency"][batch]
        for caller in ("saved_model_signature", "keras_predict_on_batch", "keras_call_tf_function"):
            assert len(entry[caller]["rounds"]) == 2 and entry[caller]["ms_per_call"] > 0
        ratio = entry["signature_vs_keras_tf_function"]
        assert ratio["min"] <= ratio["median"] <= ratio["max"]
    text = summary.render({"date": "today", "serving_latency": result})
    assert "## SavedModel serving latency" in text
    median = result["latency"]["batch_4"]["saved_model_signature"]["ms_per_call"]
    assert f"| 4 | {median:.3f} |" in text  # the table is the JSON's numbers
    assert "Not in this run: resnet50_vs_keras, frelu_overhead, input_pipeline, precision_xla." in text


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
