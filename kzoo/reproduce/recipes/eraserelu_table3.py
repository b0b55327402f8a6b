"""EraseReLU paper, Table 3: ResNet-50 with and without EraseReLU trained on 10%, 20% and
30% of ImageNet (top-1 error %, single 224 crop).

EraseReLU erases every block's last ReLU on ImageNet-10% and -20%, a quarter of them on
ImageNet-30%: the paper's point is that the right proportion shrinks as the data grows.
kzoo trains on the first 10/20/30% of TFDS's hash-shuffled training split
(``train_fraction``; nested, the same images for every seed) and tests on the whole
validation set (the paper used validation subsets too). CPU scale: ResNet-20 on 10/20/30%
of Fashion-MNIST's training images, the same proportions.

    kzoo reproduce eraserelu_table3 --scale paper
    kzoo reproduce eraserelu_table3 --scale cpu
"""

from kzoo.reproduce.study import Study, Variant

# Table 3, top-1 error %: (fraction, original, EraseReLU, proportion used). Top-5 in the
# paper: 23.68 / 15.65 / 11.65 (original), 23.20 / 14.99 / 11.64 (EraseReLU).
ROWS = ((0.1, 47.60, 46.18, 1.0), (0.2, 36.76, 36.42, 1.0), (0.3, 31.11, 31.10, 0.25))


def _variants():
    out = []
    for fraction, original, erased, proportion in ROWS:
        pct = int(round(100 * fraction))
        erase = {"erase": "last", "proportion": proportion}
        fields = {"train_fraction": fraction}
        out.append(
            Variant(
                f"resnet50-{pct}pct",
                f"ResNet-50, {pct}% of the data",
                "resnet50",
                paper={"imagenet2012": original},
                overrides=fields,
                cpu_model="resnet20",
            )
        )
        out.append(
            Variant(
                f"resnet50-er-{pct}pct",
                f"ResNet-50 with ER ({proportion:.0%}), {pct}% of the data",
                "resnet50",
                erase,
                paper={"imagenet2012": erased},
                overrides=fields,
                cpu_model="resnet20",
                baseline=f"resnet50-{pct}pct",
            )
        )
    return tuple(out)


STUDY = Study(
    name="eraserelu_table3",
    title="EraseReLU Table 3: ResNet-50 on ImageNet subsets",
    source="Dong et al. 2018, EraseReLU, Table 3",
    metric="error",
    variants=_variants(),
    protocol="imagenet",
    # The CPU demo protocol warms up for 200 steps, longer than its 4 epochs on 10% of
    # Fashion-MNIST (168 steps): 20 steps are its 0.47 epoch of warm-up at 10%.
    cpu_overrides={"warmup_steps": 20},
    curves={f"{p}%": (f"resnet50-{p}pct", f"resnet50-er-{p}pct") for p in (10, 20, 30)},
)
