"""--quantize=float16: half-size variables, float32 compute, outputs within float16 rounding."""
import os

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.errors import UserError
from bert_tf.export import exporter
from tests.export.conftest import run_fresh

TEXTS = ["a gripping, beautifully acted film", "dull", "naïve café"]


def _variables_bytes(path):
    root = os.path.join(path, "variables")
    return sum(os.path.getsize(os.path.join(root, name)) for name in os.listdir(root))


def test_float16_export_halves_weights_and_keeps_outputs(classifier_dir, classifier_export, tmp_path):
    half = exporter.export_saved_model(classifier_dir, str(tmp_path / "serving"), quantize="float16")
    stored = {name: shape for name, shape in tf.train.list_variables(os.path.join(half, "variables", "variables"))}
    reader = tf.train.load_checkpoint(os.path.join(half, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    big = [name for name, shape in stored.items() if np.prod(shape) > 1000]
    assert big and all(dtypes[name] == tf.float16 for name in big)
    assert _variables_bytes(half) < 0.55 * _variables_bytes(classifier_export)
    calls = [{"name": "text", "signature": "serving_default", "inputs": {"text": TEXTS}},
             {"name": "again", "signature": "serving_default", "inputs": {"text": TEXTS}}]
    full, quantized = run_fresh(classifier_export, calls), run_fresh(half, calls)
    assert quantized["imported"] == []
    # The first call fills the float32 copies; the second reads them: same results.
    assert quantized["text"] == quantized["again"]
    delta = np.abs(np.array(quantized["text"]["logits"]) - np.array(full["text"]["logits"])).max()
    assert 0 < delta < 1e-3
    assert quantized["text"]["label"] == full["text"]["label"]


def test_unknown_quantize_value_is_a_user_error(classifier_dir, tmp_path):
    with pytest.raises(UserError, match="--quantize=int8 is not one of none, float16"):
        exporter.export_saved_model(classifier_dir, str(tmp_path), quantize="int8")
    assert os.listdir(tmp_path) == []
