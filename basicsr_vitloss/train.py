"""Training entry point: ``python -m basicsr_vitloss.train -opt X.yml`` (also ``basicsr-vitloss-train``
and, through the startup hook, ``python -m basicsr.train``). Same arguments as BasicSR's; runs
BasicSR's own training pipeline with experiments/ and tb_logger/ under the current directory."""


def main(argv=None):
    """Run BasicSR's ``train_pipeline``; ``argv`` defaults to the command line."""
    from basicsr_vitloss import launch  # first: applies the fixes basicsr needs to import, registers

    from basicsr import train

    launch.run(train.train_pipeline, argv)


if __name__ == '__main__':
    main()
