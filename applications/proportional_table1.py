"""Proportional-module paper, Table 1: an 84-layer plain net of paired modules
(conv-BN-ReLU) against the same net of ensemble modules (a shortcut across every ReLU,
a leaky ReLU of slope 0.5 up to scale), CIFAR-100 test top-1 %.

The recipe is ``kzoo.reproduce.recipes.proportional_table1``;
this script runs it, with the options ``kzoo reproduce proportional_table1`` takes:

    python applications/proportional_table1.py --scale paper
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.proportional_table1 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
