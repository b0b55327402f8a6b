"""Proportional-module paper, Figures 8 and 9: pre-activation bottleneck ResNets (110 and
164 layers) on CIFAR-100, the 1:1 block against the 3:2 blocks that drop one of its three
ReLUs: Type 1 the first, Type 2 the second, Type 3 the third. Test accuracy per epoch.

The recipe is ``kzoo.reproduce.recipes.proportional_bottleneck``;
this script runs it, with the options ``kzoo reproduce proportional_bottleneck`` takes:

    python applications/proportional_bottleneck.py --scale paper --only 'bottleneck110*'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.proportional_bottleneck import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
