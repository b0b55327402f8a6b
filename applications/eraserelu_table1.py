"""EraseReLU paper, Table 1: EraseReLU against other ways of changing a residual
block's ReLUs, on CIFAR-100 (test error %, ResNet-20/56/110).

The recipe is ``kzoo.reproduce.recipes.eraserelu_table1``;
this script runs it, with the options ``kzoo reproduce eraserelu_table1`` takes:

    python applications/eraserelu_table1.py --scale paper
    python applications/eraserelu_table1.py --scale cpu --only 'resnet20-*'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.eraserelu_table1 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
