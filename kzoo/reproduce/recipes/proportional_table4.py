"""Proportional-module paper, Table 4: DFN-MR1 (merge-and-run, depth 110) with paired
blocks against its cross-proportional blocks, test top-1 %.

Type1 removes the ReLU after the addition in one line, Type2 the one before it, Mix1
cycles Type1, Type2 and Type3 blocks. CIFAR-100 for all four, CIFAR-10 for paired and
Type1, under the merge-and-run authors' recipe (400 epochs, batch 64). CPU scale: the
same network on Fashion-MNIST (the shallowest DFN-MR the paper uses).

    kzoo reproduce proportional_table4 --scale cpu --seeds 1
"""

from kzoo.reproduce.study import Study, Variant

STUDY = Study(
    name="proportional_table4",
    title="Proportional module Table 4: cross-proportional merge-and-run blocks (DFN-MR1)",
    source="Zhao et al., Training Better CNNs Requires to Rethink ReLU, Table 4",
    metric="accuracy",
    variants=(
        Variant(
            "dfn_mr1",
            "DFN-MR1 (paired)",
            "dfn_mr1",
            paper={"cifar100": (75.59, 0.19), "cifar10": (95.04, 0.06)},
        ),
        Variant(
            "dfn_mr1-type1",
            "Type1 cross-proportional",
            "dfn_mr1",
            {"cross_type": "type1"},
            paper={"cifar100": (75.61, 0.38), "cifar10": (95.26, 0.14)},
            baseline="dfn_mr1",
        ),
        Variant(
            "dfn_mr1-type2",
            "Type2 cross-proportional",
            "dfn_mr1",
            {"cross_type": "type2"},
            paper={"cifar100": (74.53, 0.80)},
            baseline="dfn_mr1",
        ),
        Variant(
            "dfn_mr1-mix1",
            "Mix1 cross-proportional",
            "dfn_mr1",
            {"cross_type": "mix1"},
            paper={"cifar100": (73.70, 0.46)},
            baseline="dfn_mr1",
        ),
    ),
    protocol="dfn_mr_cifar",
    curves={"DFN-MR1": ("dfn_mr1", "dfn_mr1-type1", "dfn_mr1-type2", "dfn_mr1-mix1")},
)
