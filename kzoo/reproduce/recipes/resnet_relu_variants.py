"""ResNet-20 and ResNet-56: the original network against the three ways of placing
ReLUs this zoo is about, each applied alone.

- EraseReLU: no ReLU after the residual addition (``erase="last"``, all blocks);
- 2:1 proportional module: no ReLU between the two convolutions (``erase="first"``);
- FReLU: every ReLU replaced by ``relu(x) + b`` (FReLU paper, Fig. 4(a)).

Paper scale is fb.resnet.torch on CIFAR-10/100, the protocol of the FReLU paper. The
published numbers for these depths come from FReLU's Table 2 and EraseReLU's Tables 1-2
(whose ER* is this 2:1 network; the proportional paper reports pre-activation blocks).
CPU scale is Fashion-MNIST under ``fashion_mnist_demo`` (4 epochs), 3 seeds: the study in
``results/resnet_relu_variants``.

    kzoo reproduce resnet_relu_variants --scale cpu --out results/resnet_relu_variants
"""

from kzoo.reproduce.study import Study, Variant

# Published numbers (test error %, mean (std) of 5 runs) for these depths, one column per
# source, since the papers' own baselines differ: FReLU Table 2 (CIFAR-10, FReLU (a) = every
# ReLU replaced), EraseReLU Table 2 (CIFAR-10, ResNet-56 only) and EraseReLU Table 1
# (CIFAR-100), where ER* erases the first ReLU of the block: the same network as the 2:1
# proportional module here.
F10, E10, E100 = "CIFAR-10 [FReLU T2]", "CIFAR-10 [EraseReLU T2]", "CIFAR-100 [EraseReLU T1]"
PAPER = {
    "resnet20": {
        "original": {F10: (8.12, 0.18), E100: (32.85, 0.48)},
        "eraserelu": {E100: (32.29, 0.33)},
        "proportional": {E100: (35.15, 0.36)},
        "frelu": {F10: (8.10, 0.18)},
    },
    "resnet56": {
        "original": {F10: (6.87, 0.54), E10: 6.97, E100: (30.86, 0.81)},
        "eraserelu": {E10: (6.23, 0.21), E100: (28.56, 0.17)},
        "proportional": {E100: (33.64, 0.33)},
        "frelu": {F10: (6.54, 0.22)},
    },
}
DATASETS = ("cifar10", "cifar100")


def _variants(model, label):
    paper = PAPER[model]
    return (
        Variant(f"{model}-original", f"{label}", model, paper=paper["original"], datasets=DATASETS),
        Variant(
            f"{model}-eraserelu",
            f"{label} EraseReLU",
            model,
            {"erase": "last"},
            paper=paper["eraserelu"],
            datasets=DATASETS,
            baseline=f"{model}-original",
        ),
        Variant(
            f"{model}-proportional",
            f"{label} 2:1 proportional",
            model,
            {"erase": "first"},
            paper=paper["proportional"],
            datasets=DATASETS,
            baseline=f"{model}-original",
        ),
        Variant(
            f"{model}-frelu",
            f"{label} FReLU",
            model,
            {"activation": "frelu"},
            paper=paper["frelu"],
            datasets=DATASETS,
            baseline=f"{model}-original",
        ),
    )


STUDY = Study(
    name="resnet_relu_variants",
    title="ResNet-20/56: original vs EraseReLU vs 2:1 proportional vs FReLU",
    source="published numbers from FReLU (Qiu & Cai 2018) Table 2 and EraseReLU (Dong et al. 2018) Tables 1-2",
    metric="error",
    variants=_variants("resnet20", "ResNet-20") + _variants("resnet56", "ResNet-56"),
    protocol="fb_resnet_cifar",
    curves={
        "ResNet-20": ("resnet20-original", "resnet20-eraserelu", "resnet20-proportional", "resnet20-frelu"),
        "ResNet-56": ("resnet56-original", "resnet56-eraserelu", "resnet56-proportional", "resnet56-frelu"),
    },
)
