"""EraseReLU paper, Table 4: ResNet-152 and ResNet-200 with and without EraseReLU on the
full ImageNet (top-1 error %, single 224 center crop), next to Pre-act ResNet-200.

The text uses EraseReLU on 50% of the blocks for both networks (the caption says 100%);
kzoo follows the text. CPU scale: ResNet-56 with and without ER (50%) and Pre-act
ResNet-62 stand in for the ImageNet networks on Fashion-MNIST.

    kzoo reproduce eraserelu_table4 --scale paper
    kzoo reproduce eraserelu_table4 --scale cpu
"""

from kzoo.reproduce.study import Study, Variant

ER = {"erase": "last", "proportion": 0.5}
IN = "imagenet2012"
# Table 4, top-1 error % (top-5: 6.2, 5.8, 6.1, 5.8, 5.8).
STUDY = Study(
    name="eraserelu_table4",
    title="EraseReLU Table 4: ResNet-152/200 on ImageNet",
    source="Dong et al. 2018, EraseReLU, Table 4 (ResNet-200 is the authors' own run)",
    metric="error",
    variants=(
        Variant("resnet152", "ResNet-152", "resnet152", paper={IN: 22.2}, cpu_model="resnet56"),
        Variant(
            "resnet152-er",
            "ResNet-152 with ER (50%)",
            "resnet152",
            ER,
            paper={IN: 21.6},
            cpu_model="resnet56",
            baseline="resnet152",
        ),
        Variant("resnet200", "ResNet-200", "resnet200", paper={IN: 21.8}, cpu_model=None),
        Variant(
            "resnet200v2",
            "Pre-act ResNet-200",
            "resnet200v2",
            paper={IN: 21.7},
            cpu_model="preact_resnet62",
            baseline="resnet200",
        ),
        Variant(
            "resnet200-er",
            "ResNet-200 with ER (50%)",
            "resnet200",
            ER,
            paper={IN: 21.4},
            cpu_model=None,
            baseline="resnet200",
        ),
    ),
    protocol="imagenet",
    curves={
        "ResNet-152": ("resnet152", "resnet152-er"),
        "ResNet-200": ("resnet200", "resnet200v2", "resnet200-er"),
    },
)
