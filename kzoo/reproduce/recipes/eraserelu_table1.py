"""EraseReLU paper, Table 1: EraseReLU against other ways of changing a residual
block's ReLUs, on CIFAR-100 (test error %, ResNet-20/56/110).

Rows: the original ResNet, PReLU everywhere (PReLU-all), PReLU only after the addition
(PReLU-sum), ER* (erase the first/middle ReLU: harmful), ER (erase the last one), and,
trained 500 epochs as stochastic depth is, ER†, stochastic depth (SDR) and ER†+SDR.
Paper scale: He et al.'s recipe (64k iterations; ResNet-110 with its warm-up) and the
stochastic-depth recipe for the last three. CPU scale: ResNet-20 and ResNet-56 on
Fashion-MNIST; ER† is ER there (same short protocol), so it is not run twice.

    kzoo reproduce eraserelu_table1 --scale paper
    kzoo reproduce eraserelu_table1 --scale cpu --only 'resnet20-*'
"""

from kzoo.reproduce.study import Study, Variant

# Table 1, test error % on CIFAR-100, mean ± std of 5 runs.
PAPER = {
    20: (
        32.85,
        0.48,
        33.40,
        0.59,
        32.95,
        0.30,
        35.15,
        0.36,
        32.29,
        0.33,
        31.82,
        0.30,
        32.87,
        0.15,
        33.24,
        0.36,
    ),
    56: (
        30.86,
        0.81,
        30.60,
        0.84,
        29.94,
        0.73,
        33.64,
        0.33,
        28.56,
        0.17,
        27.23,
        0.01,
        25.60,
        0.36,
        25.01,
        0.22,
    ),
    110: (
        28.21,
        0.46,
        28.20,
        0.98,
        27.45,
        0.46,
        33.55,
        0.44,
        26.05,
        0.44,
        25.01,
        0.09,
        24.01,
        0.14,
        22.89,
        0.17,
    ),
}
SD = "stochastic_depth_cifar"
# (key, label, model_kwargs, paper-scale protocol (None: He et al.'s), CPU model_kwargs or None)
ROWS = (
    ("resnet", "ResNet", {}, None, {}),
    ("prelu-all", "PReLU-all", {"activation": "prelu"}, None, {"activation": "prelu"}),
    (
        "prelu-sum",
        "PReLU-sum",
        {"activation": {"default": "relu", "last": "prelu"}},
        None,
        {"activation": {"default": "relu", "last": "prelu"}},
    ),
    ("er-star", "ER*", {"erase": "first"}, None, {"erase": "first"}),
    ("er", "ER", {"erase": "last"}, None, {"erase": "last"}),
    ("er-dagger", "ER†", {"erase": "last", "stochastic_depth": None}, SD, None),
    ("sdr", "SDR", {}, SD, {"stochastic_depth": 0.5}),
    ("er-dagger-sdr", "ER†+SDR", {"erase": "last"}, SD, {"erase": "last", "stochastic_depth": 0.5}),
)


def _variants(depth):
    he = "he_cifar_warmup" if depth >= 110 else "he_cifar"
    out = []
    for i, (key, label, kwargs, protocol, cpu_kwargs) in enumerate(ROWS):
        mean, std = PAPER[depth][2 * i], PAPER[depth][2 * i + 1]
        on_cpu = depth < 110 and cpu_kwargs is not None
        out.append(
            Variant(
                f"resnet{depth}-{key}",
                f"ResNet-{depth} {label}",
                f"resnet{depth}",
                kwargs,
                paper={"cifar100": (mean, std)},
                protocol=protocol or he,
                cpu_model="" if on_cpu else None,
                cpu_kwargs=cpu_kwargs,
                baseline=None if key == "resnet" else f"resnet{depth}-resnet",
            )
        )
    return tuple(out)


STUDY = Study(
    name="eraserelu_table1",
    title="EraseReLU Table 1: ReLU variants of ResNet on CIFAR-100",
    source="Dong et al. 2018, EraseReLU, Table 1",
    metric="error",
    variants=_variants(20) + _variants(56) + _variants(110),
    curves={
        f"ResNet-{d}": (f"resnet{d}-resnet", f"resnet{d}-er", f"resnet{d}-er-star", f"resnet{d}-prelu-sum")
        for d in (20, 56, 110)
    },
)
