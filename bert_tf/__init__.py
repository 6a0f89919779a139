"""bert_tf: BERT pretraining, fine-tuning, distribution and serving export on TensorFlow.

Importing this package first is what makes the rest work: Hugging Face's TF BERT classes are
built on tf-keras (Keras 2), and TensorFlow binds ``tf.keras`` to Keras 2 only when
``TF_USE_LEGACY_KERAS`` is set before TensorFlow itself is imported.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries our one-line errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# transformers' advisory notices (TF deprecation banners) would bury our own one-line messages.
# Hub downloads happen only in checkpoints.py, and only for an --init_checkpoint that is a hub id.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__version__ = "0.1.0"
