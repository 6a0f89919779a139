"""Where ``--init_checkpoint`` points: which format a source is, its local files, its config.

A source is a Hugging Face directory (``tf_model.h5``), a directory with PyTorch
``model.safetensors``, a keras-hub preset, a google-research/bert TF1 checkpoint, a TF Model
Garden TF2 checkpoint, or ``hub:<id>``, the only form that downloads.
"""
import json
import os
import re

import tensorflow as tf

from bert_tf import config as config_lib
from bert_tf import fileio
from bert_tf.errors import UserError
from bert_tf.modeling import keras_hub_format, model_garden

HUB_PREFIX = "hub:"


def _find_tf_prefix(path):
    """The checkpoint prefix of a TF1/TF2 checkpoint path or directory (bert_model.ckpt first), or None."""
    if tf.io.gfile.isdir(path):
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")),
                         key=lambda p: (not os.path.basename(p).startswith("bert_model.ckpt"), p))
        return indexes[0][: -len(".index")] if indexes else None
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def _tf_checkpoint_kind(prefix):
    try:
        names = [name for name, _ in tf.train.list_variables(prefix)]
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(f"cannot read the TF checkpoint {prefix} ({str(error).strip().splitlines()[0][:160]}): "
                        "its .index and .data-* files must both be present and complete") from None
    return "tf2" if model_garden.is_object_based(names) else "tf1"


def hub_id(source):
    """The model id of a ``hub:<id>`` source, else None."""
    if source and source.startswith(HUB_PREFIX):
        repo = source[len(HUB_PREFIX):]
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", repo):
            raise UserError(f"--init_checkpoint {source}: {repo!r} is not a Hugging Face hub id such as "
                            "hub:google-bert/bert-base-uncased")
        return repo
    return None


def source_kind(source):
    """Classifies ``--init_checkpoint`` without touching the network.

    hf_tf, safetensors, keras_hub, tf1 (google-research/bert), tf2 (TF Model Garden) or hub. Only
    a ``hub:`` source may download: a local path that does not exist is an error, never a hub id,
    so a typo cannot fetch someone else's weights.
    """
    if hub_id(source):
        return "hub"
    if tf.io.gfile.isdir(source):
        if tf.io.gfile.exists(os.path.join(source, "tf_model.h5")):
            return "hf_tf"
        if tf.io.gfile.exists(os.path.join(source, "model.safetensors")):
            _check_safetensors_header(os.path.join(source, "model.safetensors"))
            return "safetensors"
        if keras_hub_format.is_preset(source):
            return "keras_hub"
        prefix = _find_tf_prefix(source)
        if prefix:
            return _tf_checkpoint_kind(prefix)
        if tf.io.gfile.exists(os.path.join(source, "pytorch_model.bin")):
            raise UserError(f"{source} holds only pytorch_model.bin, which would need unpickling: convert it to "
                            "model.safetensors (or tf_model.h5) first")
        raise UserError(f"{source} holds no tf_model.h5, model.safetensors, keras-hub preset or TF checkpoint: point "
                        "--init_checkpoint at a model directory")
    prefix = _find_tf_prefix(source)
    if prefix:
        return _tf_checkpoint_kind(prefix)
    if tf.io.gfile.exists(source):
        raise UserError(f"--init_checkpoint {source} is a file, not a checkpoint: pass a model directory or a TF "
                        "checkpoint prefix (bert_model.ckpt, without .index)")
    looks_like_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", source) and not os.path.splitext(source)[1]
    hint = f"; to download it from the Hugging Face hub, pass --init_checkpoint={HUB_PREFIX}{source}" \
        if looks_like_id else f" (only {HUB_PREFIX}<id> downloads from a model hub)"
    raise UserError(f"--init_checkpoint {source} does not exist: check the path{hint}")


def _check_safetensors_header(path):
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors: a truncated or
    foreign file is refused here, before any model is built."""
    size = tf.io.gfile.stat(path).length
    with tf.io.gfile.GFile(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little") if size >= 8 else None
        header = f.read(length) if length is not None and 8 + length <= size else None
    try:
        entries = json.loads(header) if header is not None else None
    except (ValueError, UnicodeDecodeError):
        entries = None
    ends = [entry.get("data_offsets", [0, 0])[1] for name, entry in (entries or {}).items()
            if name != "__metadata__" and isinstance(entry, dict)] if isinstance(entries, dict) else None
    if ends is None or (ends and 8 + length + max(ends) > size):
        raise UserError(f"{path} is not a complete safetensors file ({size} bytes; truncated or another format): "
                        "download or convert it again")


_HUB_FILES = ("config.json", "vocab.txt", "tokenizer_config.json")
_resolved_hub = {}


def local_source(source):
    """``source`` itself, or for ``hub:<id>`` the local Hugging Face cache directory of its files.

    The one place a model hub is reached: config, vocab and weights (model.safetensors, else
    tf_model.h5) are fetched once and read like any local directory afterwards.
    """
    repo = hub_id(source)
    if repo is None:
        return source
    if repo not in _resolved_hub:
        import huggingface_hub

        try:
            directory = huggingface_hub.snapshot_download(repo, allow_patterns=list(_HUB_FILES) + ["model.safetensors"])
            if not tf.io.gfile.exists(os.path.join(directory, "model.safetensors")):
                directory = os.path.dirname(huggingface_hub.hf_hub_download(repo, "tf_model.h5"))
        except Exception as error:  # network, authentication and missing-file errors all end the same way
            raise UserError(f"cannot download {source} ({type(error).__name__}: {str(error).splitlines()[0][:160]}): "
                            "check the id and the network, or pass a local model directory") from None
        _resolved_hub[repo] = directory
    return _resolved_hub[repo]


def _directory_of(source):
    source = local_source(source)
    return source if tf.io.gfile.isdir(source) else os.path.dirname(source)


def checkpoint_config_path(source):
    """The config file that describes a source's architecture."""
    source_kind(source)
    directory = _directory_of(source)
    for name in ("config.json", "bert_config.json"):
        if tf.io.gfile.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise UserError(f"{directory} has no config.json or bert_config.json describing the model")


def load_checkpoint_config(source):
    """The BertConfig of a source, whatever its format."""
    kind = source_kind(source)
    if kind == "keras_hub":
        return keras_hub_format.bert_config(local_source(source))
    config = config_lib.load_bert_config(checkpoint_config_path(source))
    if kind in ("tf1", "tf2") and config.hidden_act == "gelu":
        # google-research/bert and the Model Garden compute "gelu" as the tanh approximation;
        # Hugging Face's "gelu" is the exact (erf) form, its tanh form is "gelu_new".
        config.hidden_act = "gelu_new"
    return config


def tokenizer_settings(source):
    """(vocab_file, do_lower_case) a checkpoint carries, each None when it has none.

    ``do_lower_case`` comes from its tokenizer config (tokenizer_config.json, or a keras-hub
    preset's tokenizer.json); without one, tokenization.resolve_lower_case infers it from the vocab.
    """
    if not hub_id(source) and not tf.io.gfile.exists(source) and not _find_tf_prefix(source):
        return None, None
    model_dir = _directory_of(source)
    if keras_hub_format.is_preset(model_dir):
        return keras_hub_format.tokenizer_settings(model_dir)
    vocab = os.path.join(model_dir, "vocab.txt")
    lower = None
    config_path = os.path.join(model_dir, "tokenizer_config.json")
    if tf.io.gfile.exists(config_path):
        lower = fileio.read_json_object(config_path, "tokenizer config", {"do_lower_case": (bool, type(None))},
                                        "fix the file or delete it (casing is then read from the vocab)"
                                        ).get("do_lower_case")
    return (vocab if tf.io.gfile.exists(vocab) else None), lower
