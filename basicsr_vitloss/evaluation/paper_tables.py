"""The paper's numbers (Tables I-V of "Image Deblurring by Exploring In-depth Properties of Transformer"),
keyed as the options grid names its experiments: the generated options headers quote them and
``evaluate merge --paper`` sets the change of each loss row over its baseline beside the paper's."""

#: what the paper reports (Tables I-III): DPDD Combined PSNR / SSIM / MAE / LPIPS / NIQE; GoPro and HIDE
#: PSNR / SSIM / LPIPS / NIQE
PAPER = {
    'dpdd_dual': {
        ('dpdnet', 'baseline'): (25.45, 0.7987, 0.0391, 0.1531, 4.715),
        ('dpdnet', 'vgg'): (25.39, 0.7969, 0.0396, 0.1154, 4.373),
        ('dpdnet', 'local'): (25.88, 0.7997, 0.0382, 0.0945, 4.656),
        ('dpdnet', 'global'): (25.50, 0.7952, 0.0391, 0.1049, 4.432),
        ('uformer', 'baseline'): (25.97, 0.8111, 0.0375, 0.1480, 4.704),
        ('uformer', 'vgg'): (26.02, 0.8135, 0.0375, 0.1308, 4.605),
        ('uformer', 'local'): (26.20, 0.8184, 0.0367, 0.0985, 4.464),
        ('uformer', 'global'): (26.08, 0.8141, 0.0371, 0.1048, 4.307),
        ('restormer', 'baseline'): (26.29, 0.8232, 0.0360, 0.1414, 5.049),
        ('restormer', 'vgg'): (26.34, 0.8227, 0.0359, 0.1186, 4.796),
        ('restormer', 'local'): (26.43, 0.8234, 0.0357, 0.0848, 4.579),
        ('restormer', 'global'): (26.35, 0.8224, 0.0359, 0.0949, 4.573),
        ('nafnet', 'baseline'): (26.44, 0.8254, 0.0360, 0.1399, 4.883),
        ('nafnet', 'vgg'): (26.38, 0.8251, 0.0362, 0.1292, 4.793),
        ('nafnet', 'local'): (26.53, 0.8259, 0.0355, 0.0852, 4.451),
        ('nafnet', 'global'): (26.45, 0.8245, 0.0359, 0.0971, 4.572),
    },
    'dpdd_single': {
        ('dpdnet', 'baseline'): (24.79, 0.7650, 0.0420, 0.1928, 4.9655),
        ('dpdnet', 'vgg'): (24.73, 0.7653, 0.0423, 0.1478, 4.5089),
        ('dpdnet', 'local'): (24.89, 0.7667, 0.0414, 0.1402, 4.5772),
        ('dpdnet', 'global'): (24.85, 0.7654, 0.0418, 0.1398, 4.3601),
        ('uformer', 'baseline'): (25.16, 0.7862, 0.0405, 0.1656, 4.7637),
        ('uformer', 'vgg'): (25.20, 0.7890, 0.0401, 0.1549, 4.6818),
        ('uformer', 'local'): (25.44, 0.7928, 0.0392, 0.1054, 4.4187),
        ('uformer', 'global'): (25.24, 0.7857, 0.0400, 0.1243, 4.4882),
        ('restormer', 'baseline'): (25.52, 0.7868, 0.0386, 0.1741, 5.1676),
        ('restormer', 'vgg'): (25.54, 0.7865, 0.0386, 0.1666, 5.1300),
        ('restormer', 'local'): (25.68, 0.7935, 0.0387, 0.1086, 4.6505),
        ('restormer', 'global'): (25.59, 0.7920, 0.0387, 0.1381, 4.9002),
        ('nafnet', 'baseline'): (25.38, 0.7922, 0.0395, 0.1619, 4.9385),
        ('nafnet', 'vgg'): (25.39, 0.7932, 0.0396, 0.1507, 4.8265),
        ('nafnet', 'local'): (25.58, 0.7931, 0.0387, 0.1047, 4.4996),
        ('nafnet', 'global'): (25.42, 0.7887, 0.0395, 0.1187, 4.6875),
    },
    'gopro': {  # GoPro PSNR SSIM LPIPS NIQE, HIDE PSNR SSIM LPIPS NIQE
        ('mprnet', 'baseline'): (28.55, 0.9111, 0.1343, 5.4627, 27.25, 0.8847, 0.1425, 4.9244),
        ('mprnet', 'vgg'): (28.15, 0.9040, 0.0876, 4.7615, 27.09, 0.8792, 0.1073, 4.1345),
        ('mprnet', 'local'): (28.47, 0.9093, 0.1102, 4.9845, 27.12, 0.8818, 0.1250, 4.3741),
        ('mprnet', 'global'): (28.48, 0.9093, 0.1145, 5.1228, 27.18, 0.8824, 0.1282, 4.6510),
        ('uformer', 'baseline'): (30.21, 0.9343, 0.1135, 5.5583, 28.48, 0.9079, 0.1296, 4.9227),
        ('uformer', 'vgg'): (29.72, 0.9197, 0.0694, 5.9382, 28.09, 0.8820, 0.0920, 5.7450),
        ('uformer', 'local'): (30.21, 0.9311, 0.0652, 4.3113, 28.54, 0.9009, 0.0865, 3.8116),
        ('uformer', 'global'): (30.24, 0.9346, 0.0787, 4.8536, 28.55, 0.9080, 0.0979, 4.3274),
        ('restormer', 'baseline'): (29.61, 0.9277, 0.1154, 5.4515, 28.62, 0.9109, 0.1225, 4.9703),
        ('restormer', 'vgg'): (29.59, 0.9193, 0.0639, 5.5767, 28.18, 0.8848, 0.0848, 5.4517),
        ('restormer', 'local'): (30.00, 0.9315, 0.0620, 4.5327, 28.70, 0.9099, 0.0791, 3.8731),
        ('restormer', 'global'): (30.00, 0.9332, 0.0718, 4.7452, 28.71, 0.9116, 0.0887, 4.1751),
        ('nafnet', 'baseline'): (32.40, 0.9565, 0.0847, 5.2740, 30.18, 0.9304, 0.0954, 4.6582),
        ('nafnet', 'vgg'): (32.60, 0.9580, 0.0590, 4.9712, 30.37, 0.9328, 0.0761, 4.2791),
        ('nafnet', 'local'): (32.64, 0.9582, 0.0557, 4.9093, 30.37, 0.9322, 0.0722, 4.1120),
        ('nafnet', 'global'): (32.48, 0.9568, 0.0557, 4.7807, 30.19, 0.9279, 0.0738, 4.0281),
    },
}
#: Tables IV / V (DPDNet + local, dual-pixel DPDD): PSNR SSIM MAE LPIPS NIQE; DINO's row did not survive
#: in the text of the paper available here, Fig. 8 gives no per-point values
PAPER_ABLATIONS = {
    ('backbone', 'vit'): (25.61, 0.7967, 0.0389, 0.1237, 4.675),
    ('backbone', 'mae'): (25.88, 0.7997, 0.0382, 0.0945, 4.656),
    ('feature', 'key'): (25.84, 0.7956, 0.0381, 0.0955, 4.626),
    ('feature', 'query'): (25.90, 0.7966, 0.0379, 0.0942, 4.756),
    ('feature', 'value'): (25.96, 0.7986, 0.0379, 0.0983, 4.731),
    ('feature', 'token'): (25.88, 0.7997, 0.0382, 0.0945, 4.656),
}


#: the metrics of each grid's values above, in order, and the datasets of Table III's two halves
PAPER_METRICS = {'dpdd_dual': ('psnr', 'ssim', 'mae', 'lpips', 'niqe'),
                 'dpdd_single': ('psnr', 'ssim', 'mae', 'lpips', 'niqe'),
                 'gopro': ('psnr', 'ssim', 'lpips', 'niqe', 'psnr', 'ssim', 'lpips', 'niqe')}
#: the dataset each value belongs to (evaluate's --dataset names)
PAPER_DATASETS = {'dpdd_dual': ('DPDD',) * 5, 'dpdd_single': ('DPDD',) * 5,
                  'gopro': ('GoPro',) * 4 + ('HIDE',) * 4}
#: evaluate merge --paper names -> grid
PAPER_TABLES = {'table1': 'dpdd_dual', 'table2': 'dpdd_single', 'table3': 'gopro'}
#: evaluate's --method names -> the grid's network keys
NETWORK_KEYS = {'DPDNet': 'dpdnet', 'MPRNet': 'mprnet', 'Uformer': 'uformer', 'Restormer': 'restormer',
                'NAFNet': 'nafnet'}


def paper_value(table, method, loss, dataset, metric):
    """The paper's value of one cell (Combined group), or None when the table has no such cell."""
    grid = PAPER_TABLES[table]
    values = PAPER[grid].get((NETWORK_KEYS.get(method, str(method).lower()), loss))
    if values is None:
        return None
    for value, name, where in zip(values, PAPER_METRICS[grid], PAPER_DATASETS[grid]):
        if name == metric and where == dataset:
            return value
    return None
