"""EraseReLU paper, Table 3: ResNet-50 with and without EraseReLU trained on 10%, 20% and
30% of ImageNet (top-1 error %, single 224 crop).

The recipe is ``kzoo.reproduce.recipes.eraserelu_table3``;
this script runs it, with the options ``kzoo reproduce eraserelu_table3`` takes:

    python applications/eraserelu_table3.py --scale paper
    python applications/eraserelu_table3.py --scale cpu
"""

import sys

from kzoo.reproduce import main
from kzoo.reproduce.recipes.eraserelu_table3 import STUDY

if __name__ == "__main__":
    sys.exit(main(STUDY))
