"""ResNet-20 and ResNet-56: the original network against the three ways of placing
ReLUs this zoo is about, each applied alone.

The recipe is ``kzoo.reproduce.recipes.resnet_relu_variants``;
this script runs it, with the options ``kzoo reproduce resnet_relu_variants`` takes:

    python applications/resnet_relu_variants.py --scale cpu --out results/resnet_relu_variants
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kzoo.reproduce import main  # noqa: E402
from kzoo.reproduce.recipes.resnet_relu_variants import STUDY  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(STUDY))
