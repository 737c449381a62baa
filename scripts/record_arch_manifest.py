"""Record the state_dict layout of the OFFICIAL architectures into ``tests/data/<arch>_official_manifest.json``.

    python scripts/record_arch_manifest.py --repos DIR [--out tests/data] [--only nafnet restormer ...]

``DIR`` holds bare git mirrors of the official repositories, named ``<owner>+<name>/repo`` (or plain
``<owner>+<name>``): megvii-research/NAFNet, swz30/Restormer, ZhendongWang6/Uformer and
Abdullah-Abuolaim/defocus-deblurring-dual-pixel. The official files are read from each mirror's HEAD with
``git show`` into a temporary folder outside this repository and imported from there; the only change
made to them is the import path of NAFNet's sibling modules (``basicsr.models.archs.X`` -> ``X``), since
the installed BasicSR has no ``basicsr.models.archs``, and its ``arch_util`` logger import
(``basicsr.utils.get_root_logger`` -> ``logging.getLogger``, used only in weight-init messages).
``einops`` is replaced by a stub when it is not installed (it is only called in ``forward``; nothing
here runs a forward pass, except the official
NAFNetLocal constructor, which converts its pools with one forward of a ``train_size`` input and has no
``einops``). DPDNet's official code is Keras (``DPDNet/model.py``, function ``unet``): it is run on a
stub of the few Keras layers it uses, which records every ``Conv2D`` in call order with the Keras weight
shapes (kernel ``(kh, kw, c_in, c_out)``, bias ``(c_out,)``) and the default Keras 2 layer names.

Tests (tests/test_archs/test_every_arch.py) build this package's architecture with the same keyword
arguments and compare keys and shapes exactly. The MPRNet manifest
(tests/data/mprnet_official_manifest.json) was recorded earlier by another script and has its own format.
"""
import argparse
import ast
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import types

REPOS = {
    'nafnet': 'megvii-research/NAFNet',
    'restormer': 'swz30/Restormer',
    'uformer': 'ZhendongWang6/Uformer',
    'dpdnet': 'Abdullah-Abuolaim/defocus-deblurring-dual-pixel',
}
HASH_RECIPE = 'sha256 of json.dumps(sorted([key, list(shape)] for key, shape in state_dict().items()))'


def _git(git_dir, *args):
    return subprocess.run(['git', '--git-dir', git_dir, *args], check=True, capture_output=True,
                          text=True).stdout


def _mirror(root, repo):
    base = os.path.join(root, repo.replace('/', '+'))
    git_dir = os.path.join(base, 'repo') if os.path.isdir(os.path.join(base, 'repo')) else base
    return git_dir, _git(git_dir, 'rev-parse', 'HEAD').strip()


def _extract(git_dir, files, folder, rewrite=()):
    for path in files:
        text = _git(git_dir, 'show', f'HEAD:{path}')
        for old, new in rewrite:
            text = text.replace(old, new)
        with open(os.path.join(folder, os.path.basename(path)), 'w') as f:
            f.write(text)


def _stub_einops():
    try:
        import einops  # noqa: F401
        return False
    except ImportError:
        pass
    import torch

    def unavailable(*args, **kwargs):
        raise RuntimeError('einops stub: construction only')

    einops = types.ModuleType('einops')
    einops.rearrange = einops.repeat = einops.reduce = unavailable
    layers = types.ModuleType('einops.layers')
    layers_torch = types.ModuleType('einops.layers.torch')

    class Rearrange(torch.nn.Module):  # parameter-free, as the real one
        def __init__(self, *args, **kwargs):
            super().__init__()

    layers_torch.Rearrange = Rearrange
    einops.layers, layers.torch = layers, layers_torch
    sys.modules.update({'einops': einops, 'einops.layers': layers, 'einops.layers.torch': layers_torch})
    return True


def _layout(state, kwargs, **extra):
    pairs = [[k, list(v.shape)] for k, v in state.items()]
    return dict({
        'kwargs': kwargs,
        'num_keys': len(pairs),
        'state_dict_numel': sum(v.numel() for v in state.values()),
        'sha256_sorted_key_shapes': hashlib.sha256(json.dumps(sorted(pairs)).encode()).hexdigest(),
        'hash_recipe': HASH_RECIPE,
    }, **extra, keys=pairs)


def _torch_model(module, cls, kwargs, config_source, official_name):
    import torch
    torch.manual_seed(0)
    net = getattr(module, cls)(**kwargs)
    return _layout(net.state_dict(), kwargs, official_name=official_name, official_class=cls,
                   config_source=config_source,
                   num_parameters=sum(p.numel() for p in net.parameters()))


def record_nafnet(git_dir, folder):
    files = ['basicsr/models/archs/NAFNet_arch.py', 'basicsr/models/archs/local_arch.py',
             'basicsr/models/archs/arch_util.py']
    _extract(git_dir, files, folder, rewrite=[
        ('from basicsr.models.archs.', 'from '),
        ('from basicsr.utils import get_root_logger', 'from logging import getLogger as get_root_logger')])
    module = importlib.import_module('NAFNet_arch')
    width64 = {'width': 64, 'enc_blk_nums': [1, 1, 1, 28], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1, 1]}
    source = 'options/test/GoPro/NAFNet-width64.yml, network_g (type NAFNetLocal)'
    return files, {
        'NAFNet-GoPro-width64': _torch_model(module, 'NAFNetLocal', width64, source, 'NAFNetLocal'),
        'NAFNet-GoPro-width64 (plain NAFNet)': _torch_model(
            module, 'NAFNet', width64, source + ', built as NAFNet (global pools; same weights)', 'NAFNet'),
    }, {'release_checkpoint': "BasicSR: {'params': state_dict} (NAFNet-GoPro-width64.pth, param_key params)"}


def record_restormer(git_dir, folder):
    files = ['basicsr/models/archs/restormer_arch.py']
    _extract(git_dir, files, folder)
    stubbed = _stub_einops()
    module = importlib.import_module('restormer_arch')
    common = {'out_channels': 3, 'dim': 48, 'num_blocks': [4, 6, 6, 8], 'num_refinement_blocks': 4,
              'heads': [1, 2, 4, 8], 'ffn_expansion_factor': 2.66, 'bias': False, 'LayerNorm_type': 'WithBias'}
    models = {}
    for name, path, inp, dual in [
            ('Restormer-DefocusDeblur-DualPixel', 'Defocus_Deblurring/Options/DefocusDeblur_DualPixel_16bit_'
             'Restormer.yml', 6, True),
            ('Restormer-DefocusDeblur-Single', 'Defocus_Deblurring/Options/DefocusDeblur_Single_8bit_Restormer.yml '
             '(the same network_g as Motion_Deblurring/Options/Deblurring_Restormer.yml)', 3, False)]:
        kwargs = dict({'inp_channels': inp}, **common, dual_pixel_task=dual)
        models[name] = _torch_model(module, 'Restormer', kwargs, f'{path}, network_g', 'Restormer')
    return files, models, {
        'release_checkpoint': "{'params': state_dict} (the official test scripts load checkpoint['params'])",
        'einops': 'stubbed (construction only)' if stubbed else 'installed'}


def record_uformer(git_dir, folder):
    files = ['model.py']
    _extract(git_dir, files, folder)
    stubbed = _stub_einops()
    sys.modules.pop('model', None)
    module = importlib.import_module('model')
    base = {'img_size': 256, 'win_size': 8, 'token_projection': 'linear', 'token_mlp': 'leff', 'modulator': True}
    uformer_b = dict(base, embed_dim=32, depths=[1, 2, 8, 8, 2, 8, 8, 2, 1], dd_in=3)
    uformer_t = dict(base, embed_dim=16)
    source = 'utils/model_utils.py get_arch, arch {} with --train_ps 256 (script/train_motiondeblur.sh)'
    return files, {
        'Uformer_B': _torch_model(module, 'Uformer', uformer_b, source.format('Uformer_B'), 'Uformer_B'),
        'Uformer_T': _torch_model(module, 'Uformer', uformer_t, source.format('Uformer_T'), 'Uformer_T'),
        'Uformer_T dd_in=6': _torch_model(
            module, 'Uformer', dict(uformer_t, dd_in=6),
            source.format('Uformer_T') + ' and dd_in=6 (the official constructor argument; no official '
            'release uses 6 input channels: the dual-pixel DPDD input of this package)', 'Uformer_T'),
    }, {'release_checkpoint': "{'epoch', 'state_dict': DataParallel state_dict ('module.' keys), 'optimizer'} "
                              '(train/train_motiondeblur.py torch.save; utils/model_utils.py load_checkpoint)',
        'einops': 'stubbed (construction only)' if stubbed else 'installed'}


class _KerasTensor:
    def __init__(self, channels):
        self.channels = channels


class _KerasStub:
    """The Keras layers DPDNet/model.py uses, recording each Conv2D's weights in call order."""

    def __init__(self):
        self.convs = []

    def Conv2D(self, filters, kernel_size, **kwargs):  # noqa: N802 (Keras names)
        def call(x):
            name = f'conv2d_{len(self.convs) + 1}'  # Keras 2 default names count from 1
            self.convs.append({'name': name, 'kernel': [kernel_size, kernel_size, x.channels, filters],
                               'bias': [filters], 'activation': kwargs.get('activation')})
            return _KerasTensor(filters)
        return call

    def MaxPooling2D(self, **kwargs):  # noqa: N802
        return lambda x: x

    def UpSampling2D(self, **kwargs):  # noqa: N802
        return lambda x: x

    def Dropout(self, rate):  # noqa: N802
        return lambda x: x

    @staticmethod
    def concatenate(tensors, axis):
        return _KerasTensor(sum(t.channels for t in tensors))


def record_dpdnet(git_dir, folder):
    files = ['DPDNet/model.py', 'DPDNet/config.py']
    config = _git(git_dir, 'show', 'HEAD:DPDNet/config.py')
    values = {}
    for node in ast.parse(config).body:  # config.py imports cv2 / skimage / sklearn: read its constants
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id in ('nb_ch', 'nb_ch_all', 'dropout_rate', 'patch_h', 'patch_w'):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    source = _git(git_dir, 'show', 'HEAD:DPDNet/model.py')
    tree = ast.parse(source)
    unet = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == 'unet')
    stub = _KerasStub()
    scope = {name: getattr(stub, name) for name in ('Conv2D', 'MaxPooling2D', 'UpSampling2D', 'Dropout',
                                                     'concatenate')}
    scope.update(values)
    exec(compile(ast.Module(body=[unet], type_ignores=[]), 'DPDNet/model.py', 'exec'), scope)
    scope['unet'](_KerasTensor(values['nb_ch_all']))
    layers = stub.convs
    return files, {
        'DPDNet': {
            'official_name': 'DPDNet (Keras, unet(Input(batch_shape=(None, patch_h, patch_w, nb_ch_all))))',
            'config_source': 'DPDNet/config.py ' + ', '.join(f'{k}={v}' for k, v in sorted(values.items())),
            'kwargs': {'in_channels': values['nb_ch_all'], 'out_channels': values['nb_ch'],
                       'base_channels': 64, 'dropout_rate': values['dropout_rate']},
            'num_layers': len(layers),
            'num_parameters': sum(_prod(x['kernel']) + x['bias'][0] for x in layers),
            'keras_conv2d_layers': layers,
        }}, {'release_checkpoint': 'Keras HDF5 (ModelCheckpoints/defocus_deblurring_dp_l5_s512_f0.7_d0.4.hdf5); '
                                   'no PyTorch weights exist',
             'framework': 'Keras 2 (layers recorded from the code with a stub, no TensorFlow needed)'}


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


RECORDERS = {'nafnet': record_nafnet, 'restormer': record_restormer, 'uformer': record_uformer,
             'dpdnet': record_dpdnet}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repos', required=True, help='folder of the bare git mirrors of the official repos')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'tests', 'data'))
    parser.add_argument('--only', nargs='*', choices=sorted(RECORDERS), default=sorted(RECORDERS))
    args = parser.parse_args(argv)
    import torch
    for arch in args.only:
        git_dir, commit = _mirror(args.repos, REPOS[arch])
        with tempfile.TemporaryDirectory(prefix=f'official-{arch}-') as folder:
            sys.path.insert(0, folder)
            try:
                files, models, notes = RECORDERS[arch](git_dir, folder)
            finally:
                sys.path.remove(folder)
        manifest = {'source': {'repository': f'https://github.com/{REPOS[arch]}', 'commit': commit, 'files': files,
                               'recorded_with': f'scripts/record_arch_manifest.py, torch {torch.__version__} CPU',
                               **notes},
                    'models': models}
        path = os.path.join(args.out, f'{arch}_official_manifest.json')
        with open(path, 'w') as f:
            f.write(_dump(manifest) + '\n')
        print(path, {name: m.get('num_keys', m.get('num_layers')) for name, m in models.items()})


def _dump(manifest):
    """JSON with one line per key / layer (diffable, not one number per line)."""
    manifest, lines = json.loads(json.dumps(manifest)), {}
    for model in manifest['models'].values():
        for field in ('keys', 'keras_conv2d_layers'):
            for i, entry in enumerate(model.get(field, [])):
                lines[f'@line{len(lines)}@'] = json.dumps(entry)
                model[field][i] = f'@line{len(lines) - 1}@'
    text = json.dumps(manifest, indent=1)
    for token, line in lines.items():
        text = text.replace(f'"{token}"', line, 1)
    return text


if __name__ == '__main__':
    main()
