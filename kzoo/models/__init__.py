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
from kzoo.models.common import load_model, trainable_params  # noqa: F401
from kzoo.models.registry import ModelInfo, create_model, list_models, model_info  # noqa: F401
