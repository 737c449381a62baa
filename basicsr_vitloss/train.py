"""Training entry point: ``python -m basicsr_vitloss.train -opt X.yml`` (also ``basicsr-vitloss-train``
and, through the startup hook, ``python -m basicsr.train``). Same arguments as BasicSR's; runs
BasicSR's own training pipeline with experiments/ and tb_logger/ under the current directory. With
``val: save_comparison: true`` it then writes ``experiments/<name>/comparison.png`` (blurry input |
restored | sharp for each scene of the last validation, see ``utils.comparison_figure``) and logs its path
as the last line."""


def main(argv=None):
    """Run BasicSR's ``train_pipeline``; ``argv`` defaults to the command line."""
    import os
    import sys

    from basicsr_vitloss import launch  # first: applies the fixes basicsr needs to import, registers

    from basicsr import train

    from basicsr_vitloss.utils import comparison_figure

    args = launch._arguments(sys.argv[1:] if argv is None else argv)
    comparison_figure.save_comparison_enabled(launch.read_options(args.opt), f'{args.opt}: {comparison_figure.KEY}')
    launch.run(train.train_pipeline, argv)
    comparison_figure.write_comparison_after_training(os.getcwd())


if __name__ == '__main__':
    main()
