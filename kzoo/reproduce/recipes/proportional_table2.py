"""Proportional-module paper, Table 2: plain nets of depth 38, 62 and 84 with the 1:1
paired module against the 2:1 proportional module (every other ReLU removed), and the
84-layer ensemble module, CIFAR-100 test top-1 %.

The claim: the deeper the plain net, the more removing half its ReLUs helps (+0.2, +4.0
and +11.8 points). The paper gives no training recipe for its plain nets; kzoo uses
fb.resnet.torch's. CPU scale: the same nets on Fashion-MNIST.

    kzoo reproduce proportional_table2 --scale cpu --only 'plain38*'
"""

from kzoo.reproduce.study import Study, Variant

TWO_TO_ONE = {"erase": "last", "proportion": 0.5}
# Table 2, CIFAR-100 top-1 %: (paired, 2:1 proportional).
ROWS = {
    38: ((64.04, 0.14), (64.25, 1.44)),
    62: ((56.88, 1.16), (60.86, 1.18)),
    84: ((44.16, 0.57), (55.98, 2.59)),
}
VARIANTS = []
for _depth, (_paired, _prop) in ROWS.items():
    VARIANTS += [
        Variant(
            f"plain{_depth}", f"Plain-{_depth}, paired (1:1)", f"plain{_depth}", paper={"cifar100": _paired}
        ),
        Variant(
            f"plain{_depth}-2to1",
            f"Plain-{_depth}, 2:1 proportional",
            f"plain{_depth}",
            TWO_TO_ONE,
            paper={"cifar100": _prop},
            baseline=f"plain{_depth}",
        ),
    ]
VARIANTS.append(
    Variant(
        "plain84-ensemble",
        "Plain-84, ensemble module",
        "plain84_ensemble",
        paper={"cifar100": (58.52, 0.19)},
        baseline="plain84",
    )
)

STUDY = Study(
    name="proportional_table2",
    title="Proportional module Table 2: 1:1 vs 2:1 in plain nets on CIFAR-100",
    source="Zhao et al., Training Better CNNs Requires to Rethink ReLU, Table 2",
    metric="accuracy",
    variants=tuple(VARIANTS),
    protocol="fb_resnet_cifar",
    curves={f"Plain-{d}": (f"plain{d}", f"plain{d}-2to1") for d in ROWS},
)
