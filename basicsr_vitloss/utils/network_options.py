"""A trained network from an options file and a checkpoint, for the commands that run one outside
BasicSR's loops (inference, ONNX export): only ``network_g`` of the options (train or test) is read."""
import os.path as osp


class NetworkOptionsError(ValueError):
    """Options whose ``network_g`` cannot be read or built; the message names ``--opt`` and the file."""


def read_network_options(path):
    """The ``network_g`` mapping (with a ``type``) of the BasicSR options file ``path``."""
    import yaml
    if not osp.isfile(path):
        raise NetworkOptionsError(f'--opt {path}: no such options file.')
    try:
        with open(path, encoding='utf-8') as file:
            opt = yaml.safe_load(file)
    except (OSError, yaml.YAMLError) as error:
        raise NetworkOptionsError(f'--opt {path}: cannot read it as YAML ({error}).') from None
    network = opt.get('network_g') if isinstance(opt, dict) else None
    if not isinstance(network, dict) or 'type' not in network:
        raise NetworkOptionsError(f'--opt {path}: expected a BasicSR options file with a network_g mapping that '
                                  f'has a type; got {type(network).__name__ if network is not None else "none"}.')
    return dict(network)


def build_network_from_options(path, weights, param_key=None):
    """The options' ``network_g`` built through BasicSR's registry with ``weights`` loaded (the package's
    checkpoint reader: CheckpointError naming the file), in eval mode on the CPU."""
    import copy

    import basicsr_vitloss  # noqa: F401  (registers the architectures)
    from basicsr.archs import build_network
    from basicsr_vitloss.utils.checkpoints import load_network_weights

    network_opt = read_network_options(path)
    try:
        net = build_network(copy.deepcopy(network_opt))
    except Exception as error:  # unknown type, bad or missing arguments: name the options file
        raise NetworkOptionsError(f'--opt {path}: cannot build network_g {network_opt} '
                                  f'({type(error).__name__}: {error}).') from None
    load_network_weights(net, weights, param_key)
    return net.eval()


def input_channels(net):
    """The channels ``net`` takes: its first convolution's ``in_channels`` (6: dual-pixel, 3: one image)."""
    import torch
    conv = next((m for m in net.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if conv is None:
        raise NetworkOptionsError(f'{type(net).__name__}: no Conv2d found to read the input channels from.')
    return conv.in_channels
