"""Registration into BasicSR's registries, double imports, and the startup hook."""
import pytest

import basicsr_vitloss
from conftest import run

PLUGIN_DATASETS = ['DPDDDataset', 'Dataset_DefocusDeblur_DualPixel_16bit', 'SyntheticDualPixelDataset']


def test_importing_the_plugin_registers_its_classes():
    from basicsr.utils.registry import DATASET_REGISTRY
    from basicsr_vitloss.data.synthetic_dp_dataset import SyntheticDualPixelDataset
    assert DATASET_REGISTRY.get('SyntheticDualPixelDataset') is SyntheticDualPixelDataset
    assert basicsr_vitloss.data.__all__ == ['dpdd_dataset', 'synthetic_dp_dataset']


@pytest.mark.integration
def test_double_import_and_reload_are_harmless(tmp_path):
    # in a subprocess: reloading replaces the class object, which would leak into other tests
    code = ('import importlib, basicsr_vitloss; from basicsr.utils.registry import DATASET_REGISTRY; '
            'm = importlib.import_module("basicsr_vitloss.data.synthetic_dp_dataset"); '
            'importlib.import_module("basicsr_vitloss"); '  # second import: cached, nothing re-registered
            'r = importlib.reload(m); '  # re-runs the decorator: the same class replaces itself
            'assert DATASET_REGISTRY.get("SyntheticDualPixelDataset") is r.SyntheticDualPixelDataset; '
            'print(list(DATASET_REGISTRY.keys()).count("SyntheticDualPixelDataset"))')
    assert run(['python', '-c', code], cwd=tmp_path).stdout.strip() == '1'


def test_a_different_class_under_a_basicsr_name_is_refused():
    """BasicSR's own names stay BasicSR's; names shared with the plugin: tests/test_compat/test_coexistence.py."""
    from basicsr.utils.registry import DATASET_REGISTRY

    class PairedImageDataset:  # same name as BasicSR's, other module
        pass

    with pytest.raises(KeyError, match='already registered .* by basicsr.data.paired_image_dataset'):
        DATASET_REGISTRY.register(PairedImageDataset)


@pytest.mark.integration
def test_plain_import_basicsr_activates_the_plugin(tmp_path):
    code = ('import sys, basicsr; from basicsr.utils.registry import DATASET_REGISTRY; '
            'assert "basicsr_vitloss" in sys.modules; '
            f'assert all(n in DATASET_REGISTRY for n in {PLUGIN_DATASETS!r}); print("ok")')
    assert run(['python', '-c', code], cwd=tmp_path).stdout.strip() == 'ok'


@pytest.mark.parametrize('order', ['import basicsr_vitloss, basicsr', 'import basicsr, basicsr_vitloss',
                                   'import basicsr_vitloss; import basicsr_vitloss'])
@pytest.mark.integration
def test_import_orders(tmp_path, order):
    code = f'{order}; from basicsr.utils.registry import DATASET_REGISTRY; print(len(list(DATASET_REGISTRY)))'
    counts = run(['python', '-c', code], cwd=tmp_path).stdout.split()
    assert int(counts[-1]) > 10


def test_startup_hook_costs_nothing_without_basicsr(tmp_path):
    code = ('import sys; heavy = [m for m in ("torch", "basicsr", "basicsr_vitloss", "numpy") if m in sys.modules]; '
            'print("loaded:", heavy, "hook:", "basicsr_vitloss_startup" in sys.modules)')
    out = run(['python', '-c', code], cwd=tmp_path).stdout
    assert 'loaded: [] hook: True' in out


@pytest.mark.integration
def test_hook_can_be_disabled(tmp_path):
    code = 'import sys, basicsr; print("basicsr_vitloss" in sys.modules)'
    out = run(['python', '-c', code], cwd=tmp_path, BASICSR_VITLOSS_DISABLE_HOOK=1).stdout
    assert out.strip() == 'False'


@pytest.mark.integration
def test_dash_m_basicsr_train_is_redirected_only_for_entry_points(tmp_path):
    import basicsr_vitloss_startup as startup
    assert startup.REDIRECTED_ENTRY_POINTS == {'basicsr.train': 'basicsr_vitloss.train',
                                               'basicsr.test': 'basicsr_vitloss.test'}
    # another `python -m basicsr.<module>` runs BasicSR's own code unchanged
    proc = run(['python', '-m', 'basicsr.version'], cwd=tmp_path)
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr


def test_public_classes_at_the_top_level():
    import basicsr_vitloss
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY
    from basicsr_vitloss import GlobalDistributionLoss, LocalMAEPerceptualLoss
    assert LOSS_REGISTRY.get('LocalMAEPerceptualLoss') is LocalMAEPerceptualLoss
    assert LOSS_REGISTRY.get('GlobalDistributionLoss') is GlobalDistributionLoss
    for name in basicsr_vitloss.__all__:
        obj = getattr(basicsr_vitloss, name)
        if isinstance(obj, type):
            assert (ARCH_REGISTRY if name in ARCH_REGISTRY else LOSS_REGISTRY).get(name) is obj, name
    assert {'NAFNet', 'Restormer', 'Uformer', 'DPDNet', 'MPRNet', 'PSNRLoss'} <= set(basicsr_vitloss.__all__)
