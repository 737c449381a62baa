"""Training entry point: ``python -m basicsr_vitloss.train -opt X.yml`` (also ``basicsr-vitloss-train``
and, through the startup hook, ``python -m basicsr.train``). Same arguments as BasicSR's; runs
BasicSR's own training pipeline with experiments/ and tb_logger/ under the current directory."""
import os
import sys


def main(argv=None):
    """Run BasicSR's ``train_pipeline``; ``argv`` defaults to the command line."""
    import basicsr_vitloss  # noqa: F401  (compat fixes, registration)
    from basicsr import train as basicsr_train

    from basicsr_vitloss import launch

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    launch.prepare(sys.argv[1:])
    basicsr_train.train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
