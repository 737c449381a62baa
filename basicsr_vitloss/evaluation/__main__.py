"""``python -m basicsr_vitloss.evaluation``: the same command as ``basicsr-vitloss-evaluate``."""
import sys

from basicsr_vitloss.evaluation.cli import main

sys.exit(main())
