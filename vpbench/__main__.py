"""``python -m vpbench``, which is how ``torchrun ... -m vpbench run ...`` starts each process."""

import sys

from vpbench.cli import main

sys.exit(main())
