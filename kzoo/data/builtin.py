"""The datasets kzoo ships, each as its paper loaded, split and pre-processed it: the
constants, with where each comes from, in one place."""

from kzoo.data.registry import DatasetSpec, register_dataset

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # (0.485, 0.456, 0.406) * 255
IMAGENET_STD = (58.395, 57.12, 57.375)  # (0.229, 0.224, 0.225) * 255
IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")

# The TFDS versions are the builders' defaults in the tensorflow-datasets kzoo requires
# (4.9.10, setup.py), i.e. what an unpinned load reads; pinned so that another TFDS
# cannot silently read (or prepare) another version.
BUILTIN = (
    # fb.resnet.torch's constants, as the papers' code used; 45k/5k as He et al.
    DatasetSpec(
        "cifar10",
        10,
        (32, 32, 3),
        50000,
        10000,
        5000,
        (125.3, 123.0, 113.9),
        (63.0, 62.1, 66.7),
        "tfds",
        tfds_name="cifar10",
        tfds_version="3.0.2",
        train_parts=(("train", 50000, 1.0),),
        pad=4,
        flip=True,
    ),
    DatasetSpec(
        "cifar100",
        100,
        (32, 32, 3),
        50000,
        10000,
        5000,
        (129.3, 124.1, 112.4),
        (68.2, 65.4, 70.4),
        "tfds",
        tfds_name="cifar100",
        tfds_version="3.0.2",
        train_parts=(("train", 50000, 1.0),),
        pad=4,
        flip=True,
    ),
    # SVHN: pixels / 255, no augmentation (WRN). 5000 of the 73,257 as for CIFAR.
    DatasetSpec(
        "svhn",
        10,
        (32, 32, 3),
        73257,
        26032,
        5000,
        None,
        None,
        "tfds",
        tfds_name="svhn_cropped",
        tfds_version="3.1.0",
        train_parts=(("train", 73257, 1.0),),
    ),
    # train + extra (WRN's protocol); 6000 held out as Sermanet & LeCun / Goodfellow et
    # al. did, 4000 from train and 2000 from extra (by count, not per class).
    DatasetSpec(
        "svhn_extra",
        10,
        (32, 32, 3),
        604388,
        26032,
        6000,
        None,
        None,
        "tfds",
        tfds_name="svhn_cropped",
        tfds_version="3.1.0",
        train_parts=(("train", 73257, 2 / 3), ("extra", 531131, 1 / 3)),
    ),
    # TFDS's "validation" (the official 50k val set) is kzoo's test split; 10,000
    # training images are held out for validation. Training: Inception's random-resized
    # crop to 224 (+ flip); evaluation: the shorter side to 256, the central 224x224.
    # Too big to cache, so a 4096-image shuffle buffer; the tars cannot be downloaded.
    DatasetSpec(
        "imagenet2012",
        1000,
        (224, 224, 3),
        1281167,
        50000,
        10000,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "tfds",
        tfds_name="imagenet2012",
        tfds_version="5.1.0",
        train_parts=(("train", 1281167, 1.0),),
        test_split="validation",
        manual_archives=IMAGENET_TARS,
        manual_source="image-net.org",
        title="ImageNet",
        eval_resize=256,
        random_resized_crop=(0.08, 1.0),
        cache=False,
        shuffle_buffer=4096,
    ),
    # Computed once over all pixels of the 60,000 training images (float64 mean and
    # population std) of Debian's dataset-fashion-mnist files. Pad-crop (padding with the
    # black background) + flip.
    DatasetSpec(
        "fashion_mnist",
        10,
        (28, 28, 1),
        60000,
        10000,
        5000,
        (72.9404,),
        (90.0212,),
        "idx",
        idx_subdirs=("fashion-mnist", "fashion_mnist"),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        keras_module="fashion_mnist",
        pad=2,
        flip=True,
        pad_pixel=0.0,
    ),
    # The same statistic for MNIST's 60,000 training images: the widely quoted
    # 0.13066 / 0.30811 of the [0, 1] scale, times 255 (MNIST is not on the dev machine).
    # Pad-crop without flip (digits are not mirror-symmetric).
    DatasetSpec(
        "mnist",
        10,
        (28, 28, 1),
        60000,
        10000,
        5000,
        (33.3184,),
        (78.5675,),
        "idx",
        idx_subdirs=("mnist",),
        system_dirs=("/usr/share/datasets/mnist",),
        keras_module="mnist",
        keras_npz="mnist.npz",
        pad=2,
        flip=False,
        pad_pixel=0.0,
    ),
)

for _spec in BUILTIN:
    register_dataset(_spec)
