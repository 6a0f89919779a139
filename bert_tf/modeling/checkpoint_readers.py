"""One reader per checkpoint format: each returns {our variable name: array}, kernels in Keras's [in, out] layout.

Our names are Hugging Face's TF names; PyTorch and TF1 heads store [out, in] and are transposed here.
"""
import os
import re

import tensorflow as tf

from bert_tf import fileio
from bert_tf.errors import UserError
from bert_tf.modeling import keras_hub_format, model_garden
from bert_tf.modeling.checkpoint_sources import _find_tf_prefix, local_source, source_kind
from bert_tf.modeling.names import _relative_name


def _hf_h5_state(directory):
    import h5py

    state = {}
    with fileio.local_copy(os.path.join(directory, "tf_model.h5")) as local, h5py.File(local, "r") as f:
        for layer in f.attrs.get("layer_names", []):
            group = f[layer]
            for weight in group.attrs.get("weight_names", []):
                weight = weight.decode() if isinstance(weight, bytes) else weight
                state[_relative_name(weight)] = group[weight][()]
    return state


def _pt_name(key):
    """Hugging Face PyTorch state-dict key -> (our variable name, transpose) or None to skip.

    Sentence-transformers exports drop BertModel's "bert." prefix; the tied MLM decoder and the
    position-id buffer carry nothing of their own.
    """
    if not key.startswith(("bert.", "cls.", "classifier.", "qa_outputs.")):
        key = f"bert.{key}"
    if key.endswith("position_ids") or key.startswith("cls.predictions.decoder."):
        return None
    name = key.replace(".", "/")
    name = re.sub(r"/layer/(\d+)/", r"/layer_._\1/", name)
    name = re.sub(r"^cls/predictions/", "mlm___cls/predictions/", name)
    name = re.sub(r"^cls/seq_relationship/", "nsp___cls/seq_relationship/", name)
    if name.endswith("word_embeddings/weight"):
        return name, False
    if re.search(r"(position|token_type)_embeddings/weight$", name):
        return name[: -len("weight")] + "embeddings", False
    if re.search(r"LayerNorm/(weight|gamma)$", name):
        return name.rsplit("/", 1)[0] + "/gamma", False
    if re.search(r"LayerNorm/(bias|beta)$", name):
        return name.rsplit("/", 1)[0] + "/beta", False
    if name.endswith("/weight"):
        return name[: -len("weight")] + "kernel", True
    return name, False


def _safetensors_state(directory):
    from safetensors.numpy import load

    # Bytes through gfile, so gs:// directories load without a local copy.
    with tf.io.gfile.GFile(os.path.join(directory, "model.safetensors"), "rb") as f:
        raw = load(f.read())
    state = {}
    for key, value in raw.items():
        mapped = _pt_name(key)
        if mapped and value.dtype.kind == "f":
            state[mapped[0]] = value.T if mapped[1] else value
    return state


_TF1_RULES = [
    (r"^bert/encoder/layer_(\d+)/", r"bert/encoder/layer_._\1/"),
    (r"/word_embeddings$", "/word_embeddings/weight"),
    (r"/(position|token_type)_embeddings$", r"/\1_embeddings/embeddings"),
    (r"^cls/predictions/output_bias$", "mlm___cls/predictions/bias"),
    (r"^cls/predictions/", "mlm___cls/predictions/"),
    (r"^cls/seq_relationship/output_weights$", "nsp___cls/seq_relationship/kernel"),
    (r"^cls/seq_relationship/output_bias$", "nsp___cls/seq_relationship/bias"),
    # google-research/bert's run_classifier and run_squad heads.
    (r"^output_weights$", "classifier/kernel"),
    (r"^output_bias$", "classifier/bias"),
    (r"^cls/squad/output_weights$", "qa_outputs/kernel"),
    (r"^cls/squad/output_bias$", "qa_outputs/bias"),
]
# TF1 heads stored as [out, in] (tf.matmul(x, w, transpose_b=True)); every other kernel is [in, out].
_TF1_TRANSPOSED = {"nsp___cls/seq_relationship/kernel", "classifier/kernel", "qa_outputs/kernel"}


def tf1_name(name):
    """google-research/bert variable name -> our (Hugging Face TF) variable name."""
    for pattern, replacement in _TF1_RULES:
        name = re.sub(pattern, replacement, name)
    return name


def _tf1_state(prefix):
    reader = tf.train.load_checkpoint(prefix)
    state = {}
    for name in reader.get_variable_to_shape_map():
        if "adam_" in name or name == "global_step" or "/" not in name and not name.startswith("output_"):
            continue
        target = tf1_name(name)
        value = reader.get_tensor(name)
        state[target] = value.T if target in _TF1_TRANSPOSED else value
    return state


def read_state(source):
    """{our variable name: array} from any source format (kernels in Keras's [in, out] layout)."""
    kind = source_kind(source)
    local = local_source(source)
    try:
        if kind == "hf_tf" or (kind == "hub" and tf.io.gfile.exists(os.path.join(local, "tf_model.h5"))):
            return _hf_h5_state(local)
        if kind in ("safetensors", "hub"):
            return _safetensors_state(local)
        if kind == "keras_hub":
            return keras_hub_format.read_state(local)
        if kind == "tf2":
            return model_garden.read_state(_find_tf_prefix(local))
        return _tf1_state(_find_tf_prefix(local))
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise UserError(f"cannot read --init_checkpoint {source} ({str(error).strip().splitlines()[0][:160]}): "
                        "check that the files are complete") from None

