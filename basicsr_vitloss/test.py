"""Test entry point: ``python -m basicsr_vitloss.test -opt X.yml`` (also ``basicsr-vitloss-test``
and, through the startup hook, ``python -m basicsr.test``). Runs BasicSR's own test pipeline with
results/ under the current directory."""
import os
import sys


def main(argv=None):
    """Run BasicSR's ``test_pipeline``; ``argv`` defaults to the command line."""
    import basicsr_vitloss  # noqa: F401  (compat fixes, registration)
    from basicsr import test as basicsr_test

    from basicsr_vitloss import launch

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    launch.prepare(sys.argv[1:])
    basicsr_test.test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
