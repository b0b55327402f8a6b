"""EraseReLU paper, Table 2: original vs EraseReLU on CIFAR-10, CIFAR-100 and SVHN
(test error %) for ResNet, Pre-act ResNet, Wide ResNet, ResNeXt and Inception-V2.

The recipe is ``kzoo.reproduce.recipes.eraserelu_table2``;
this script runs it, with the options ``kzoo reproduce eraserelu_table2`` takes:

    python applications/eraserelu_table2.py --scale paper --only 'wrn52_1*'
    python applications/eraserelu_table2.py --scale cpu
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.eraserelu_table2 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
