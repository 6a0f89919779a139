"""The names every checkpoint format is mapped onto: our variable names and dense layouts, and the
metadata file that marks a bert_tf model directory."""
import re

MODEL_META = "bert_tf.json"


def _relative_name(variable_name):
    """'bert_classification/bert/encoder/...:0' -> 'bert/encoder/...' (drops the model's own scope)."""
    name = variable_name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def fold_heads(name, value):
    """Per-head attention weights ([hidden, heads, size] and the like, as EinsumDense stores them)
    -> the dense [in, out] layout of ``name``."""
    if re.search(r"attention/self/(query|key|value)/kernel$", name):
        return value.reshape(value.shape[0], -1)
    if re.search(r"attention/self/(query|key|value)/bias$", name):
        return value.reshape(-1)
    if name.endswith("attention/output/dense/kernel"):
        return value.reshape(-1, value.shape[-1])
    return value
