"""The datasets kzoo ships, each as its paper loaded, split and pre-processed it: the
constants, with where each comes from, in one place."""

from kzoo.data.registry import register_dataset
from kzoo.data.sources import IDXSource, TFDSSource, TrainPart
from kzoo.data.spec import Augmentation, DatasetSpec

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # (0.485, 0.456, 0.406) * 255
IMAGENET_STD = (58.395, 57.12, 57.375)  # (0.229, 0.224, 0.225) * 255
IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")

# The TFDS versions are the builders' defaults in the tensorflow-datasets kzoo requires
# (4.9.10, setup.py), i.e. what an unpinned load reads; pinned so that another TFDS
# cannot silently read (or prepare) another version.
BUILTIN = (
    # fb.resnet.torch's constants and augmentation (pad-4 crop + flip), as the papers'
    # code used; 45k/5k as He et al.
    DatasetSpec(
        name="cifar10",
        classes=10,
        image_shape=(32, 32, 3),
        train_size=50000,
        test_size=10000,
        validation_size=5000,
        mean=(125.3, 123.0, 113.9),
        std=(63.0, 62.1, 66.7),
        source=TFDSSource(
            builder="cifar10", version="3.0.2", train_parts=(TrainPart(split="train", size=50000),)
        ),
        augmentation=Augmentation(pad=4, flip=True),
    ),
    DatasetSpec(
        name="cifar100",
        classes=100,
        image_shape=(32, 32, 3),
        train_size=50000,
        test_size=10000,
        validation_size=5000,
        mean=(129.3, 124.1, 112.4),
        std=(68.2, 65.4, 70.4),
        source=TFDSSource(
            builder="cifar100", version="3.0.2", train_parts=(TrainPart(split="train", size=50000),)
        ),
        augmentation=Augmentation(pad=4, flip=True),
    ),
    # SVHN: pixels / 255, no augmentation (WRN). 5000 of the 73,257 as for CIFAR.
    DatasetSpec(
        name="svhn",
        classes=10,
        image_shape=(32, 32, 3),
        train_size=73257,
        test_size=26032,
        validation_size=5000,
        source=TFDSSource(
            builder="svhn_cropped", version="3.1.0", train_parts=(TrainPart(split="train", size=73257),)
        ),
    ),
    # train + extra (WRN's protocol); 6000 held out as Sermanet & LeCun / Goodfellow et
    # al. did, 4000 from train and 2000 from extra (by count, not per class).
    DatasetSpec(
        name="svhn_extra",
        classes=10,
        image_shape=(32, 32, 3),
        train_size=604388,
        test_size=26032,
        validation_size=6000,
        source=TFDSSource(
            builder="svhn_cropped",
            version="3.1.0",
            train_parts=(
                TrainPart(split="train", size=73257, validation_share=2 / 3),
                TrainPart(split="extra", size=531131, validation_share=1 / 3),
            ),
        ),
    ),
    # TFDS's "validation" (the official 50k val set) is kzoo's test split; 10,000
    # training images are held out for validation. Training: Inception's random-resized
    # crop to 224 (+ flip); evaluation: the shorter side to 256, the central 224x224.
    # Too big to cache, so a 4096-image shuffle buffer; the tars cannot be downloaded.
    DatasetSpec(
        name="imagenet2012",
        classes=1000,
        image_shape=(224, 224, 3),
        train_size=1281167,
        test_size=50000,
        validation_size=10000,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        eval_resize=256,
        title="ImageNet",
        source=TFDSSource(
            builder="imagenet2012",
            version="5.1.0",
            train_parts=(TrainPart(split="train", size=1281167),),
            test_split="validation",
            manual_archives=IMAGENET_TARS,
            manual_source="image-net.org",
        ),
        augmentation=Augmentation(random_resized_crop=(0.08, 1.0)),
        cache=False,
        shuffle_buffer=4096,
    ),
    # Computed once over all pixels of the 60,000 training images (float64 mean and
    # population std) of Debian's dataset-fashion-mnist files. Pad-crop (padding with the
    # black background) + flip.
    DatasetSpec(
        name="fashion_mnist",
        classes=10,
        image_shape=(28, 28, 1),
        train_size=60000,
        test_size=10000,
        validation_size=5000,
        mean=(72.9404,),
        std=(90.0212,),
        source=IDXSource(
            subdirs=("fashion-mnist", "fashion_mnist"),
            system_dirs=("/usr/share/datasets/fashion-mnist",),
            keras_module="fashion_mnist",
        ),
        augmentation=Augmentation(pad=2, flip=True, pad_pixel=0.0),
    ),
    # The same statistic for MNIST's 60,000 training images: the widely quoted
    # 0.13066 / 0.30811 of the [0, 1] scale, times 255 (MNIST is not on the dev machine).
    # Pad-crop without flip (digits are not mirror-symmetric).
    DatasetSpec(
        name="mnist",
        classes=10,
        image_shape=(28, 28, 1),
        train_size=60000,
        test_size=10000,
        validation_size=5000,
        mean=(33.3184,),
        std=(78.5675,),
        source=IDXSource(
            subdirs=("mnist",),
            system_dirs=("/usr/share/datasets/mnist",),
            keras_module="mnist",
            keras_npz="mnist.npz",
        ),
        augmentation=Augmentation(pad=2, flip=False, pad_pixel=0.0),
    ),
)

for _spec in BUILTIN:
    register_dataset(_spec)
