"""kzoo's model builders and their registry."""

from kzoo.models.cifar_resnet import (  # noqa: F401
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
from kzoo.models.imagenet_resnet import (  # noqa: F401
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
from kzoo.models.inception import CifarInceptionV2  # noqa: F401
from kzoo.models.merge_run import DFNMR, DFNMR1, DFNMR2  # noqa: F401
from kzoo.models.plain import (  # noqa: F401
    MLP,
    MLP12,
    PlainNet,
    PlainNet38,
    PlainNet62,
    PlainNet84,
    ResidualStyle31,
    SingleReLUNet,
    SmallNet,
    SmallNetBN,
    VGGStyle31,
)
from kzoo.models.resnext import (  # noqa: F401
    CifarResNeXt,
    ImageNetResNeXt,
    ResNeXt29_8x64d,
    ResNeXt29_16x64d,
    ResNeXt50_32x4d,
    ResNeXt101_32x4d,
    ResNeXt152_32x4d,
)
from kzoo.models.wide_resnet import (  # noqa: F401
    WideResNet,
    WideResNet16_8,
    WideResNet28_10,
    WideResNet40_4,
    WideResNet52_1,
    WideResNet52_10,
)
from kzoo.models.common import load_model, trainable_params  # noqa: F401
from kzoo.models.registry import ModelInfo, create_model, list_models, model_info  # noqa: F401
