"""`make demo`: build kzoo's models the way a user would and show what the ReLU
placement options change. (Training arrives with the trainer; this builds, summarises
and runs a forward pass on Fashion-MNIST-shaped input.)"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import kzoo  # noqa: E402


def main():
    print(f"kzoo {kzoo.__version__}: {len(kzoo.list_models())} registered models")
    for name in kzoo.list_models():
        info = kzoo.model_info(name)
        published = f"{info.published_params / 1e6:.2f}M" if info.published_params else "-"
        print(f"  {name:<18} published {published:>7}  {info.paper}")

    variants = [
        ("ResNet-20", {}),
        ("ResNet-20 + EraseReLU", {"erase": "last"}),
        ("ResNet-20 + EraseReLU 50%", {"erase": "last", "proportion": 0.5}),
        ("ResNet-20 + FReLU (a)", {"activation": "frelu"}),
        ("ResNet-20 + FReLU (b)", {"activation": "frelu", "erase": "last"}),
        ("Pre-act ResNet-20, 2:1 proportional", {"preact": True, "erase": "first"}),
    ]
    images = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype("float32")
    print("\nResNet-20 on Fashion-MNIST-shaped input (28x28x1, 10 classes):")
    for label, kwargs in variants:
        start = time.perf_counter()
        model = kzoo.ResNet20(input_shape=(28, 28, 1), classes=10, **kwargs)
        probs = np.asarray(model(images, training=False))
        acts = kzoo.activation_layers(model)
        print(
            f"  {label:<38} params {kzoo.trainable_params(model):>8,}  activations kept "
            f"{len(acts):>3}  forward ok {probs.shape} sum={probs.sum(axis=1).mean():.3f}  "
            f"({time.perf_counter() - start:.1f}s)"
        )
    model = kzoo.ResNet164(erase="last")
    print(f"\nkzoo.ResNet164(erase='last'): {kzoo.trainable_params(model):,} parameters, "
          f"{len(kzoo.activation_layers(model))} activation layers, first few: "
          f"{kzoo.activation_layers(model)[:4]}")


if __name__ == "__main__":
    main()
