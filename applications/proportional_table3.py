"""Proportional-module paper, Table 3 (and Figure 7's curves): pre-activation ResNets of
building blocks with the 1:1 pre-paired block (BN-ReLU-conv twice) against the 2:1
pre-proportional block (its first ReLU removed: BN-conv-BN-ReLU-conv), test top-1 %.

The recipe is ``kzoo.reproduce.recipes.proportional_table3``;
this script runs it, with the options ``kzoo reproduce proportional_table3`` takes:

    python applications/proportional_table3.py --scale paper --only 'preact110*'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.proportional_table3 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
