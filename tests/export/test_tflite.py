"""--format=tflite: float32 gives the SavedModel's probabilities; dynamic-range int8 keeps the labels."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bert_tf.errors import UserError
from tests.export.conftest import LABELS, MAX_SEQ_LENGTH

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def sentences():
    from bert_tf.data import classification

    examples, _ = classification.read_examples(os.path.join(REPO, "data", "sentiment", "test.tsv"))
    return [e.text for e in examples[:48]]


@pytest.fixture(scope="module")
def float32_dir(classifier_dir, tmp_path_factory):
    """Exported through the script, as a user would."""
    base = str(tmp_path_factory.mktemp("tflite") / "clf")
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export_savedmodel.py"),
                           f"--model_dir={classifier_dir}", f"--export_dir={base}", "--format=tflite"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"exported {base}/1"
    return f"{base}/1"


def test_float32_matches_the_savedmodel(float32_dir, classifier_export, sentences):
    import bert_tf
    from bert_tf.export import client

    assert sorted(os.listdir(float32_dir)) == ["bert_tf_export.json", "model.tflite", "vocab.txt"]
    with open(os.path.join(float32_dir, "bert_tf_export.json")) as f:
        meta = json.load(f)
    assert meta == {"format": "tflite", "task": "classification", "labels": LABELS, "text_pair": False,
                    "inputs": ["input_ids", "attention_mask", "token_type_ids"], "max_seq_length": MAX_SEQ_LENGTH,
                    "do_lower_case": True, "weights": "float32"}
    lite = bert_tf.Predictor.from_dir(float32_dir, num_threads=1)
    saved = bert_tf.Predictor.from_dir(classifier_export)
    lite_rows, saved_rows = lite.predict(sentences, batch_size=16), saved.predict(sentences, batch_size=16)
    difference = max(abs(a["scores"][k] - b["scores"][k]) for a, b in zip(lite_rows, saved_rows) for k in LABELS)
    assert difference < 1e-5
    assert [r["label"] for r in lite_rows] == [r["label"] for r in saved_rows]
    # serving_client --local_saved_model takes the TFLite directory the same way.
    local = client.predict_local(float32_dir, {"text": sentences[:3]})
    assert [row["label"] for row in local] == [r["label"] for r in saved_rows[:3]]
    np.testing.assert_allclose([row["probabilities"] for row in local],
                               [[r["scores"][k] for k in LABELS] for r in saved_rows[:3]], atol=1e-5)


def test_dynamic_int8_keeps_labels_at_a_quarter_of_the_size(float32_dir, tmp_path, tiny_checkpoint, tiny_config,
                                                            sentences):
    import copy

    import tf_keras

    import bert_tf
    from bert_tf.export import tflite
    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import SequenceClassifier
    from bert_tf.tokenization import HostTokenizer

    vocab_file = os.path.join(tiny_checkpoint, "vocab.txt")
    features, _ = HostTokenizer(vocab_file).encode(sentences, max_seq_length=MAX_SEQ_LENGTH)
    features = {"input_ids": features["input_ids"], "attention_mask": features["input_mask"],
                "token_type_ids": features["segment_ids"]}
    # Weights drawn 5x wider than BERT's 0.02, so that different sentences get clearly different
    # pooled vectors: at 0.02 a random encoder maps them all to nearly one point, closer together
    # than int8 rounding moves them, and no label test could pass (measured: 52-71% agreement).
    config = copy.deepcopy(tiny_config)
    config.initializer_range = 0.1
    tf_keras.utils.set_random_seed(5)
    model = SequenceClassifier(config, num_labels=len(LABELS)).build_with_dummies()
    # The head reads the direction in which these sentences' vectors differ most and cuts it twice,
    # each time in the widest gap between neighbouring sentences, one in the lower and one in the
    # upper half (each label keeps at least a sixth): label 1 below the first cut, 2 between, 0
    # above the second. Cutting at the tertiles themselves put a sentence
    # within int8 rounding of each boundary, and the labels flipped with the state earlier tests
    # left behind (CI: 45/48). One standard deviation of the projection = 10 logits.
    pooled = model.encode(features, False).pooler_output.numpy()
    direction = np.linalg.svd(pooled - pooled.mean(axis=0), full_matrices=False)[2][0]
    projection = pooled @ direction
    scale = 10.0 / projection.std()
    ordered = np.sort(projection) * scale
    n = len(ordered)

    def widest_gap_cut(start, stop):
        i = start + int(np.argmax(np.diff(ordered[start:stop + 1])))
        return (ordered[i] + ordered[i + 1]) / 2

    lower, upper = widest_gap_cut(n // 6, n // 2 - 1), widest_gap_cut(n // 2, n * 5 // 6)
    kernel = next(v for v in model.trainable_weights if "classifier" in v.name and v.shape.rank == 2)
    bias = next(v for v in model.trainable_weights if "classifier" in v.name and v.shape.rank == 1)
    kernel.assign(np.stack([direction * scale, -direction * scale, np.zeros_like(direction)], axis=1))
    bias.assign([-upper, lower, 0.0])
    model_dir = checkpoints.save_hf(model, str(tmp_path / "model"), vocab_file=vocab_file, do_lower_case=True,
                                    meta={"task": "classification", "labels": LABELS, "max_seq_length": MAX_SEQ_LENGTH})
    reference = model(features, training=False)["probabilities"].numpy()
    int8_dir = tflite.export_tflite(model_dir, str(tmp_path / "int8"), quantize="dynamic")
    int8 = bert_tf.Predictor.from_dir(int8_dir, num_threads=1)
    quantized = np.array([[r["scores"][k] for k in LABELS] for r in int8.predict(sentences)])
    assert np.bincount(reference.argmax(-1), minlength=3).min() >= n // 6
    agreement = (quantized.argmax(-1) == reference.argmax(-1)).mean()
    difference = np.abs(quantized - reference).max()
    # Measured alone: 48/48 labels equal, gaps of 4.1 and 2.2 logits at the cuts, int8 moving a
    # sentence's projection by at most 0.72 logits, largest probability difference 0.08. Rounding
    # may differ with the CPU's int8 kernels, hence one flip in 24 allowed.
    assert agreement >= 0.95 and 0 < difference < 0.3, (agreement, difference)
    assert int8.size_bytes < 0.4 * os.path.getsize(os.path.join(float32_dir, "model.tflite"))


def test_refusals(tagger_dir, tmp_path):
    from bert_tf.export import tflite

    with pytest.raises(UserError, match="--quantize=float16 is not one of none, dynamic for --format=tflite"):
        tflite.export_tflite(tagger_dir, str(tmp_path), quantize="float16")
    with pytest.raises(UserError, match="holds a tagging model; --format=tflite covers classification, regression"):
        tflite.export_tflite(tagger_dir, str(tmp_path))
    assert not os.listdir(tmp_path)
