"""ONNX export of the plugin's restoration networks (NAFNet, Restormer, Uformer, DPDNet, MPRNet):
``basicsr-vitloss-export --opt OPTIONS.yml --weights FILE --output model.onnx [--height H --width W]
[--dynamic] [--param-key K] [--opset N] [--exporter auto|dynamo|torchscript]``
(also ``python -m basicsr_vitloss.export``).

The network is built from the options' ``network_g`` and loaded with the package's checkpoint reader.
The exported graph maps an image (1, C_in, H, W) in [0, 1] to the final restored image (1, C_out, H, W);
for multi-stage networks (MPRNet) only the final stage is exported.

The size padding the architectures do inside ``forward`` (to a multiple of 8, 16, 128, ...) is moved into
an export wrapper that always pads, with amounts computed from the input shape (zero where none is
needed), so the graph holds no Python branch on the size; the padded input needs no padding inside the
network, whose output is the same. ``--dynamic`` tries dynamic batch, height and width, then dynamic height
and width (batch 1), then the fixed size, and keeps the first model that matches PyTorch at a second size
(H + 9, W + 13; batch 2 where the batch is dynamic); the reason for any fallback is printed. Every export
ends with a parity check through onnxruntime at two inputs; above ``TOLERANCE`` the command fails and
writes nothing.

What each arch gets (torch 2.14, TorchScript exporter): NAFNet, Restormer, Uformer and DPDNet dynamic
batch, height and width; MPRNet dynamic height and width with batch 1 (its forward reads the batch size with
``len()``, a constant once traced); NAFNetLocal the fixed size only (its local pools choose between global
and windowed statistics from the size in Python). Reflect-padding archs give a dynamic model only for an
export size of at least their padding multiple (DPDNet 16, Restormer and MPRNet 8, Uformer ``16 * win_size``).
A Uformer with ``input_padding: square_zero`` (the official test scripts' centred zero square) gives the fixed
size only: the side and offsets of its square come from ``max(H, W)`` in Python.
"""
import argparse
import os
import sys
import warnings

from basicsr_vitloss.utils.network_options import input_channels

TOLERANCE = 1e-4  # largest max-abs difference to PyTorch accepted by the parity check
SECOND_SIZE_STEP = (9, 13)  # a dynamic export is also checked at (H + 9, W + 13): other padding, odd sides
#: tried in this order by --exporter auto: the legacy TorchScript exporter gives dynamic-size models that
#: match PyTorch for every arch here, in seconds; torch.export (dynamo) is the fallback (slower, and its
#: dynamic MPRNet export fails in torch 2.14 / onnxscript 0.7).
EXPORTERS = ('torchscript', 'dynamo')
PROG = 'basicsr-vitloss-export'
ORT_THREADS = 0  # intra-op threads of the onnxruntime sessions of the parity check (0: onnxruntime's default)


class ExportError(RuntimeError):
    """An export that cannot be done or does not match PyTorch; the message says which and why."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description='ONNX export of a network of the options, with a '
                                     'parity check against PyTorch through onnxruntime.')
    parser.add_argument('--opt', required=True, help='options YAML whose network_g describes the network')
    parser.add_argument('--weights', required=True, help='checkpoint (.pth / .safetensors) of that network')
    parser.add_argument('--output', required=True, help='the .onnx file to write')
    parser.add_argument('--height', type=int, default=256, help='export height (default 256)')
    parser.add_argument('--width', type=int, default=256, help='export width (default 256)')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width (falls back to fixed sizes where the arch cannot)')
    parser.add_argument('--param-key', default=None,
                        help='key of the weights in the checkpoint (default: params_ema, params, state_dict, '
                        'model, whichever comes first, or the file itself)')
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset (default 18)')
    parser.add_argument('--exporter', choices=('auto', ) + EXPORTERS, default='auto',
                        help='torch.onnx exporter: dynamo (torch.export based), torchscript (legacy) or auto '
                        '(default: torchscript, then dynamo if it fails)')
    args = parser.parse_args(argv)
    for name in ('height', 'width'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be a positive integer, got {getattr(args, name)}')
    return args


def padding_of(net):
    """(multiple, mode) of the arch's own size padding: NAFNet zero-pads to ``padder_size``; a Uformer with
    ``input_padding='square_zero'`` zero-pads to a centred square ('square_zero', left to the network itself);
    the others reflect-pad to ``pad_multiple`` / ``size_multiple`` (see ``arch_util.pad_to_multiple``);
    (1, None): none."""
    if hasattr(net, 'padder_size'):
        return int(net.padder_size), 'constant'
    if getattr(net, 'input_padding', None) == 'square_zero':
        return int(net.pad_multiple), 'square_zero'
    for name in ('pad_multiple', 'size_multiple'):
        if hasattr(net, name):
            return int(getattr(net, name)), 'reflect'
    return 1, None


def fixed_size_reason(net):
    """Why ``net`` cannot have a dynamic-size graph whatever the exporter (a size branch the parity check at
    one second size may not cross), or None."""
    from basicsr_vitloss.archs.nafnet_arch import LocalAvgPool2d
    if padding_of(net)[1] == 'square_zero':
        return ("its input_padding 'square_zero' pads to a square whose side and offsets depend on the larger "
                "side in Python, which a traced graph freezes (input_padding 'reflect' exports dynamic sizes)")
    if any(isinstance(module, LocalAvgPool2d) for module in net.modules()):
        return ('its local average pools (NAFNetLocal, TLSC) pick global or windowed statistics, and their '
                'strides, from the feature size in Python, which a traced graph freezes')
    return None


def final_image(output):
    """The final restored image of a network output (MPRNet: the first of its stage outputs)."""
    from basicsr_vitloss.models.multi_stage_model import final_output
    return final_output(output)


def make_wrapper(net, height, width):
    """The module that is exported: pads like ``net`` does, runs it, crops back, returns the final image.

    The arch pads only when needed (a Python branch on the size, frozen by tracing); the wrapper always
    pads, by ``(-h) % multiple`` (possibly zero), so the graph works for every size. The arch reflects,
    or replicates where a pad is not smaller than its side; the wrapper takes the arch's choice at the
    export size (so a dynamic model is right for sides of at least ``multiple``, see ``dynamic_limit``).
    A square-zero-padding Uformer pads inside its own forward; it is exported at a fixed size only."""
    import torch
    from torch.nn import functional as F
    multiple, mode = padding_of(net)
    if mode == 'square_zero':
        mode = None  # the network pads itself; the trace holds the padding of the (fixed) export size
    if mode == 'reflect' and not ((-height) % multiple < height and (-width) % multiple < width):
        mode = 'replicate'

    class ExportWrapper(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            h, w = x.shape[-2], x.shape[-1]
            if mode is not None:
                x = F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple), mode=mode)
            return final_image(self.net(x))[..., :h, :w]

    return ExportWrapper().eval()


#: the dynamic axes of each kind of export, tried in this order by --dynamic (then a fixed size)
DYNAMIC_AXES = {'batch+size': {0: 'batch', 2: 'height', 3: 'width'}, 'size': {2: 'height', 3: 'width'}, None: {}}


def _export_once(wrapper, example, path, exporter, axes, opset):
    """``torch.onnx.export`` with one exporter into ``path`` (weights inside the file); ``axes``: the
    dynamic axes of the input and output, {index: name}."""
    import torch
    names = dict(input_names=['input'], output_names=['output'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation, tracer warnings on sizes
        if exporter == 'dynamo':
            shapes = {'x': {i: torch.export.Dim.DYNAMIC for i in axes}} if axes else None
            program = torch.onnx.export(wrapper, (example, ), dynamo=True, dynamic_shapes=shapes,
                                        opset_version=opset, verbose=False, **names)
            program.save(path, external_data=False)
        else:
            torch.onnx.export(wrapper, (example, ), path, dynamo=False, opset_version=opset,
                              dynamic_axes={'input': axes, 'output': axes} if axes else None,
                              do_constant_folding=True, **names)


def random_input(shape, seed):
    """A reproducible input in [0, 1] (the range of BasicSR's images)."""
    import torch
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def max_abs_diff(net, path, inp):
    """Max |PyTorch - onnxruntime| of the final image for ``inp`` (the reference is ``net`` itself, so
    the wrapper's padding is checked too)."""
    import numpy as np
    import onnxruntime
    import torch
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = ORT_THREADS
    session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        expected = final_image(net(inp)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: inp.numpy()})[0]
    if got.shape != expected.shape:
        return float('inf')
    return float(np.abs(got.astype(np.float64) - expected).max())


def _describe(shape):
    return f'{shape[2]}x{shape[3]}' + (f' (batch {shape[0]})' if shape[0] != 1 else '')


def export(net, path, height, width, dynamic=False, opset=18, exporter='auto', log=print):
    """Exports ``net`` to ``path`` (atomically) and checks it with onnxruntime.

    With ``dynamic``, dynamic batch + size, then dynamic size only (batch 1) are tried with each exporter,
    then the fixed size; a dynamic model is kept only if it matches PyTorch at a second
    size (and batch 2 where the batch is dynamic). Returns a dict: ``exporter``, ``dynamic`` (the
    DYNAMIC_AXES key of the model written), ``checks`` (input shapes), ``diffs`` (max abs difference at
    each), ``note`` (why a dynamic export fell back, else None). Raises ExportError naming the arch."""
    import torch
    from basicsr_vitloss.utils.atomic_write import atomic_path
    channels = input_channels(net)
    wrapper = make_wrapper(net, height, width)
    example = random_input((1, channels, height, width), seed=0)
    exporters = EXPORTERS if exporter == 'auto' else (exporter, )
    arch = type(net).__name__
    second = (height + SECOND_SIZE_STEP[0], width + SECOND_SIZE_STEP[1])
    kinds = ['batch+size', 'size', None] if dynamic else [None]
    failures = []
    multiple, mode = padding_of(net)
    reason = fixed_size_reason(net) if dynamic else None
    if dynamic and mode == 'reflect' and min(height, width) < multiple:
        reason = (f'its reflect padding to a multiple of {multiple} is only size-independent for sides of at least '
                  f'{multiple}; export at such a size for a dynamic model')
    if reason:
        failures.append(reason)
        kinds = [None]
    # dynamic kinds with each exporter before any fixed export: a dynamic model of the second exporter beats
    # a fixed one of the first
    attempts = [(kind, name) for name in exporters for kind in kinds if kind] + [(None, name) for name in exporters]
    with atomic_path(path) as tmp:
        for kind, name in attempts:
            label = f'dynamic {kind}' if kind else 'fixed size'
            checks = [(1, channels, height, width),
                      ((2 if kind == 'batch+size' else 1, channels) + (second if kind else (height, width)))]
            try:
                _export_once(wrapper, example, tmp, name, DYNAMIC_AXES[kind], opset)
            except Exception as error:  # noqa: BLE001  (any exporter failure: try the next attempt)
                text = str(error).strip().splitlines()
                failures.append(f'{name} exporter ({label}) failed: {type(error).__name__}: '
                                f'{text[0][:300] if text else ""}')
                log(f'{PROG}: {failures[-1]}')
                continue
            with torch.no_grad():
                diffs = [max_abs_diff(net, tmp, random_input(shape, seed=i + 1)) for i, shape in enumerate(checks)]
            bad = [f'{diff:.3g} at {_describe(shape)}' for shape, diff in zip(checks, diffs) if diff > TOLERANCE]
            if bad:
                failures.append(f'{name} exporter ({label}): max abs difference above {TOLERANCE:g}: ' + ', '.join(bad))
                log(f'{PROG}: {failures[-1]}')
                continue
            note = None
            if dynamic and kind != 'batch+size':
                note = (f'{arch}: {"no" if kind is None else "no dynamic batch, only"} dynamic sizes here '
                        f'({"; ".join(failures)}); exported with '
                        f'{"dynamic height/width, batch 1" if kind else f"the fixed size {height}x{width}"}.')
                log(f'{PROG}: {note}')
            return dict(exporter=name, dynamic=kind, checks=checks, diffs=diffs, note=note)
        raise ExportError(f'{arch}: the ONNX export does not match PyTorch (tolerance {TOLERANCE:g}); '
                          f'{path} was not written. ' + '; '.join(failures))


def main(argv=None):
    """Command line entry point; exits non-zero with a message on any failure."""
    args = parse_args(argv)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        sys.exit(f'{PROG}: {error.name} is missing; install the export extra: pip install "basicsr-vitloss[export]"')
    from basicsr_vitloss.utils.checkpoints import CheckpointError
    from basicsr_vitloss.utils.network_options import NetworkOptionsError, build_network_from_options
    try:
        out_dir = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(out_dir):
            raise ExportError(f'--output {args.output}: the folder {out_dir} does not exist.')
        net = build_network_from_options(args.opt, args.weights, args.param_key)
        result = export(net, args.output, args.height, args.width, dynamic=args.dynamic, opset=args.opset,
                        exporter=args.exporter)
    except (ExportError, CheckpointError, NetworkOptionsError) as error:
        sys.exit(f'{PROG}: {error}')
    shapes = [_describe(shape) for shape in result['checks']]
    if result['dynamic'] is None:
        shapes[1] += ' (a second random input at the fixed size)'
    kind = {'batch+size': 'dynamic batch/height/width', 'size': 'dynamic height/width, batch 1',
            None: f'fixed size {shapes[0]}'}[result['dynamic']]
    print(f'{PROG}: wrote {args.output}: {type(net).__name__}, {kind}, {result["exporter"]} exporter, '
          f'opset {args.opset}')
    for shape, diff in zip(shapes, result['diffs']):
        print(f'{PROG}: parity vs PyTorch (onnxruntime) at {shape}: max abs diff {diff:.3g} (tolerance {TOLERANCE:g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
