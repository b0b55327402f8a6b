"""FReLU paper, Table 2: ResNet-20/32/44/56/110 with ReLU (original), ELU or FReLU,
CIFAR-10 and CIFAR-100 test error %.

The recipe is ``kzoo.reproduce.recipes.frelu_table2``;
this script runs it, with the options ``kzoo reproduce frelu_table2`` takes:

    python applications/frelu_table2.py --scale paper --only 'resnet110-*'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.frelu_table2 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
