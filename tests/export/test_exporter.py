"""Classification export: fresh-process equality with the in-memory model, layout, errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.errors import UserError
from bert_tf.export import exporter
from bert_tf.tokenization import HostTokenizer
from tests.export.conftest import LABELS, MAX_SEQ_LENGTH, model_outputs, run_fresh

TEXTS = ["a gripping, beautifully acted film", "Dull.", "naïve café résumé with accents", "東京 tower",
         "word " * 40]


def test_fresh_process_outputs_equal_in_memory_model(classifier_dir, classifier_export):
    host = HostTokenizer(os.path.join(classifier_dir, "vocab.txt"))
    features, truncated = host.encode(TEXTS, max_seq_length=MAX_SEQ_LENGTH)
    assert truncated == 1
    features = {"input_ids": features["input_ids"], "attention_mask": features["input_mask"],
                "token_type_ids": features["segment_ids"]}
    expected = model_outputs(classifier_dir, features)
    got = run_fresh(classifier_export, [
        {"name": "text", "signature": "serving_default", "inputs": {"text": TEXTS}},
        {"name": "ids", "signature": "serve_ids", "inputs": {k: v.tolist() for k, v in features.items()}}])
    assert got["imported"] == []
    for name in ("text", "ids"):
        out = got[name]
        assert sorted(out) == ["label", "label_id", "logits", "probabilities"]
        np.testing.assert_allclose(out["logits"], expected["logits"], atol=1e-5)
        np.testing.assert_allclose(out["probabilities"], expected["probabilities"], atol=1e-5)
        best = expected["probabilities"].argmax(-1)
        assert out["label_id"] == best.tolist()
        assert out["label"] == [LABELS[i] for i in best]


def test_saved_model_cli_lists_both_signatures(classifier_export):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", classifier_export, "--all"], capture_output=True, text=True,
                           timeout=120).stdout
    assert "signature_def['serving_default']" in shown and "signature_def['serve_ids']" in shown
    assert "inputs['text'] tensor_info:" in shown and "dtype: DT_STRING" in shown
    assert "inputs['input_ids'] tensor_info:" in shown
    for output in ("logits", "probabilities", "label_id", "label"):
        assert f"outputs['{output}']" in shown


def test_layout_versions_and_no_training_paths(classifier_dir, classifier_export, tmp_path):
    assert os.path.basename(classifier_export) == "1"
    assert sorted(os.listdir(os.path.join(classifier_export, "assets"))) == ["vocab.txt"]
    assert sorted(os.listdir(os.path.join(classifier_export, "assets.extra"))) == \
        ["bert_tf_export.json", "tf_serving_warmup_requests"]
    # The training machine's temp paths must not leak into the graph or any asset.
    needles = [p.encode() for p in (os.path.dirname(classifier_dir), str(tmp_path.parent.parent))]
    for root, _, files in os.walk(classifier_export):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            assert not any(n in data for n in needles), name


def test_existing_version_is_refused_and_left_untouched(classifier_dir, classifier_export):
    export_dir = os.path.dirname(classifier_export)
    before = sorted(os.listdir(export_dir))
    stamp = os.path.getmtime(os.path.join(classifier_export, "saved_model.pb"))
    with pytest.raises(UserError, match="already exists"):
        exporter.export_saved_model(classifier_dir, export_dir, version=1)
    assert sorted(os.listdir(export_dir)) == before
    assert os.path.getmtime(os.path.join(classifier_export, "saved_model.pb")) == stamp
    assert exporter.next_version(export_dir) == 2


@pytest.mark.parametrize("make, message", [
    (lambda tmp, ckpt: str(tmp / "missing"), "not a directory"),
    (lambda tmp, ckpt: str(tmp), "not a bert_tf fine-tuned model"),
    (lambda tmp, ckpt: ckpt, "holds a 'encoder' model; export supports classification"),
])
def test_not_a_model_directory_is_a_user_error(tmp_path, tiny_checkpoint, make, message):
    with pytest.raises(UserError, match=message):
        exporter.export_saved_model(make(tmp_path, tiny_checkpoint), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out" / "1")


def test_warmup_records_are_predict_requests(classifier_export):
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(os.path.join(classifier_export, "assets.extra",
                                                       "tf_serving_warmup_requests")):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log.predict_log.request)
    assert [r.model_spec.signature_name for r in logs] == ["serving_default"] * 2
    assert [tf.make_ndarray(r.inputs["text"]).shape for r in logs] == [(1,), (2,)]
    loaded = tf.saved_model.load(classifier_export)
    for request in logs:  # each warmup request runs as it is
        texts = tf.make_ndarray(request.inputs["text"])
        assert loaded.signatures["serving_default"](text=tf.constant(texts))["label"].shape == texts.shape


def test_large_requests_run_grouped_by_length_in_request_order(classifier_dir, classifier_export):
    import tensorflow_text  # noqa: F401

    texts = [("word " * n).strip() + f" {i}" for i, n in enumerate([30, 1, 7, 0, 22, 3, 12, 5, 40, 2, 9])]
    host = HostTokenizer(os.path.join(classifier_dir, "vocab.txt"))
    features, _ = host.encode(texts, max_seq_length=MAX_SEQ_LENGTH)
    expected = model_outputs(classifier_dir, {"input_ids": features["input_ids"],
                                              "attention_mask": features["input_mask"],
                                              "token_type_ids": features["segment_ids"]})
    out = tf.saved_model.load(classifier_export).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(out["logits"].numpy(), expected["logits"], atol=1e-5)
    assert out["label"].numpy().astype(str).tolist() == [LABELS[i] for i in expected["logits"].argmax(-1)]
