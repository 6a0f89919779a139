"""Convert any checkpoint the loader reads into a Hugging Face format directory.

Sources: a Hugging Face/bert_tf directory (tf_model.h5), a directory with PyTorch
model.safetensors, a google-research/bert TF1 checkpoint (``bert_model.ckpt``), or a hub id.
Pretraining heads (masked-LM and next-sentence) are kept when the source has them; otherwise
the encoder (with pooler) is written.
"""
import os

import tensorflow as tf
from absl import flags as absl_flags

from bert_tf import config as config_lib
from bert_tf import fileio
from bert_tf.errors import UserError
from bert_tf.modeling import checkpoints
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.modeling.tasks import BertTaskModel


def define_flags(fv=absl_flags.FLAGS):
    f = absl_flags
    f.DEFINE_string("init_checkpoint", None, "The checkpoint to convert: model directory, TF1 checkpoint prefix "
                    "(bert_model.ckpt) or its directory, or a hub id.", flag_values=fv)
    f.DEFINE_string("output_dir", None, "Where to write the Hugging Face format directory.", flag_values=fv)
    f.DEFINE_string("bert_config_file", None, "Config of the checkpoint (default: config.json or "
                    "bert_config.json next to it).", flag_values=fv)
    f.DEFINE_string("vocab_file", None, "vocab.txt to ship with the model (default: the one next to the source).",
                    flag_values=fv)
    f.DEFINE_bool("do_lower_case", None, "Tokenizer casing to record (default: the source's, else True).",
                  flag_values=fv)


def has_pretraining_heads(source):
    """Whether ``source`` carries masked-LM/next-sentence head weights (by variable names)."""
    kind = checkpoints.source_kind(source)
    if kind == "tf1":
        names = tf.train.load_checkpoint(checkpoints._find_tf1_prefix(source)).get_variable_to_shape_map()
        return any(name.startswith("cls/predictions/") for name in names)
    if kind == "safetensors":
        return any(key.startswith("cls.predictions.") for key in checkpoints._safetensors_state(source))
    if kind == "hf_tf":
        import h5py

        names = []
        with fileio.local_copy(os.path.join(source, "tf_model.h5")) as local, h5py.File(local, "r") as f:
            f.visit(names.append)
        return any("mlm___cls" in name for name in names)
    config = checkpoints.load_checkpoint_config(source)
    return any("PreTraining" in a or "MaskedLM" in a for a in (getattr(config, "architectures", None) or []))


def _vocab_next_to(source):
    directory = source if tf.io.gfile.isdir(source) else os.path.dirname(source)
    path = os.path.join(directory, "vocab.txt")
    return path if tf.io.gfile.exists(path) else None


def run(flags):
    """Converts; returns {'output_dir', 'heads': bool, 'missing': [...] }."""
    if not flags.init_checkpoint:
        raise UserError("--init_checkpoint is required: the checkpoint to convert")
    if not flags.output_dir:
        raise UserError("--output_dir is required")
    source = flags.init_checkpoint
    if flags.bert_config_file:
        config = config_lib.load_bert_config(flags.bert_config_file)
    else:
        config = checkpoints.load_checkpoint_config(source)
    heads = has_pretraining_heads(source)
    model = BertPretrainingModel(config) if heads else BertTaskModel(config)
    missing = checkpoints.load_weights(model, source)
    stored_vocab, stored_lower = checkpoints.tokenizer_settings(source)
    vocab_file = flags.vocab_file or stored_vocab or _vocab_next_to(source)
    lower = flags.do_lower_case if flags.do_lower_case is not None else (True if stored_lower is None
                                                                         else stored_lower)
    checkpoints.save_hf(model, flags.output_dir, vocab_file=vocab_file, do_lower_case=lower,
                        meta={"converted_from": source})
    return {"output_dir": flags.output_dir, "heads": heads, "missing": missing, "vocab_file": vocab_file}
