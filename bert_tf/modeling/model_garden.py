"""TF2 checkpoints of the TensorFlow Model Garden's BERT, read by variable name.

Its released BERT checkpoints are object-based (``tf.train.Checkpoint(encoder=BertEncoder)``, or
a ``BertPretrainerV2``'s ``checkpoint_items``): variables are keyed by the attribute path of the
Python objects that held them. Two encoder layouts exist:

* ``BertEncoderV2`` (a subclassed layer): ``encoder/_embedding_layer/embeddings``,
  ``encoder/_transformer_layers/<i>/_attention_layer/_query_dense/kernel``, ``encoder/_pooler_layer/...``;
* ``BertEncoder`` (the functional model the 2020 checkpoints were written with):
  ``encoder/layer_with_weights-<k>/...`` where k counts the layers that own weights, in build
  order: word, position and type embeddings, their LayerNorm, the transformer layers, the pooler.

Only ``tf.train.load_checkpoint`` is needed to read them; Model Garden itself is not imported.
Attention weights are stored per head ([hidden, heads, size]) and folded into dense kernels.
"""
import re

import tensorflow as tf

from bert_tf.modeling.names import fold_heads

_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Where the encoder object sits: checkpoint_items' "encoder", or the whole pretrainer's attribute.
_ENCODER_ROOTS = ("encoder/", "model/encoder_network/", "encoder_network/", "model/encoder/")
_MLM_ROOTS = ("masked_lm/", "model/masked_lm/")

_EMBEDDINGS = {
    "_embedding_layer/embeddings": "bert/embeddings/word_embeddings/weight",
    "_position_embedding_layer/embeddings": "bert/embeddings/position_embeddings/embeddings",
    "_type_embedding_layer/embeddings": "bert/embeddings/token_type_embeddings/embeddings",
    "_embedding_norm_layer/gamma": "bert/embeddings/LayerNorm/gamma",
    "_embedding_norm_layer/beta": "bert/embeddings/LayerNorm/beta",
    "_pooler_layer/kernel": "bert/pooler/dense/kernel",
    "_pooler_layer/bias": "bert/pooler/dense/bias",
}
# Inside one transformer layer.
_LAYER = {
    "_attention_layer/_query_dense/": "attention/self/query/",
    "_attention_layer/_key_dense/": "attention/self/key/",
    "_attention_layer/_value_dense/": "attention/self/value/",
    "_attention_layer/_output_dense/": "attention/output/dense/",
    "_attention_layer_norm/": "attention/output/LayerNorm/",
    "_intermediate_dense/": "intermediate/dense/",
    "_output_dense/": "output/dense/",
    "_output_layer_norm/": "output/LayerNorm/",
}
_MLM = {
    "dense/kernel": "mlm___cls/predictions/transform/dense/kernel",
    "dense/bias": "mlm___cls/predictions/transform/dense/bias",
    "layer_norm/gamma": "mlm___cls/predictions/transform/LayerNorm/gamma",
    "layer_norm/beta": "mlm___cls/predictions/transform/LayerNorm/beta",
    "output_bias.Sbias": "mlm___cls/predictions/bias",
}


def is_object_based(names):
    return any(name.endswith(_SUFFIX) for name in names)


def _layer_name(index, rest):
    for theirs, ours in _LAYER.items():
        if rest.startswith(theirs):
            return f"bert/encoder/layer_._{index}/{ours}{rest[len(theirs):]}"
    return None


def _functional_names(encoder_names):
    """layer_with_weights-<k>/<rest> -> our names, from the build order of BertEncoder."""
    by_index = {}
    for name in encoder_names:
        match = re.match(r"layer_with_weights-(\d+)/(.*)$", name)
        if match:
            by_index.setdefault(int(match.group(1)), []).append(match.group(2))
    transformer = sorted(k for k, rests in by_index.items() if any(r.startswith("_attention_layer/") for r in rests))
    if not transformer:
        return {}
    first, last = transformer[0], transformer[-1]
    embedding_order = ["word_embeddings/weight", "position_embeddings/embeddings", "token_type_embeddings/embeddings"]
    mapping = {}
    embeddings = sorted(k for k, rests in by_index.items() if k < first and "embeddings" in rests)
    for k, ours in zip(embeddings, embedding_order):
        mapping[f"layer_with_weights-{k}/embeddings"] = f"bert/embeddings/{ours}"
    for k, rests in by_index.items():
        if k < first and set(rests) == {"gamma", "beta"}:
            for var in ("gamma", "beta"):
                mapping[f"layer_with_weights-{k}/{var}"] = f"bert/embeddings/LayerNorm/{var}"
        elif first <= k <= last:
            for rest in rests:
                ours = _layer_name(transformer.index(k), rest) if k in transformer else None
                if ours:
                    mapping[f"layer_with_weights-{k}/{rest}"] = ours
        elif k == last + 1 and set(rests) == {"kernel", "bias"}:
            for var in ("kernel", "bias"):
                mapping[f"layer_with_weights-{k}/{var}"] = f"bert/pooler/dense/{var}"
    return mapping


def _encoder_name(rest):
    if rest in _EMBEDDINGS:
        return _EMBEDDINGS[rest]
    match = re.match(r"_transformer_layers/(\d+)/(.*)$", rest)
    return _layer_name(int(match.group(1)), match.group(2)) if match else None


def read_state(prefix):
    """{our variable name: array} from a Model Garden BERT checkpoint; names it cannot place are
    kept as they are, so the loader can report them."""
    reader = tf.train.load_checkpoint(prefix)
    names = [name[: -len(_SUFFIX)] for name in reader.get_variable_to_shape_map() if name.endswith(_SUFFIX)]
    encoder = {}
    mlm = {}
    other = []
    for name in names:
        root = next((r for r in _ENCODER_ROOTS if name.startswith(r)), None)
        mlm_root = next((r for r in _MLM_ROOTS if name.startswith(r)), None)
        if root:
            encoder[name[len(root):]] = name
        elif mlm_root:
            mlm[name[len(mlm_root):]] = name
        elif not name.startswith(("optimizer/", "save_counter", "global_step")):
            other.append(name)
    functional = _functional_names(encoder)
    state = {}
    for rest, full in encoder.items():
        ours = functional.get(rest) or _encoder_name(rest)
        state[ours or full] = reader.get_tensor(full + _SUFFIX)
    for rest, full in mlm.items():
        value = reader.get_tensor(full + _SUFFIX)
        if rest == "embedding_table":
            # Shared with the encoder's word embeddings; the object graph saves it once, here.
            state.setdefault("bert/embeddings/word_embeddings/weight", value)
        else:
            state[_MLM.get(rest, full)] = value
    for name in other:
        state[name] = reader.get_tensor(name + _SUFFIX)
    return {name: fold_heads(name, value) for name, value in state.items()}
