"""ResNet-20 and ResNet-56: the original network against the three ways of placing
ReLUs this zoo is about, each applied alone.

- EraseReLU: no ReLU after the residual addition (``erase="last"``, all blocks);
- 2:1 proportional module: no ReLU between the two convolutions (``erase="first"``);
- FReLU: every ReLU replaced by ``relu(x) + b`` (FReLU paper, Fig. 4(a)).

Paper scale is fb.resnet.torch on CIFAR-10/100, the protocol of the FReLU paper, whose
Table 2 has the published numbers for these depths (the EraseReLU and proportional
papers report deeper networks only). CPU scale is Fashion-MNIST under
``fashion_mnist_demo`` (4 epochs), 3 seeds: the study in ``results/resnet_relu_variants``.

    python applications/resnet_relu_variants.py --scale cpu --out results/resnet_relu_variants
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kzoo.reproduce import Study, Variant, main  # noqa: E402

# FReLU paper, Table 2 (error %, mean (std) of 5 runs): CIFAR-10 original / FReLU (a);
# CIFAR-100 original (the paper gives FReLU (b) only there).
PAPER = {
    "resnet20": {"original": {"cifar10": (8.12, 0.18), "cifar100": (31.93, 0.13)},
                 "frelu": {"cifar10": (8.10, 0.18)}},
    "resnet56": {"original": {"cifar10": (6.87, 0.54), "cifar100": (29.19, 0.61)},
                 "frelu": {"cifar10": (6.54, 0.22)}},
}
DATASETS = ("cifar10", "cifar100")


def _variants(model, label):
    paper = PAPER[model]
    return (
        Variant(f"{model}-original", f"{label}", model, paper=paper["original"], datasets=DATASETS),
        Variant(f"{model}-eraserelu", f"{label} EraseReLU", model, {"erase": "last"},
                datasets=DATASETS, baseline=f"{model}-original"),
        Variant(f"{model}-proportional", f"{label} 2:1 proportional", model, {"erase": "first"},
                datasets=DATASETS, baseline=f"{model}-original"),
        Variant(f"{model}-frelu", f"{label} FReLU", model, {"activation": "frelu"},
                paper=paper["frelu"], datasets=DATASETS, baseline=f"{model}-original"),
    )


STUDY = Study(
    name="resnet_relu_variants",
    title="ResNet-20/56: original vs EraseReLU vs 2:1 proportional vs FReLU",
    source="FReLU paper (Qiu & Cai 2018) Table 2 for the published numbers",
    metric="error",
    variants=_variants("resnet20", "ResNet-20") + _variants("resnet56", "ResNet-56"),
    protocol="fb_resnet_cifar",
    curves={"ResNet-20": ("resnet20-original", "resnet20-eraserelu", "resnet20-proportional", "resnet20-frelu"),
            "ResNet-56": ("resnet56-original", "resnet56-eraserelu", "resnet56-proportional", "resnet56-frelu")},
)

if __name__ == "__main__":
    sys.exit(main(STUDY))
