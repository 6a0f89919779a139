"""Versioned, atomic SavedModel export: export_dir/<version>/ as TensorFlow Serving watches it."""
import os
import re

import tensorflow as tf

from bert_tf import fileio, run_metadata
from bert_tf.errors import UserError
from bert_tf.export.quantize import Float16Weights
from bert_tf.export.signatures import ServingModule
from bert_tf.modeling import checkpoints
from bert_tf.modeling.checkpoints import model_dir_of
from bert_tf.tasks import registry

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
EXPORT_META = os.path.join("assets.extra", "bert_tf_export.json")
# What trained the model (bert_tf/run_metadata.py), its paths reduced to file names.
RUN_METADATA = os.path.join("assets.extra", run_metadata.FILENAME)
QUANTIZE = ("none", "float16")
# Texts for warmup requests: short and long, so the first real request of either kind is fast.
WARMUP_TEXTS = ("warm up", "a longer warm-up request, so that the serving graph runs once with many word pieces "
                "before the first real request arrives at the server")


def next_version(export_dir):
    """One more than the highest numeric version directory under ``export_dir`` (1 when none)."""
    names = tf.io.gfile.listdir(export_dir) if tf.io.gfile.isdir(export_dir) else []
    versions = [int(name.rstrip("/")) for name in names if re.fullmatch(r"\d+/?", name)]
    return max(versions, default=0) + 1


def load_task_model(model_dir):
    """(model, meta, model_dir) from a fine-tuning output directory (or its model/ subdirectory)."""
    if not model_dir or not tf.io.gfile.isdir(model_dir):
        raise UserError(f"--model_dir {model_dir} is not a directory: pass the --output_dir of a fine-tuning run")
    model_dir = model_dir_of(model_dir)
    meta = checkpoints.read_model_meta(model_dir)
    task = registry.servable_task(meta, model_dir)
    model = task.build_model(checkpoints.load_checkpoint_config(model_dir))
    model.build_with_dummies()
    checkpoints.load_weights(model, model_dir, strict_heads=True)
    return model, meta, model_dir


def warmup_records(module, path, signature_names=("serving_default",)):
    """Writes TF Serving's warmup file: PredictionLog records, one PredictRequest per batch size."""
    # Deferred: tensorflow-serving-api is needed only here, by a SavedModel export's warmup file.
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    names = module.text_inputs
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name in signature_names:
            for batch in (WARMUP_TEXTS[:1], WARMUP_TEXTS):
                request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature_name))
                for name in names:
                    request.inputs[name].CopyFrom(tf.make_tensor_proto(list(batch), dtype=tf.string))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())


def version_target(export_dir, version=None):
    """export_dir/<version> for a new export (the next free version when None); refuses an existing one."""
    if version is not None and version <= 0:
        raise UserError(f"--version={version} must be a positive integer")
    if export_dir and tf.io.gfile.exists(export_dir) and not tf.io.gfile.isdir(export_dir):
        raise UserError(f"--export_dir {export_dir} is a file: pass a directory")
    version = version or next_version(export_dir)
    target = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(target):
        raise UserError(f"{target} already exists: pick another --version or leave it out to use the next one")
    return target


def check_max_seq_length(model, max_seq_length):
    if max_seq_length > model.config.max_position_embeddings or max_seq_length < 4:
        raise UserError(f"--max_seq_length={max_seq_length} must be between 4 and the model's "
                        f"{model.config.max_position_embeddings} positions")
    return max_seq_length


def load_for_export(model_dir, max_seq_length=None):
    """(model, meta) for every export format: meta gains ``vocab_file``, ``do_lower_case`` and the
    checked ``max_seq_length`` (the given one, else training's)."""
    model, meta, model_dir = load_task_model(model_dir)
    vocab_file, do_lower_case = checkpoints.tokenizer_settings(model_dir)
    if not vocab_file:
        raise UserError(f"{model_dir} has no vocab.txt: the serving graph needs the model's vocabulary")
    return model, dict(meta, vocab_file=vocab_file, do_lower_case=True if do_lower_case is None else bool(do_lower_case),
                       max_seq_length=check_max_seq_length(model, max_seq_length or meta.get("max_seq_length", 128)))


def serving_module(model, meta, quantize="none"):
    """The ServingModule an export saves (and ``bert_tf.Predictor`` runs in memory for a model directory)."""
    float16_weights = None
    if quantize == "float16":
        float16_weights = Float16Weights(model)
    return ServingModule(model, registry.task_of(meta), meta["vocab_file"], meta["do_lower_case"],
                         meta["max_seq_length"], float16_weights=float16_weights)


def export_saved_model(model_dir, export_dir, version=None, max_seq_length=None, quantize="none"):
    """Exports the fine-tuned model in ``model_dir``; returns the path of the new version directory.

    Nothing is written when the version exists already; the version directory appears complete
    (SavedModel, vocab asset, warmup requests) or not at all, so a watching server never loads half.
    """
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize={quantize} is not one of {', '.join(QUANTIZE)}")
    target = version_target(export_dir, version)
    model, meta = load_for_export(model_dir, max_seq_length)
    module = serving_module(model, meta, quantize)
    # saved_model.pb goes last: TF Serving and tf.saved_model.load need it, so on object stores a
    # version directory is loadable only once every other file is in place.
    with fileio.atomic_path(target, marker="saved_model.pb") as temp:
        tf.saved_model.save(module, temp, signatures=module.signatures())
        fileio.ensure_dir(os.path.join(temp, "assets.extra"))
        warmup_records(module, os.path.join(temp, WARMUP_FILE))
        # Only names and settings: nothing of the training machine's paths goes into the export.
        fileio.write_json(os.path.join(temp, EXPORT_META),
                          {"task": meta["task"], "labels": meta.get("labels"), "inputs":
                           list(module.text_inputs),
                           "max_seq_length": meta["max_seq_length"], "do_lower_case": meta["do_lower_case"],
                           "weights": "float16" if quantize == "float16" else "float32"})
        run_metadata.copy_into_export(model_dir_of(model_dir), temp, RUN_METADATA)
    return target
