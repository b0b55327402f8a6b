"""Proportional-module paper, Table 4: DFN-MR1 (merge-and-run, depth 110) with paired
blocks against its cross-proportional blocks, test top-1 %.

The recipe is ``kzoo.reproduce.recipes.proportional_table4``;
this script runs it, with the options ``kzoo reproduce proportional_table4`` takes:

    python applications/proportional_table4.py --scale cpu --seeds 1
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.proportional_table4 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
