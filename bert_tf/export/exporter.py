"""Versioned, atomic SavedModel export: export_dir/<version>/ as TensorFlow Serving watches it."""
import os
import re

import tensorflow as tf

from bert_tf import fileio
from bert_tf.errors import UserError
from bert_tf.export.signatures import ServingModule
from bert_tf.jobs.common import model_dir_of
from bert_tf.modeling import checkpoints, tasks


def next_version(export_dir):
    versions = [int(name) for name in (tf.io.gfile.listdir(export_dir) if tf.io.gfile.isdir(export_dir) else [])
                if re.fullmatch(r"\d+/?", name)]
    return max(versions, default=0) + 1


def load_task_model(model_dir):
    """(model, meta) from a fine-tuning output directory (or its model/ subdirectory)."""
    model_dir = model_dir_of(model_dir)
    meta = checkpoints.read_model_meta(model_dir)
    config = checkpoints.load_checkpoint_config(model_dir)
    model = tasks.build_task_model(meta["task"], config, num_labels=len(meta.get("labels") or [None]))
    model.build_with_dummies()
    checkpoints.load_weights(model, model_dir, strict_heads=True)
    return model, meta, model_dir


def export_saved_model(model_dir, export_dir, version=None, max_seq_length=None):
    """Exports the fine-tuned model in ``model_dir``; returns the path of the new version directory."""
    model, meta, model_dir = load_task_model(model_dir)
    version = version or next_version(export_dir)
    if version <= 0:
        raise UserError(f"--version={version} must be a positive integer")
    target = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(target):
        raise UserError(f"{target} already exists: pick another --version or leave it out to use the next one")
    vocab_file, do_lower_case = checkpoints.tokenizer_settings(model_dir)
    module = ServingModule(model, meta["task"], vocab_file, bool(do_lower_case),
                           max_seq_length or meta.get("max_seq_length", 128), labels=meta.get("labels"),
                           text_pair=meta.get("text_pair", False))
    with fileio.atomic_path(target) as temp:
        tf.saved_model.save(module, temp, signatures=module.signatures())
        # The asset is copied under its own name; record nothing else of the training machine's paths.
        fileio.write_json(os.path.join(temp, "assets.extra", "bert_tf_export.json"),
                          {"task": meta["task"], "labels": meta.get("labels"),
                           "max_seq_length": module.tokenizer.max_seq_length, "text_pair": module.text_pair})
    return target
