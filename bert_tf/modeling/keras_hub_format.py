"""keras-hub BERT presets (``BertBackbone`` weights + ``BertTokenizer`` vocabulary), both ways.

A preset directory holds ``config.json`` (the backbone's Keras config), ``model.weights.h5``,
``tokenizer.json`` and ``assets/tokenizer/vocabulary.txt``; it loads with
``keras_hub.models.BertBackbone.from_preset(dir)`` and every keras-hub BERT task.

keras-hub runs on Keras 3 while bert_tf's models are tf-keras (Keras 2). Both can live in one
process, but importing keras_hub pulls in Keras 3 (seconds, and a second set of layer and
dtype-policy registries next to tf-keras's), so it is imported inside the functions that read or
write weights, and nothing else in bert_tf imports this module's callers' keras_hub. Reading the
config and the tokenizer settings needs no keras-hub at all.

Two limits of BertBackbone: its GELU is always the tanh approximation (Hugging Face's
``gelu_new``), and its LayerNorm epsilon is 1e-12.
"""
import os
import re

import tensorflow as tf

from bert_tf import fileio, tokenization
from bert_tf.errors import UserError
from bert_tf.modeling.names import MODEL_META, _relative_name, fold_heads

_CLASS = "BertBackbone"
_VOCAB = os.path.join("assets", "tokenizer", "vocabulary.txt")
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")

# keras-hub variable path (without transformer_layer_<i>/) -> ours (without the layer prefix).
_EMBEDDINGS = {
    "token_embedding/embeddings": "bert/embeddings/word_embeddings/weight",
    "position_embedding/embeddings": "bert/embeddings/position_embeddings/embeddings",
    "segment_embedding/embeddings": "bert/embeddings/token_type_embeddings/embeddings",
    "embeddings_layer_norm/gamma": "bert/embeddings/LayerNorm/gamma",
    "embeddings_layer_norm/beta": "bert/embeddings/LayerNorm/beta",
    "pooled_dense/kernel": "bert/pooler/dense/kernel",
    "pooled_dense/bias": "bert/pooler/dense/bias",
}
_LAYER = {
    "self_attention_layer/query/": "attention/self/query/",
    "self_attention_layer/key/": "attention/self/key/",
    "self_attention_layer/value/": "attention/self/value/",
    "self_attention_layer/attention_output/": "attention/output/dense/",
    "self_attention_layer_norm/": "attention/output/LayerNorm/",
    "feedforward_intermediate_dense/": "intermediate/dense/",
    "feedforward_output_dense/": "output/dense/",
    "feedforward_layer_norm/": "output/LayerNorm/",
}


def our_name(path):
    """keras-hub BertBackbone variable path -> our variable name (None when it has no counterpart)."""
    if path in _EMBEDDINGS:
        return _EMBEDDINGS[path]
    match = re.match(r"transformer_layer_(\d+)/(.*)$", path)
    if match:
        for theirs, ours in _LAYER.items():
            if match.group(2).startswith(theirs):
                return f"bert/encoder/layer_._{match.group(1)}/{ours}{match.group(2)[len(theirs):]}"
    return None


def _read_config(directory):
    path = os.path.join(directory, "config.json")
    if not tf.io.gfile.exists(path):
        return None
    try:
        config = fileio.read_json(path)
    except (ValueError, UserError):
        return None
    return config if isinstance(config, dict) and "class_name" in config and "config" in config else None


def is_preset(directory):
    """True for a keras-hub BERT preset; a keras-hub preset of another model is an error."""
    config = _read_config(directory)
    if config is None or not tf.io.gfile.exists(os.path.join(directory, "model.weights.h5")):
        return False
    if config["class_name"] != _CLASS:
        raise UserError(f"{directory} is a keras-hub preset of {config['class_name']}, not {_CLASS}: bert_tf loads "
                        "BERT checkpoints only")
    return True


def bert_config(directory):
    from transformers import BertConfig

    c = _read_config(directory)["config"]
    try:
        return BertConfig(vocab_size=c["vocabulary_size"], hidden_size=c["hidden_dim"], num_hidden_layers=c["num_layers"],
                          num_attention_heads=c["num_heads"], intermediate_size=c["intermediate_dim"],
                          hidden_act="gelu_new", hidden_dropout_prob=c.get("dropout", 0.1),
                          attention_probs_dropout_prob=c.get("dropout", 0.1),
                          max_position_embeddings=c.get("max_sequence_length", 512),
                          type_vocab_size=c.get("num_segments", 2), layer_norm_eps=1e-12)
    except KeyError as error:
        raise UserError(f"{directory}/config.json lacks {error.args[0]!r}: it is not a keras-hub BertBackbone "
                        "config") from None


def tokenizer_settings(directory):
    """(vocabulary file or None, lowercase or None) from the preset's tokenizer files."""
    vocab = os.path.join(directory, _VOCAB)
    lower = None
    path = os.path.join(directory, "tokenizer.json")
    if tf.io.gfile.exists(path):
        lower = (fileio.read_json(path).get("config") or {}).get("lowercase")
    return (vocab if tf.io.gfile.exists(vocab) else None), lower


def _load_backbone(directory):
    import keras_hub

    with fileio.local_copy(directory) as local:
        return keras_hub.models.Backbone.from_preset(local, load_weights=True)


def read_state(directory):
    """{our variable name: array}; variables without a counterpart keep their keras-hub path."""
    backbone = _load_backbone(directory)
    state = {}
    for variable in backbone.weights:
        ours = our_name(variable.path)
        state[ours or variable.path] = fold_heads(ours or "", variable.numpy())
    return state


def check_convertible(config):
    if config.hidden_act not in TANH_GELU + ("gelu",):
        raise UserError(f"keras-hub's BertBackbone computes GELU; this model uses hidden_act={config.hidden_act}: "
                        "it cannot be written as a keras-hub preset")
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise UserError("keras-hub's BertBackbone has absolute position embeddings only: this model's "
                        f"{config.position_embedding_type} cannot be written as a keras-hub preset")


def write_preset(model, output_dir, vocab_file, do_lower_case, meta=None):
    """Writes ``model``'s encoder as a keras-hub preset directory, atomically; returns the backbone.

    keras-hub's own ``save_to_preset`` writes the weights and tokenizer files, so the layout is
    whatever its ``from_preset`` expects.
    """
    import keras_hub

    config = model.config
    check_convertible(config)
    ours = {_relative_name(v.name): v.numpy() for v in model.weights}
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings, num_segments=config.type_vocab_size)
    for variable in backbone.weights:
        name = our_name(variable.path)
        if name not in ours:
            raise UserError(f"the model has no weight for keras-hub's {variable.path}: it cannot be written as a "
                            "keras-hub preset")
        variable.assign(ours[name].reshape(tuple(variable.shape)))
    # The vocabulary as a list: keras-hub reads only local files, the vocab may be on gs://.
    vocabulary = list(tokenization.load_vocab(vocab_file))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=bool(do_lower_case))
    with fileio.atomic_path(output_dir, marker=MODEL_META) as temp:
        with fileio.staged_output_dir(temp) as local:
            backbone.save_to_preset(local)
            # The task preprocessor's default length (512) would overrun a shorter position table.
            keras_hub.models.BertTextClassifierPreprocessor(
                tokenizer=tokenizer, sequence_length=min(512, config.max_position_embeddings)).save_to_preset(local)
        fileio.write_json(os.path.join(temp, MODEL_META),
                          dict(meta or {}, task="encoder", format="keras_hub", do_lower_case=bool(do_lower_case)))
    return backbone


def encoder_outputs(backbone, features):
    """BertBackbone's sequence output for our feature dict (numpy in, numpy out)."""
    outputs = backbone({"token_ids": features["input_ids"], "segment_ids": features["token_type_ids"],
                        "padding_mask": features["attention_mask"]})
    return outputs["sequence_output"].numpy()
