"""EraseReLU paper, Figure 3 (a-c): accuracy against the proportion of modules whose
ReLU is erased, for networks of single-ReLU modules.

The recipe is ``kzoo.reproduce.recipes.eraserelu_fig3``;
this script runs it, with the options ``kzoo reproduce eraserelu_fig3`` takes:

    python applications/eraserelu_fig3.py --scale cpu --only 'vgg*'
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.eraserelu_fig3 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
