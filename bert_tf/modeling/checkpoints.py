"""The one checkpoint loader and the Hugging Face format writer.

Sources ``--init_checkpoint`` may name:
* a Hugging Face directory with TF weights (``tf_model.h5``), including bert_tf outputs;
* a directory with PyTorch ``model.safetensors`` (read with numpy; torch is never needed);
* a google-research/bert TF1 checkpoint (``bert_model.ckpt`` prefix or its directory);
* a hub id such as ``google-bert/bert-base-uncased`` (the only case that may download).

Whatever the source, weights first land in the Hugging Face TF class matching the target model
(``model.hf_class``), then move into the target by variable name, so every head and every
format shares one name mapping: Hugging Face's own.
"""
import json
import os
import re

import tensorflow as tf

from bert_tf import fileio
from bert_tf.errors import UserError

MODEL_META = "bert_tf.json"


def _relative_name(variable_name):
    """'bert_classification/bert/encoder/...:0' -> 'bert/encoder/...' (drops the model's own scope)."""
    name = variable_name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def _find_tf1_prefix(path):
    if tf.io.gfile.isdir(path):
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.ckpt*.index")))
        return indexes[0][: -len(".index")] if indexes else None
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def source_kind(source):
    """Classifies ``--init_checkpoint`` without touching the network."""
    if tf.io.gfile.isdir(source):
        if tf.io.gfile.exists(os.path.join(source, "tf_model.h5")):
            return "hf_tf"
        if tf.io.gfile.exists(os.path.join(source, "model.safetensors")):
            return "safetensors"
        if _find_tf1_prefix(source):
            return "tf1"
        if tf.io.gfile.exists(os.path.join(source, "pytorch_model.bin")):
            raise UserError(f"{source} holds only pytorch_model.bin, which would need unpickling: convert it to "
                            "model.safetensors (or tf_model.h5) first")
        raise UserError(f"{source} holds no tf_model.h5, model.safetensors or TF1 checkpoint: point "
                        "--init_checkpoint at a model directory")
    if _find_tf1_prefix(source):
        return "tf1"
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", source) and not source.startswith((".", "/")) \
            and not os.path.splitext(source)[1]:
        return "hub"
    raise UserError(f"--init_checkpoint {source} does not exist: pass a model directory, a TF1 checkpoint "
                    "prefix or a hub id")


def checkpoint_config_path(source):
    """The config file that describes a source's architecture (None for hub ids)."""
    kind = source_kind(source)
    if kind == "hub":
        return None
    directory = source if tf.io.gfile.isdir(source) else os.path.dirname(source)
    for name in ("config.json", "bert_config.json"):
        if tf.io.gfile.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise UserError(f"{directory} has no config.json or bert_config.json describing the model")


def load_checkpoint_config(source):
    from transformers import BertConfig

    path = checkpoint_config_path(source)
    if path is None:
        return BertConfig.from_pretrained(source)
    from bert_tf import config as config_lib

    return config_lib.load_bert_config(path)


def _safetensors_state(directory):
    from safetensors.numpy import load

    # Bytes through gfile, so gs:// directories load without a local copy.
    with tf.io.gfile.GFile(os.path.join(directory, "model.safetensors"), "rb") as f:
        state = load(f.read())
    # Sentence-transformers style exports drop the "bert." prefix of BertModel's keys.
    return {(k if k.startswith(("bert.", "cls.", "classifier.", "qa_outputs.")) else f"bert.{k}"): v
            for k, v in state.items()}


_TF1_RULES = [
    (r"^bert/encoder/layer_(\d+)/", r"bert.encoder.layer.\1."),
    (r"/", "."),
    (r"\.kernel$", ".weight"),
    (r"\.gamma$", ".weight"),
    (r"\.beta$", ".bias"),
    (r"(word_embeddings|position_embeddings|token_type_embeddings)$", r"\1.weight"),
    (r"^cls\.predictions\.output_bias$", "cls.predictions.bias"),
    (r"^cls\.seq_relationship\.output_weights$", "cls.seq_relationship.weight"),
    (r"^cls\.seq_relationship\.output_bias$", "cls.seq_relationship.bias"),
]


def tf1_name_to_pt(name):
    """google-research/bert variable name -> Hugging Face PyTorch state-dict key."""
    for pattern, replacement in _TF1_RULES:
        name = re.sub(pattern, replacement, name)
    return name


def _tf1_state(prefix):
    reader = tf.train.load_checkpoint(prefix)
    state = {}
    for name in reader.get_variable_to_shape_map():
        if not name.startswith(("bert/", "cls/")) or "adam_" in name:
            continue
        value = reader.get_tensor(name)
        key = tf1_name_to_pt(name)
        # TF1 dense kernels are [in, out]; PyTorch Linear weights are [out, in].
        if name.endswith("/kernel"):
            value = value.T
        state[key] = value
    return state


def _populate_hf(hf_model, source, kind):
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    if kind == "hub":
        return type(hf_model).from_pretrained(source, config=hf_model.config)
    if kind == "hf_tf":
        # Hugging Face opens only local files: a gs:// directory is copied down first.
        with fileio.local_copy(source) as local:
            return type(hf_model).from_pretrained(local, config=hf_model.config)
    if kind == "safetensors":
        state = _safetensors_state(source)
    else:
        state = _tf1_state(_find_tf1_prefix(source))
    hf_model.build_in_name_scope()
    load_pytorch_state_dict_in_tf2_model(hf_model, state, allow_missing_keys=True)
    return hf_model


def load_weights(model, source, strict_heads=False):
    """Loads ``source`` into ``model`` (built or not); returns the names it did not find.

    Shape mismatches (another model size, another label count) are errors naming the variables.
    """
    kind = source_kind(source)
    import transformers

    # Its "some weights were not used" notices are expected here (heads differ by task); the
    # mapping below reports what matters: shape mismatches and missing encoder weights.
    transformers.logging.set_verbosity_error()
    hf_model = model.hf_class(model.config)
    try:
        hf_model = _populate_hf(hf_model, source, kind)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load --init_checkpoint {source} ({str(error).splitlines()[0]}): "
                        "check that it is a BERT checkpoint of this model size") from None
    if not model.built:
        model.build_with_dummies()
    values = {_relative_name(v.name): v for v in hf_model.weights}
    mismatched, missing, assignments = [], [], []
    for variable in model.weights:
        name = _relative_name(variable.name)
        source_variable = values.get(name)
        if source_variable is None:
            missing.append(name)
        elif tuple(source_variable.shape) != tuple(variable.shape):
            mismatched.append(f"{name} {tuple(source_variable.shape)} vs {tuple(variable.shape)}")
        else:
            assignments.append((variable, source_variable))
    if mismatched:
        raise UserError(f"--init_checkpoint {source} does not fit the model: {len(mismatched)} variables differ in "
                        f"shape, e.g. {'; '.join(mismatched[:3])}: use the checkpoint's own config or size")
    if not assignments or all(not name.startswith("bert/") or "pooler" in name for name in
                              [_relative_name(v.name) for v, _ in assignments]):
        raise UserError(f"--init_checkpoint {source} has no encoder weights for this model")
    for variable, source_variable in assignments:
        variable.assign(source_variable)
    if strict_heads and missing:
        raise UserError(f"--init_checkpoint {source} lacks {missing[:3]}")
    return missing


def save_hf(model, output_dir, vocab_file=None, do_lower_case=True, meta=None):
    """Writes ``model`` in Hugging Face format (config.json, tf_model.h5) plus our metadata, atomically.

    The directory loads with ``model.hf_class.from_pretrained`` and with every bert_tf script.
    """
    hf_model = model.hf_class(model.config)
    hf_model.build_in_name_scope()
    values = {_relative_name(v.name): v for v in model.weights}
    from bert_tf.modeling import lora

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
    return fileio.read_json(path)


def tokenizer_settings(model_dir):
    """(vocab_file, do_lower_case) a checkpoint directory carries, or (None, None)."""
    if not tf.io.gfile.isdir(model_dir):
        return None, None
    vocab = os.path.join(model_dir, "vocab.txt")
    lower = None
    config_path = os.path.join(model_dir, "tokenizer_config.json")
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path) as f:
            lower = json.load(f).get("do_lower_case")
    return (vocab if tf.io.gfile.exists(vocab) else None), lower
