"""EraseReLU paper, Figure 3 (a-c): accuracy against the proportion of modules whose
ReLU is erased, for networks of single-ReLU modules.

(a) a 31-layer VGG-style net and (b) a 31-layer residual-style net (30 modules of
conv-BN-ReLU, 16/32/64 channels) on CIFAR-10 and CIFAR-100; (c) a 12-layer MLP on MNIST.
The paper shows curves only (best VGG proportion 20%; for the residual net even 5%
beats the original); it never erases 100% here, which would leave no nonlinearity.
Figure 3(d) (VGG-style nets of other depths) is not reproduced: kzoo registers depth 31.
The paper's training settings for these nets are in a supplement we do not have, so the
CIFAR nets use fb.resnet.torch's and the MLP a kzoo MNIST protocol (below).
CPU scale: the same sweeps on Fashion-MNIST (4 epochs).

    kzoo reproduce eraserelu_fig3 --scale cpu --only 'vgg*'
"""

from kzoo.reproduce.study import Study, Variant
from kzoo.training import Protocol

PROPORTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
MLP_MNIST = Protocol(
    "eraserelu_mlp_mnist",
    "kzoo's MLP recipe for MNIST: 100 epochs, /10 at 50 and 75, no augmentation",
    "kzoo (the EraseReLU supplement is not available)",
    "mnist",
    epochs=100,
    milestones=(50, 75),
    augment=False,
    validation_size=5000,
)


def _sweep(model, label, datasets, protocol):
    out = []
    for p in PROPORTIONS:
        kwargs = {"erase": "last", "proportion": p} if p else {}
        key = f"{model}-p{int(round(100 * p)):02d}"
        out.append(
            Variant(
                key,
                f"{label}, {p:.0%} erased",
                model,
                kwargs,
                datasets=datasets,
                protocol=protocol,
                baseline=None if not p else f"{model}-p00",
            )
        )
    return out


VARIANTS = (
    _sweep("vgg_style31", "VGG-style 31", ("cifar10", "cifar100"), "fb_resnet_cifar")
    + _sweep("residual_style31", "Residual-style 31", ("cifar10", "cifar100"), "fb_resnet_cifar")
    + _sweep("mlp12", "MLP-12", ("mnist",), MLP_MNIST)
)
STUDY = Study(
    name="eraserelu_fig3",
    title="EraseReLU Figure 3: accuracy vs the proportion erased",
    source="Dong et al. 2018, EraseReLU, Figure 3 (a)-(c) (curves only: no published numbers)",
    metric="accuracy",
    variants=tuple(VARIANTS),
    curves={
        m: (f"{m}-p00", f"{m}-p20", f"{m}-p50", f"{m}-p90")
        for m in ("vgg_style31", "residual_style31", "mlp12")
    },
    sweeps={
        m: ("proportion erased", {f"{m}-p{int(round(100 * p)):02d}": p for p in PROPORTIONS})
        for m in ("vgg_style31", "residual_style31", "mlp12")
    },
)
