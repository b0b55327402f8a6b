"""Proportional-module paper, Table 3 (and Figure 7's curves): pre-activation ResNets of
building blocks with the 1:1 pre-paired block (BN-ReLU-conv twice) against the 2:1
pre-proportional block (its first ReLU removed: BN-conv-BN-ReLU-conv), test top-1 %.

Depth 62 on CIFAR-10 and CIFAR-100, 110 and 164 on CIFAR-100, trained as fb.resnet.torch
trains pre-activation ResNets. Depth 164 here is a building-block net (27 blocks per
stage, ``preact_resnet164``), as the section describes; He et al.'s ResNet-164 is a
bottleneck net (see ``proportional_bottleneck.py``). CPU scale: depth 62 on
Fashion-MNIST.

    kzoo reproduce proportional_table3 --scale paper --only 'preact110*'
"""

from kzoo.reproduce.study import Study, Variant

TWO_TO_ONE = {"erase": "first"}
# Table 3, top-1 %: (1:1, 2:1) per dataset.
ROWS = {
    62: {"cifar10": ((93.59, 0.20), (93.97, 0.23)), "cifar100": ((71.43, 0.32), (72.19, 0.18))},
    110: {"cifar100": ((72.46, 0.10), (73.41, 0.10))},
    164: {"cifar100": ((73.00, 0.31), (74.12, 0.22))},
}
VARIANTS = []
for _depth, _paper in ROWS.items():
    _cpu = "" if _depth == 62 else None
    VARIANTS += [
        Variant(
            f"preact{_depth}",
            f"Pre-act ResNet-{_depth}, 1:1 pre-paired",
            f"preact_resnet{_depth}",
            paper={d: p[0] for d, p in _paper.items()},
            cpu_model=_cpu,
        ),
        Variant(
            f"preact{_depth}-2to1",
            f"Pre-act ResNet-{_depth}, 2:1 pre-proportional",
            f"preact_resnet{_depth}",
            TWO_TO_ONE,
            paper={d: p[1] for d, p in _paper.items()},
            cpu_model=_cpu,
            baseline=f"preact{_depth}",
        ),
    ]

STUDY = Study(
    name="proportional_table3",
    title="Proportional module Table 3: 1:1 vs 2:1 pre-activation building blocks",
    source="Zhao et al., Training Better CNNs Requires to Rethink ReLU, Table 3 and Figure 7",
    metric="accuracy",
    variants=tuple(VARIANTS),
    protocol="fb_resnet_cifar",
    curves={f"Pre-act ResNet-{d}": (f"preact{d}", f"preact{d}-2to1") for d in ROWS},
)
