"""FReLU paper, Table 1: SmallNet (3 conv + 2 FC layers) with ReLU, ELU or FReLU, with
and without batch normalization, at base learning rates 0.01 and 0.1, CIFAR-100 test
error %.

Without BN at 0.1 the paper's networks do not converge (ReLU) or explode (ELU, FReLU);
kzoo records a run whose loss becomes NaN as diverged. fb.resnet.torch's schedule at
the row's base rate. CPU scale: the same nets and rates on Fashion-MNIST.

    kzoo reproduce frelu_table1 --scale cpu --only '*lr0.1'
"""

from kzoo.reproduce.study import Study, Variant

# Table 1, test error % on CIFAR-100: {(bn, lr): {activation: value}}.
PAPER = {
    (False, 0.01): {"relu": (40.55, 0.25), "elu": (37.55, 0.47), "frelu": (36.87, 0.35)},
    (False, 0.1): {"relu": "not converge", "elu": "exploding", "frelu": "exploding"},
    (True, 0.01): {"relu": (39.20, 0.32), "elu": (38.77, 0.18), "frelu": (37.13, 0.30)},
    (True, 0.1): {"relu": (38.50, 0.43), "elu": (37.80, 0.16), "frelu": (35.82, 0.12)},
}
NAMES = {"relu": "ReLU", "elu": "ELU", "frelu": "FReLU"}
VARIANTS = []
for (_bn, _lr), _row in PAPER.items():
    _model = "smallnet_bn" if _bn else "smallnet"
    for _act, _value in _row.items():
        _base = f"{_model}-relu-lr{_lr}"
        VARIANTS.append(
            Variant(
                f"{_model}-{_act}-lr{_lr}",
                f"{'BN+' if _bn else ''}{NAMES[_act]}, lr {_lr}",
                _model,
                {"activation": _act},
                paper={"cifar100": _value},
                overrides={"lr": _lr},
                baseline=None if _act == "relu" else _base,
            )
        )

STUDY = Study(
    name="frelu_table1",
    title="FReLU Table 1: SmallNet with ReLU, ELU and FReLU on CIFAR-100",
    source="Qiu & Cai 2018, FReLU, Table 1",
    metric="error",
    variants=tuple(VARIANTS),
    protocol="smallnet_frelu",
    curves={
        f"{'BN, ' if bn else ''}lr {lr}": tuple(
            f"{'smallnet_bn' if bn else 'smallnet'}-{a}-lr{lr}" for a in NAMES
        )
        for bn, lr in PAPER
    },
)
