"""FReLU paper, Table 1: SmallNet (3 conv + 2 FC layers) with ReLU, ELU or FReLU, with
and without batch normalization, at base learning rates 0.01 and 0.1, CIFAR-100 test
error %.

The recipe is ``kzoo.reproduce.recipes.frelu_table1``;
this script runs it, with the options ``kzoo reproduce frelu_table1`` takes:

    python applications/frelu_table1.py --scale cpu --only '*lr0.1'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.frelu_table1 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
