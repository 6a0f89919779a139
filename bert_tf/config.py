"""Model presets (bert_tf/configs/models/*.json, package data) and BertConfig loading with validation."""
import json
import os

import tensorflow as tf

from bert_tf.errors import UserError

# Inside the package so an installed wheel (not just a checkout) knows --bert_config_file=tiny.
PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "models")

# Keys google-research/bert's bert_config.json and Hugging Face's config.json may carry.
# Anything else is most likely a typo that would silently fall back to a default.
_KNOWN_KEYS = {
    "attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
    "initializer_range", "intermediate_size", "layer_norm_eps", "max_position_embeddings",
    "model_type", "num_attention_heads", "num_hidden_layers", "pad_token_id", "type_vocab_size",
    "vocab_size", "position_embedding_type", "use_cache", "classifier_dropout", "architectures",
    "transformers_version", "_name_or_path", "gradient_checkpointing", "torch_dtype", "dtype",
    "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers",
    "pooler_size_per_head", "pooler_type", "id2label", "label2id", "problem_type",
    "output_past", "bos_token_id", "eos_token_id", "tie_word_embeddings",
}


def preset_names():
    return sorted(f[:-5] for f in os.listdir(PRESET_DIR) if f.endswith(".json"))


def _resolve(name_or_path):
    if tf.io.gfile.exists(name_or_path):
        if tf.io.gfile.isdir(name_or_path):
            for candidate in ("config.json", "bert_config.json"):
                path = os.path.join(name_or_path, candidate)
                if tf.io.gfile.exists(path):
                    return path
            raise UserError(f"{name_or_path} holds no config.json or bert_config.json: pass a config file or a preset")
        return name_or_path
    preset = os.path.join(PRESET_DIR, f"{name_or_path}.json")
    if os.path.exists(preset):
        return preset
    raise UserError(
        f"unknown model config {name_or_path!r}: use a preset ({', '.join(preset_names())}) or a path to a JSON file")


def load_config_dict(name_or_path):
    path = _resolve(name_or_path)
    try:
        with tf.io.gfile.GFile(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"model config {path} is not valid JSON ({error}): fix or regenerate the file") from None
    if not isinstance(data, dict):
        raise UserError(f"model config {path} must hold a JSON object of BertConfig fields")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise UserError(f"model config {path} has unknown keys {unknown}: remove them or fix their spelling")
    return data


def load_bert_config(name_or_path, vocab_size=None, **overrides):
    """Returns a ``transformers.BertConfig`` from a preset name, a JSON file or a model directory.

    ``vocab_size`` (from the vocab file in use) overrides the config's, since the embedding
    table must match the tokenizer.
    """
    from transformers import BertConfig

    data = load_config_dict(name_or_path)
    if vocab_size is not None:
        data["vocab_size"] = vocab_size
    data.update({k: v for k, v in overrides.items() if v is not None})
    check_fields(data, name_or_path)
    return BertConfig(**data)


# Field -> (type, smallest allowed, whether the smallest is excluded, largest or None) of the fields
# that shape or drive the model; a wrong one fails deep in Keras otherwise.
_FIELDS = {
    **{key: (int, 1, False, None) for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                              "intermediate_size", "max_position_embeddings", "vocab_size",
                                              "type_vocab_size")},
    "hidden_dropout_prob": (float, 0, False, 1), "attention_probs_dropout_prob": (float, 0, False, 1),
    "initializer_range": (float, 0, True, None), "layer_norm_eps": (float, 0, True, None),
}
# The activations the encoder's feed-forward layer can compute (Hugging Face's TF names; glu halves the
# width and cannot serve here).
ACTIVATIONS = ("gelu", "gelu_10", "gelu_fast", "gelu_new", "mish", "quick_gelu", "relu", "sigmoid", "silu", "swish",
               "tanh")


def check_fields(data, source):
    """Types and ranges of a config's model fields, heads dividing hidden_size and a known activation;
    the message names the config, the key and the fix."""
    import math

    where = f"model config {source}"
    for key, (kind, low, low_open, high) in _FIELDS.items():
        if key not in data:
            continue
        value = data[key]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int and not (numeric and float(value).is_integer()):
            raise UserError(f"{where}: {key}={value!r} must be a whole number: fix the value in the file")
        if not numeric or not math.isfinite(value) or value < low or (low_open and value == low) or \
                (high is not None and value >= high):
            bound = (f"at least {low}" if not low_open else f"above {low}") + (f" and below {high}" if high else "")
            raise UserError(f"{where}: {key}={value!r} must be a number {bound}: fix the value in the file")
        if kind is int:
            data[key] = int(value)
    if data.get("hidden_size", 768) % data.get("num_attention_heads", 12):
        raise UserError(f"{where}: hidden_size must be a multiple of num_attention_heads")
    act = data.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise UserError(f"{where}: hidden_act={act!r} is not an activation the encoder knows: use one of "
                        f"{', '.join(ACTIVATIONS)}")


def check_seq_length(config, max_seq_length):
    if max_seq_length < 8:
        raise UserError(f"--max_seq_length={max_seq_length} is too small: use at least 8")
    if max_seq_length > config.max_position_embeddings:
        raise UserError(
            f"--max_seq_length={max_seq_length} exceeds the model's max_position_embeddings="
            f"{config.max_position_embeddings}: lower --max_seq_length")
