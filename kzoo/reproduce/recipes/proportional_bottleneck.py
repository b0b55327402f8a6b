"""Proportional-module paper, Figures 8 and 9: pre-activation bottleneck ResNets (110 and
164 layers) on CIFAR-100, the 1:1 block against the 3:2 blocks that drop one of its three
ReLUs: Type 1 the first, Type 2 the second, Type 3 the third. Test accuracy per epoch.

The paper shows curves only: Types 1 and 2 beat the baseline at both depths (Type 1
most), Type 3 loses at 110 layers and gains at 164. fb.resnet.torch's recipe. CPU scale:
a 56-layer bottleneck net (6 blocks per stage) on Fashion-MNIST.

    kzoo reproduce proportional_bottleneck --scale paper --only 'bottleneck110*'
"""

from kzoo.reproduce.study import Study, Variant

TYPES = (
    ("", "1:1 baseline", {}),
    ("-type1", "3:2 Type 1", {"erase": "first"}),
    ("-type2", "3:2 Type 2", {"erase": "second"}),
    ("-type3", "3:2 Type 3", {"erase": "third"}),
)
VARIANTS = []
for _depth, _model, _cpu in ((110, "preact_bottleneck110", "preact_bottleneck56"), (164, "resnet164", None)):
    for _suffix, _label, _kwargs in TYPES:
        VARIANTS.append(
            Variant(
                f"bottleneck{_depth}{_suffix}",
                f"Bottleneck ResNet-{_depth}, {_label}",
                _model,
                _kwargs,
                datasets=("cifar100",),
                cpu_model=_cpu,
                baseline=f"bottleneck{_depth}" if _suffix else None,
            )
        )

STUDY = Study(
    name="proportional_bottleneck",
    title="Proportional module Figures 8-9: 3:2 pre-activation bottleneck types",
    source="Zhao et al., Training Better CNNs Requires to Rethink ReLU, Figures 8 and 9 (curves only)",
    metric="accuracy",
    variants=tuple(VARIANTS),
    protocol="fb_resnet_cifar",
    curves={f"Bottleneck ResNet-{d}": tuple(f"bottleneck{d}{s}" for s, _, _ in TYPES) for d in (110, 164)},
)
