"""Test entry point: ``python -m basicsr_vitloss.test -opt X.yml`` (also ``basicsr-vitloss-test``
and, through the startup hook, ``python -m basicsr.test``). Runs BasicSR's own test pipeline with
results/ under the current directory."""


def main(argv=None):
    """Run BasicSR's ``test_pipeline``; ``argv`` defaults to the command line."""
    from basicsr_vitloss import launch  # first: applies the fixes basicsr needs to import, registers

    from basicsr import test

    launch.run(test.test_pipeline, argv)


if __name__ == '__main__':
    main()
