"""The one checkpoint loader and the Hugging Face format writer.

Sources ``--init_checkpoint`` may name:
* a Hugging Face directory with TF weights (``tf_model.h5``), including bert_tf outputs;
* a directory with PyTorch ``model.safetensors`` (read with numpy; torch is never needed);
* a keras-hub BERT preset directory (keras_hub_format.py);
* a google-research/bert TF1 checkpoint (``bert_model.ckpt`` prefix or its directory);
* a TF Model Garden TF2 checkpoint of BertEncoder / BertPretrainerV2 (model_garden.py);
* ``hub:<id>`` such as ``hub:google-bert/bert-base-uncased``: the only form that downloads.

Every format is read into one dict keyed by our variable names (Hugging Face's TF names), and
``assign_state`` moves it into the model, refusing unless every encoder weight found its value.

The format a source is and its files are found in checkpoint_sources.py, its weights read by
checkpoint_readers.py; the names below are re-exported for the callers that read them here.
"""
import os

import tensorflow as tf
from absl import logging

from bert_tf import fileio
from bert_tf.errors import UserError
from bert_tf.modeling import lora
from bert_tf.modeling.checkpoint_readers import read_state, tf1_name  # noqa: F401  (callers use checkpoints.X)
from bert_tf.modeling.checkpoint_sources import (  # noqa: F401  (callers use checkpoints.X)
    HUB_PREFIX, _directory_of, checkpoint_config_path, hub_id, load_checkpoint_config, local_source, source_kind,
    tokenizer_settings)
from bert_tf.modeling.names import MODEL_META, _relative_name


def model_dir_of(path):
    """A run's output_dir or its model/ subdirectory -> the directory holding the saved model."""
    if path and tf.io.gfile.exists(os.path.join(path, "model", MODEL_META)):
        return os.path.join(path, "model")
    return path



def _is_encoder(name):
    return name.startswith("bert/")


def assign_state(model, state, source, allow_partial_init=False, strict_heads=False):
    """Moves ``state`` into ``model`` by name; returns a report (matched, missing heads, ...).

    Every encoder weight of the model must come from the checkpoint, and every encoder weight of
    the checkpoint must find its place (a pooler the model lacks excepted), unless
    ``allow_partial_init``: anything else would leave random weights behind a successful run.
    Heads (masked-LM, next-sentence, classifier, ...) may be missing: they train from scratch.
    """
    if not model.built:
        model.build_with_dummies()
    variables = {_relative_name(v.name): v for v in model.weights}
    matched, missing, mismatched = [], [], []
    for name, variable in variables.items():
        value = state.get(name)
        if value is None:
            missing.append(name)
        elif tuple(value.shape) != tuple(variable.shape):
            mismatched.append(f"{name} {tuple(value.shape)} vs {tuple(variable.shape)}")
        else:
            matched.append(name)
    unused = sorted(name for name in state if name not in variables)
    encoder = [name for name in variables if _is_encoder(name)]
    encoder_matched = [name for name in matched if _is_encoder(name)]
    encoder_missing = [name for name in missing if _is_encoder(name)]
    encoder_mismatched = [m for m in mismatched if _is_encoder(m)]
    encoder_unused = [name for name in unused if _is_encoder(name) and not name.startswith("bert/pooler/")]
    bad = encoder_missing + encoder_mismatched + encoder_unused
    if not encoder_matched or (bad and not allow_partial_init):
        ours = (encoder_missing + encoder_mismatched)[:3] or ["none"]
        theirs = (encoder_unused or [n for n in unused if not _is_encoder(n)])[:3] or ["none"]
        fix = ("it is not a BERT checkpoint this loader reads (or not BERT at all): convert it to a Hugging Face "
               "directory first" if not encoder_matched else
               "leave --bert_config_file out to use the checkpoint's own config, or pass --allow_partial_init to "
               "train the unmatched weights from scratch")
        raise UserError(f"--init_checkpoint {source} does not fit the model: {len(encoder_matched)} of {len(encoder)} "
                        f"encoder weights matched; model weights without a match: {', '.join(ours)}; checkpoint "
                        f"weights without a place: {', '.join(theirs)}: {fix}")
    head_mismatched = [m for m in mismatched if not _is_encoder(m)]
    if head_mismatched and not allow_partial_init:
        raise UserError(f"--init_checkpoint {source} does not fit the model: {len(head_mismatched)} head weights "
                        f"differ in shape, e.g. {'; '.join(head_mismatched[:3])}: start from the pretrained model, "
                        "or pass --labels in the checkpoint's order")
    heads_missing = [name for name in missing if not _is_encoder(name)]
    if strict_heads and heads_missing:
        raise UserError(f"--init_checkpoint {source} lacks {heads_missing[:3]}")
    for name in matched:
        variables[name].assign(state[name])
    report = {"matched": len(matched), "encoder_weights": len(encoder), "missing_heads": heads_missing,
              "partial": bad + head_mismatched, "unused": unused}
    if report["partial"]:
        logging.warning("--allow_partial_init: %d weights of the model start from scratch, e.g. %s",
                        len(report["partial"]), ", ".join(report["partial"][:3]))
    logging.info("loaded %s: %d of %d weights (%d encoder weights, all matched%s); heads from scratch: %s",
                 source, len(matched), len(variables), len(encoder),
                 "" if not bad else " but for --allow_partial_init's", ", ".join(heads_missing) or "none")
    return report


def load_weights(model, source, strict_heads=False, allow_partial_init=False):
    """Loads ``source`` into ``model`` (built or not); returns the head weights it did not find.

    Refuses, naming what did not match, unless every encoder weight comes from the checkpoint
    (see ``assign_state``).
    """
    return assign_state(model, read_state(source), source, allow_partial_init=allow_partial_init,
                        strict_heads=strict_heads)["missing_heads"]


def save_hf(model, output_dir, vocab_file=None, do_lower_case=True, meta=None):
    """Writes ``model`` in Hugging Face format (config.json, tf_model.h5) plus our metadata, atomically.

    The directory loads with ``model.hf_class.from_pretrained`` and with every bert_tf script.
    """
    hf_model = model.hf_class(model.config)
    hf_model.build_in_name_scope()
    values = {_relative_name(v.name): v for v in model.weights}
    # LoRA models save W + (alpha/r) A B under W's name: plain BERT weights, no LoRA variables.
    values.update({_relative_name(v.name): merged for v, merged in lora.merged_kernels(model)})
    for variable in hf_model.weights:
        name = _relative_name(variable.name)
        if name in values:
            variable.assign(values[name])
    # bert_tf.json goes last: on object stores its presence says the directory is complete.
    with fileio.atomic_path(output_dir, marker=MODEL_META) as temp:
        with fileio.staged_output_dir(temp) as local:
            hf_model.save_pretrained(local)
        if vocab_file:
            tf.io.gfile.copy(vocab_file, os.path.join(temp, "vocab.txt"), overwrite=True)
            fileio.write_json(os.path.join(temp, "tokenizer_config.json"),
                              {"do_lower_case": bool(do_lower_case), "tokenizer_class": "BertTokenizer",
                               "model_max_length": model.config.max_position_embeddings})
        fileio.write_json(os.path.join(temp, MODEL_META), dict(meta or {}, task=model.task))
    return output_dir


def read_model_meta(model_dir):
    path = os.path.join(model_dir, MODEL_META)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{model_dir} is not a bert_tf fine-tuned model (no {MODEL_META}): pass the --output_dir "
                        "of a run_classifier/run_tagger/run_squad run")
    meta = fileio.read_json_object(path, "model metadata", {"task": (str, type(None)), "labels": (list, type(None)),
                                                            "max_seq_length": (int, type(None))},
                                   "restore it from the training run's output_dir/model")
    labels = meta.get("labels")
    if labels is not None and (not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels)):
        raise UserError(f"model metadata {path}: 'labels' must list distinct strings, not {labels[:10]}: restore it "
                        "from the training run's output_dir/model")
    return meta

