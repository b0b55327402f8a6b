"""kzoo's model builders and their registry.

Each family module registers its builders (``@register_model``, importable from here for
a new builder of yours) as it is imported here; the blocks they are made of live in
``kzoo.models.blocks``.
"""

from kzoo.models.airbench import AirbenchNet
from kzoo.models.cifar_resnet import (
    CifarResNet,
    ResNet20,
    ResNet32,
    ResNet44,
    ResNet56,
    ResNet110,
    ResNet164,
    ResNet1001,
    ResNet1202,
)
from kzoo.models.common import trainable_params
from kzoo.models.flops import forward_flops, training_flops
from kzoo.models.imagenet_resnet import (
    ImageNetResNet,
    ResNet50,
    ResNet50V2,
    ResNet101,
    ResNet101V2,
    ResNet152,
    ResNet152V2,
    ResNet200,
    ResNet200V2,
)
from kzoo.models.inception import CifarInceptionV2
from kzoo.models.merge_run import DFNMR, DFNMR1, DFNMR2
from kzoo.models.plain import (
    PlainNet,
    PlainNet38,
    PlainNet62,
    PlainNet84,
    ResidualStyle31,
    SingleReLUNet,
    VGGStyle31,
)
from kzoo.models.registry import ModelInfo, create_model, list_models, model_info

# Re-exported for new builders (@kzoo.models.register_model), outside kzoo's public surface.
from kzoo.models.registry import register_model as register_model
from kzoo.models.resnext import (
    CifarResNeXt,
    ImageNetResNeXt,
    ResNeXt29_8x64d,
    ResNeXt29_16x64d,
    ResNeXt50_32x4d,
    ResNeXt101_32x4d,
    ResNeXt152_32x4d,
)
from kzoo.models.small_nets import MLP, MLP12, SmallNet, SmallNetBN
from kzoo.models.wide_resnet import (
    WideResNet,
    WideResNet16_8,
    WideResNet28_10,
    WideResNet40_4,
    WideResNet52_1,
    WideResNet52_10,
)

__all__ = [
    # CIFAR ResNets
    "CifarResNet",
    "ResNet20",
    "ResNet32",
    "ResNet44",
    "ResNet56",
    "ResNet110",
    "ResNet164",
    "ResNet1001",
    "ResNet1202",
    # ImageNet ResNets
    "ImageNetResNet",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "ResNet200",
    "ResNet200V2",
    # Inception, merge-and-run, single-activation nets, airbench
    "AirbenchNet",
    "CifarInceptionV2",
    "DFNMR",
    "DFNMR1",
    "DFNMR2",
    "MLP",
    "MLP12",
    "PlainNet",
    "PlainNet38",
    "PlainNet62",
    "PlainNet84",
    "ResidualStyle31",
    "SingleReLUNet",
    "SmallNet",
    "SmallNetBN",
    "VGGStyle31",
    # ResNeXt, Wide ResNet
    "CifarResNeXt",
    "ImageNetResNeXt",
    "ResNeXt29_8x64d",
    "ResNeXt29_16x64d",
    "ResNeXt50_32x4d",
    "ResNeXt101_32x4d",
    "ResNeXt152_32x4d",
    "WideResNet",
    "WideResNet16_8",
    "WideResNet28_10",
    "WideResNet40_4",
    "WideResNet52_1",
    "WideResNet52_10",
    # Utilities and the registry
    "trainable_params",
    "training_flops",
    "ModelInfo",
    "create_model",
    "forward_flops",
    "list_models",
    "model_info",
]
