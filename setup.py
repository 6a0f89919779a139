"""bert_tf: BERT pretraining, fine-tuning, distribution and TF Serving export on TensorFlow."""
import ast
import os

from setuptools import find_packages, setup

CORE = [
    "tensorflow>=2.20,<2.22",
    "tf-keras>=2.20,<2.22",
    "tensorflow-text>=2.20,<2.22",
    "tensorflow-datasets>=4.9,<5",
    # transformers 5 removed every TensorFlow class.
    "transformers>=4.57,<5",
    "keras-nlp>=0.32,<0.33",
    # Imported as keras_hub (keras-nlp 0.32 is its alias package): presets in and out.
    "keras-hub>=0.32,<0.33",
    "tensorboard>=2.20,<2.22",
    "absl-py>=2.1",
    "safetensors>=0.4",
    "tokenizers>=0.20",
    # TFRecord checksums for the records create_pretraining_data frames without TensorFlow.
    "google-crc32c>=1.5",
    "numpy>=1.26",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    # The metrics users trust: classification and MCC, correlations, strict entity spans.
    "scikit-learn>=1.4",
    "scipy>=1.11",
    "seqeval>=1.2.2",
    # PredictRequest protos for export warmup records and the gRPC client.
    "tensorflow-serving-api>=2.20,<2.22",
]


def _commands():
    """tools/__init__.py's COMMANDS, read without importing it (setup.py runs before anything is installed)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools", "__init__.py"), encoding="utf-8") as f:
        for node in ast.parse(f.read()).body:
            if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["COMMANDS"]:
                return ast.literal_eval(node.value)
    raise RuntimeError("tools/__init__.py defines no COMMANDS")


setup(
    name="bert_tf",
    version="0.1.0",
    description="BERT pretraining, fine-tuning, tf.distribute training and TF Serving export",
    # tools/ ships as bert_tf_tools, so an installed package has the scripts as console commands;
    # benchmarks/ stays out (it runs from the checkout, against peers installed only for development).
    packages=find_packages(include=["bert_tf", "bert_tf.*"]) + ["bert_tf_tools"],
    package_dir={"bert_tf_tools": "tools"},
    entry_points={"console_scripts": [f"{command} = bert_tf_tools:{command.replace('-', '_')}"
                                      for command in _commands()]},
    # keras-nlp 0.32 -> keras-hub 0.32 requires Python 3.11.
    python_requires=">=3.11",
    install_requires=CORE,
    extras_require={
        # uv: tests/test_install_resolution.py resolves the documented TPU install (uv pip compile);
        # nbclient + ipykernel: tests/test_notebook.py executes the Colab notebook headless.
        # gcp-storage-emulator + trustme: a local GCS for TensorFlow's gs:// (tests/gcs_emulator.py,
        # which patches two of the emulator's request parsers: pinned exactly).
        "test": ["pytest>=8", "pytest-timeout>=2.3", "uv>=0.10", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29",
                 "gcp-storage-emulator==2026.7.19", "trustme>=1.2"],
        "gpu": ["tensorflow[and-cuda]>=2.20,<2.22"],
        # Colab TPU runtimes and Cloud TPU VMs. Only tensorflow-tpu's wheel loads libtpu (the plain
        # tensorflow wheel has no TPU loader), and both ship the `tensorflow` import package, so
        # `tensorflow` itself must be left out of the resolution: install with
        # `uv pip install --excludes <file naming tensorflow> '.[tpu]'` (docs/distributed.md). With
        # tensorflow excluded nothing ties the TF-ABI packages to it any more, so they are pinned to
        # tensorflow-tpu's 2.20 here. libtpu: tensorflow-tpu 2.20.0 asks for ~=0.0.14; pip would take
        # the newest (0.0.5x, a year newer, cp-specific); 0.0.14 is the release its metadata names.
        "tpu": ["tensorflow-tpu==2.20.0", "libtpu==0.0.14", "tf-keras==2.20.*", "tensorflow-text==2.20.*",
                "tensorboard==2.20.*", "tensorflow-serving-api==2.20.*"],
    },
    package_data={"bert_tf": ["configs/models/*.json"]},
)
