"""EraseReLU paper, Table 2: original vs EraseReLU on CIFAR-10, CIFAR-100 and SVHN
(test error %) for ResNet, Pre-act ResNet, Wide ResNet, ResNeXt and Inception-V2.

EraseReLU erases the last ReLU of every block (100%), of every other module for
Inception-V2 (50%); pre-activation networks are converted to after-activation first
(kzoo does that when ``erase="last"``). Paper scale: each network's own recipe (He et
al. for ResNet, fb.resnet.torch for Pre-act, WRN's for WRN and Inception-V2, ResNeXt's),
SVHN as in the paper (official training set only, no augmentation, dropout 0.4 for -D).
CPU scale: the rows a CPU can train in minutes (ResNet-56, Pre-act ResNet-62, WRN-52-1
and 52-1-D) on Fashion-MNIST.

    kzoo reproduce eraserelu_table2 --scale paper --only 'wrn52_1*'
    kzoo reproduce eraserelu_table2 --scale cpu
"""

from kzoo.reproduce.study import Study, Variant

C10, C100, SVHN = "cifar10", "cifar100", "svhn"
WRN = {C10: "wrn_cifar", C100: "wrn_cifar", SVHN: "wrn_svhn"}
# (key, label, model, kwargs, protocol, runs on CPU, {dataset: (original, EraseReLU)});
# numbers from Table 2 (mean, or (mean, std) where the paper gives it).
ROWS = (
    (
        "resnet56",
        "ResNet-56",
        "resnet56",
        {},
        "he_cifar",
        True,
        {C10: (6.97, (6.23, 0.21)), C100: (30.60, (28.56, 0.17))},
    ),
    (
        "resnet110",
        "ResNet-110",
        "resnet110",
        {},
        "he_cifar_warmup",
        False,
        {C10: (6.43, (5.78, 0.10)), C100: (28.21, (26.05, 0.44))},
    ),
    ("resnet1202", "ResNet-1202", "resnet1202", {}, "he_cifar_warmup", False, {C10: (7.93, 4.96)}),
    (
        "preact62",
        "Pre-act ResNet-62",
        "preact_resnet62",
        {},
        "fb_resnet_cifar",
        True,
        {C10: (6.98, (6.07, 0.06)), C100: (29.44, (27.54, 0.04))},
    ),
    (
        "preact110",
        "Pre-act ResNet-110",
        "preact_resnet110",
        {},
        "fb_resnet_cifar",
        False,
        {C10: (6.37, (5.72, 0.04)), C100: (27.20, (25.76, 0.07))},
    ),
    (
        "preact164",
        "Pre-act ResNet-164",
        "resnet164",
        {},
        "fb_resnet_cifar",
        False,
        {C10: (5.46, 4.65), C100: (24.33, 22.41)},
    ),
    (
        "preact1001",
        "Pre-act ResNet-1001",
        "resnet1001",
        {},
        "fb_resnet_cifar",
        False,
        {C10: (4.92, 4.10), C100: (22.71, 20.63)},
    ),
    ("wrn40_4", "WRN-40-4", "wrn40_4", {}, WRN, False, {C10: (4.97, 4.27), C100: (22.89, 20.07)}),
    ("wrn28_10", "WRN-28-10", "wrn28_10", {}, WRN, False, {C10: (4.00, 3.78), C100: (19.25, 19.10)}),
    (
        "wrn28_10-d",
        "WRN-28-10-D",
        "wrn28_10",
        {"dropout_rate": 0.3},
        WRN,
        False,
        {C10: (3.89, 3.88), C100: (18.85, 18.60)},
    ),
    (
        "wrn52_1",
        "WRN-52-1",
        "wrn52_1",
        {"dropout_rate": 0.0},
        WRN,
        True,
        {C10: (6.43, 5.37), C100: (29.89, 26.45), SVHN: (2.08, 1.87)},
    ),
    (
        "wrn52_1-d",
        "WRN-52-1-D",
        "wrn52_1",
        {"dropout_rate": 0.3},
        WRN,
        True,
        {C10: (6.28, 5.65), C100: (29.78, 25.00)},
    ),
    (
        "wrn52_1-d-svhn",
        "WRN-52-1-D (SVHN, dropout 0.4)",
        "wrn52_1",
        {"dropout_rate": 0.4},
        WRN,
        False,
        {SVHN: (1.70, 1.54)},
    ),
    (
        "wrn52_10",
        "WRN-52-10",
        "wrn52_10",
        {"dropout_rate": 0.0},
        WRN,
        False,
        {C10: (3.69, 3.69), C100: (19.19, 18.19), SVHN: (1.81, 1.64)},
    ),
    (
        "resnext29_8x64d",
        "ResNeXt-29 8x64d",
        "resnext29_8x64d",
        {},
        "resnext_cifar",
        False,
        {C10: (3.65, 3.57), C100: (17.77, 17.23)},
    ),
    (
        "resnext29_16x64d",
        "ResNeXt-29 16x64d",
        "resnext29_16x64d",
        {},
        "resnext_cifar",
        False,
        {C10: (3.58, 3.56), C100: (17.31, 16.53)},
    ),
    (
        "inception_v2",
        "Inception-V2 (30 modules)",
        "inception_v2_cifar",
        {},
        WRN,
        False,
        {C10: (5.45, 5.29), C100: (28.29, 24.34)},
    ),
)


def _variants():
    out = []
    for key, label, model, kwargs, protocol, on_cpu, paper in ROWS:
        erase = {"erase": "last", "proportion": 0.5} if model.startswith("inception") else {"erase": "last"}
        if isinstance(protocol, dict):
            protocol = {d: protocol[d] for d in paper}
        cpu = "" if on_cpu else None
        out.append(
            Variant(
                key,
                label,
                model,
                kwargs,
                paper={d: p[0] for d, p in paper.items()},
                protocol=protocol,
                cpu_model=cpu,
            )
        )
        out.append(
            Variant(
                f"{key}-er",
                f"{label} EraseReLU",
                model,
                {**kwargs, **erase},
                paper={d: p[1] for d, p in paper.items()},
                protocol=protocol,
                cpu_model=cpu,
                baseline=key,
            )
        )
    return tuple(out)


STUDY = Study(
    name="eraserelu_table2",
    title="EraseReLU Table 2: original vs EraseReLU on CIFAR and SVHN",
    source="Dong et al. 2018, EraseReLU, Table 2 († rows are the authors' own runs of the original)",
    metric="error",
    variants=_variants(),
    notes="SVHN is the official training set only, as the paper says (kzoo's `svhn`, not `svhn_extra`).",
    curves={
        "ResNet-56": ("resnet56", "resnet56-er"),
        "Pre-act ResNet-62": ("preact62", "preact62-er"),
        "WRN-52-1": ("wrn52_1", "wrn52_1-er", "wrn52_1-d", "wrn52_1-d-er"),
    },
)
