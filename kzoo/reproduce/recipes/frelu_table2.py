"""FReLU paper, Table 2: ResNet-20/32/44/56/110 with ReLU (original), ELU or FReLU,
CIFAR-10 and CIFAR-100 test error %.

(a) replaces every ReLU (Fig. 4(a)); (b) FReLU everywhere but after the addition, where
there is no activation (Fig. 4(b)). The paper's ELU (c) rows use a block without the BN
after its first convolution, which kzoo does not build; they are left out.
fb.resnet.torch's recipe. CPU scale: ResNet-20 and ResNet-56 on Fashion-MNIST.

    kzoo reproduce frelu_table2 --scale paper --only 'resnet110-*'
"""

from kzoo.reproduce.study import Study, Variant

DEPTHS = (20, 32, 44, 56, 110)
# Table 2, test error % (mean, std) per depth.
C10 = {
    "original": ((8.12, 0.18), (7.28, 0.19), (6.97, 0.24), (6.87, 0.54), (6.82, 0.63)),
    "elu-a": ((8.04, 0.08), (7.62, 0.21), (7.51, 0.22), (7.71, 0.26), (8.21, 0.21)),
    "frelu-a": ((8.10, 0.18), (7.30, 0.17), (6.91, 0.25), (6.54, 0.22), (6.20, 0.23)),
    "frelu-b": ((8.00, 0.14), (6.99, 0.11), (6.58, 0.19), (6.31, 0.20), (5.71, 0.19)),
}
C100 = {
    "original": ((31.93, 0.13), (30.16, 0.32), (29.30, 0.45), (29.19, 0.61), (28.48, 0.85)),
    "frelu-b": ((31.84, 0.30), (29.95, 0.27), (29.02, 0.25), (28.07, 0.47), (26.70, 0.38)),
}
ROWS = (
    ("original", "ReLU (original)", {}),
    ("elu-a", "ELU (a)", {"activation": "elu"}),
    ("frelu-a", "FReLU (a)", {"activation": "frelu"}),
    ("frelu-b", "FReLU (b)", {"activation": "frelu", "erase": "last"}),
)
VARIANTS = []
for _i, _depth in enumerate(DEPTHS):
    for _key, _label, _kwargs in ROWS:
        _paper = {"cifar10": C10[_key][_i]}
        if _key in C100:
            _paper["cifar100"] = C100[_key][_i]
        VARIANTS.append(
            Variant(
                f"resnet{_depth}-{_key}",
                f"ResNet-{_depth} {_label}",
                f"resnet{_depth}",
                _kwargs,
                paper=_paper,
                cpu_model="" if _depth in (20, 56) else None,
                baseline=None if _key == "original" else f"resnet{_depth}-original",
            )
        )

STUDY = Study(
    name="frelu_table2",
    title="FReLU Table 2: ResNets with ReLU, ELU and FReLU on CIFAR",
    source="Qiu & Cai 2018, FReLU, Table 2 (the ReLU and ELU rows are the authors' reproductions)",
    metric="error",
    variants=tuple(VARIANTS),
    protocol="fb_resnet_cifar",
    curves={f"ResNet-{d}": tuple(f"resnet{d}-{k}" for k, _, _ in ROWS) for d in DEPTHS},
)
