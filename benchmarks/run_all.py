"""Run every benchmark, print one JSON document and keep it in benchmarks/results/
(latest.json; SUMMARY.md generated from it and model_speed.json). ``make bench`` runs
these, about 3 minutes on 2 cores and 1 to 2 more for torch_ratio (kzoo vs PyTorch, when
.venv-torch is there); the speed table of every model (model_speed.py, about
45 minutes, resumable) is ``make bench-models``, or ``--models`` here."""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import frelu_overhead  # noqa: E402
import fused_batchnorm  # noqa: E402
import grouped_conv  # noqa: E402
import input_pipeline  # noqa: E402
import model_speed  # noqa: E402
import precision_xla  # noqa: E402
import resnet50_vs_keras  # noqa: E402
import serving_latency  # noqa: E402
import summary  # noqa: E402
import torch_ratio  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", action="store_true", help="also time every model (model_speed.py, ~45 min), last"
    )
    args = parser.parse_args(argv)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "resnet50_vs_keras": resnet50_vs_keras.run(),
        "frelu_overhead": frelu_overhead.run(),
        "fused_batchnorm": fused_batchnorm.run(),
        "grouped_conv": grouped_conv.run(),
        "input_pipeline": input_pipeline.run(),
        "serving_latency": serving_latency.run(),
        "precision_xla": precision_xla.run(),  # reports itself skipped without a GPU
        "torch_ratio": torch_ratio.run(),  # ... and this one without .venv-torch
    }
    summary.save(results, summary.RESULTS)
    if args.models:  # the longest last, in its own file (rewritten after every model)
        results["model_speed"] = model_speed.run(write=model_speed.RESULT, resume=True, apart=True)
    summary.write_summary()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
