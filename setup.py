"""bert_tf: BERT pretraining, fine-tuning, distribution and TF Serving export on TensorFlow."""
from setuptools import find_packages, setup

CORE = [
    "tensorflow>=2.20,<2.22",
    "tf-keras>=2.20,<2.22",
    "tensorflow-text>=2.20,<2.22",
    "tensorflow-datasets>=4.9,<5",
    # transformers 5 removed every TensorFlow class.
    "transformers>=4.57,<5",
    "keras-nlp>=0.32,<0.33",
    "tensorboard>=2.20,<2.22",
    "absl-py>=2.1",
    "safetensors>=0.4",
    "tokenizers>=0.20",
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

setup(
    name="bert_tf",
    version="0.1.0",
    description="BERT pretraining, fine-tuning, tf.distribute training and TF Serving export",
    packages=find_packages(include=["bert_tf", "bert_tf.*"]),
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3"],
        "gpu": ["tensorflow[and-cuda]>=2.20,<2.22"],
        # Colab TPU runtimes and Cloud TPU VMs: tensorflow-tpu's newest release is 2.20.
        "tpu": ["tensorflow==2.20.*", "tensorflow-tpu==2.20.*", "tf-keras==2.20.*", "tensorflow-text==2.20.*",
                "tensorboard==2.20.*"],
    },
    package_data={"bert_tf": ["configs/models/*.json"]},
)
