"""Packaging of basicsr-vitloss.

Besides the package, the wheel carries ``basicsr_vitloss.pth`` at the root of site-packages: a
one-line startup hook (``import basicsr_vitloss_startup``) that activates the plugin as soon as
``basicsr`` is imported, so ``python -m basicsr.train`` works with plugin classes unchanged.
"""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_PTH = 'basicsr_vitloss.pth'


class BuildPyWithStartupHook(build_py):
    """build_py that also puts the startup .pth file at the root of the wheel (= site-packages)."""

    def run(self):
        super().run()
        self.copy_file(os.path.join(HERE, STARTUP_PTH), os.path.join(self.build_lib, STARTUP_PTH))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, STARTUP_PTH)]


try:  # setuptools >= 64: PEP 660 editable installs (pip install -e .)
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # pragma: no cover
    editable_wheel = None

if editable_wheel is not None:

    class EditableWheelWithStartupHook(editable_wheel):
        """Editable wheel that carries the startup .pth too (files put here land in site-packages)."""

        def _install_namespaces(self, installation_dir, pth_prefix):
            super()._install_namespaces(installation_dir, pth_prefix)
            self.copy_file(os.path.join(HERE, STARTUP_PTH), os.path.join(installation_dir, STARTUP_PTH))


EXPORT_REQUIRES = ['onnx>=1.14', 'onnxruntime>=1.16', 'onnxscript>=0.1']
# basicsr-vitloss-upstream formats with BasicSR's isort / yapf settings; its tests lint with flake8 as BasicSR does
UPSTREAM_REQUIRES = ['yapf>=0.40', 'isort>=5', 'flake8>=6']


def read(name):
    with open(os.path.join(HERE, name), encoding='utf-8') as f:
        return f.read()


def version():
    scope = {}
    exec(read('basicsr_vitloss/version.py'), scope)
    return scope['__version__']


setup(
    name='basicsr-vitloss',
    version=version(),
    description='ViT perceptual losses (TNNLS 2024 "Image Deblurring by Exploring In-depth Properties of '
    'Transformer"), DPDD data, deblurring architectures and options as a BasicSR plugin',
    long_description=read('README.md'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['basicsr_vitloss', 'basicsr_vitloss.*']),
    py_modules=['basicsr_vitloss_startup'],
    install_requires=[
        'basicsr>=1.4.2',
        'torch>=2.4',
        'torchvision>=0.19',
        'numpy',
        'opencv-python',
        'pyyaml',
        'lpips>=0.1.4',
        'safetensors',
        'scikit-image>=0.19',
        'scipy',
        'timm>=0.9',
        'tqdm',
    ],
    extras_require={
        # ONNX export (basicsr-vitloss-export): the exporter, its torch.export backend, the parity check
        'export': EXPORT_REQUIRES,
        # the BasicSR pull request (basicsr-vitloss-upstream)
        'upstream': UPSTREAM_REQUIRES,
        'test': ['pytest>=7', 'ruff>=0.4'] + EXPORT_REQUIRES + UPSTREAM_REQUIRES,  # CI checks export, style, upstream
    },
    entry_points={
        'console_scripts': [
            'basicsr-vitloss-train=basicsr_vitloss.train:main',
            'basicsr-vitloss-test=basicsr_vitloss.test:main',
            'basicsr-vitloss-infer=basicsr_vitloss.infer:main',
            'basicsr-vitloss-export=basicsr_vitloss.export:main',
            'basicsr-vitloss-evaluate=basicsr_vitloss.evaluation.cli:main',
            'basicsr-vitloss-upstream=basicsr_vitloss.upstream.cli:main',
        ],
    },
    cmdclass={'build_py': BuildPyWithStartupHook,
              **({'editable_wheel': EditableWheelWithStartupHook} if editable_wheel else {})},
    zip_safe=False,
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Image Processing',
        'Framework :: Pytest',
    ],
)
