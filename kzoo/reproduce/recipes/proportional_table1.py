"""Proportional-module paper, Table 1: an 84-layer plain net of paired modules
(conv-BN-ReLU) against the same net of ensemble modules (a shortcut across every ReLU,
a leaky ReLU of slope 0.5 up to scale), CIFAR-100 test top-1 %.

The paper gives no training recipe for its plain nets; kzoo uses fb.resnet.torch's.
CPU scale: the same two 84-layer nets on Fashion-MNIST.

    kzoo reproduce proportional_table1 --scale paper
"""

from kzoo.reproduce.study import Study, Variant

STUDY = Study(
    name="proportional_table1",
    title="Proportional module Table 1: paired vs ensemble module, plain-84 on CIFAR-100",
    source="Zhao et al., Training Better CNNs Requires to Rethink ReLU, Table 1",
    metric="accuracy",
    variants=(
        Variant("plain84", "Plain-84, paired module", "plain84", paper={"cifar100": (44.16, 0.57)}),
        Variant(
            "plain84-ensemble",
            "Plain-84, ensemble module",
            "plain84_ensemble",
            paper={"cifar100": (58.52, 0.19)},
            baseline="plain84",
        ),
    ),
    protocol="fb_resnet_cifar",
    curves={"Plain-84": ("plain84", "plain84-ensemble")},
)
