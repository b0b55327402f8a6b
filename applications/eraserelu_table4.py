"""EraseReLU paper, Table 4: ResNet-152 and ResNet-200 with and without EraseReLU on the
full ImageNet (top-1 error %, single 224 center crop), next to Pre-act ResNet-200.

The recipe is ``kzoo.reproduce.recipes.eraserelu_table4``;
this script runs it, with the options ``kzoo reproduce eraserelu_table4`` takes:

    python applications/eraserelu_table4.py --scale paper
    python applications/eraserelu_table4.py --scale cpu
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.eraserelu_table4 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
