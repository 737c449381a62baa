"""The paper's evaluation report; the tool lives in basicsr_vitloss.evaluation (``basicsr-vitloss-evaluate``,
``python -m basicsr_vitloss.evaluation``). This script runs the same command: see docs/evaluation.md."""
import sys

from basicsr_vitloss.evaluation.cli import main

if __name__ == '__main__':
    sys.exit(main())
