"""Proportional-module paper, Table 2: plain nets of depth 38, 62 and 84 with the 1:1
paired module against the 2:1 proportional module (every other ReLU removed), and the
84-layer ensemble module, CIFAR-100 test top-1 %.

The recipe is ``kzoo.reproduce.recipes.proportional_table2``;
this script runs it, with the options ``kzoo reproduce proportional_table2`` takes:

    python applications/proportional_table2.py --scale cpu --only 'plain38*'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.proportional_table2 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
