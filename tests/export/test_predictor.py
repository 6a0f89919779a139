"""bert_tf.Predictor (bert_tf/predictor.py): a model directory and its export give the same results;
tags and spans. Here rather than in tests/ so it shares this directory's tiny task exports."""
import os
import subprocess
import sys

import numpy as np
import pytest

from bert_tf.errors import UserError
from tests.export.conftest import LABELS, TAGS

TEXTS = ["a gripping , beautifully acted film that stays with you and then some more words .", "dull",
         "the plot is a mess", "an uneven but often charming comedy .", "i wanted my two hours back .",
         "good", "not good at all , and far too long for what it has to say"]


@pytest.fixture(scope="module")
def predictors(classifier_dir, classifier_export):
    import bert_tf

    return bert_tf.Predictor.from_dir(classifier_dir), bert_tf.Predictor.from_dir(classifier_export)


def test_model_dir_and_export_agree_and_batching_keeps_order(predictors):
    from_dir, from_export = predictors
    assert (from_dir.kind, from_export.kind, from_dir.task, from_dir.labels) == \
        ("model_dir", "saved_model", "classification", LABELS)
    # The reference: the export's serving_default signature (``run``), all texts in one call, in order.
    expected = from_export.run({"text": TEXTS})["probabilities"]
    for predictor in predictors:
        for batch_size in (1, 3, 32):
            results = predictor.predict(TEXTS, batch_size=batch_size)
            probabilities = np.array([[r["scores"][label] for label in LABELS] for r in results])
            np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
            assert [r["label"] for r in results] == [LABELS[i] for i in expected.argmax(-1)]
            assert [r["score"] for r in results] == [max(r["scores"].values()) for r in results]
    assert from_dir.predict("dull")[0]["label"] == from_dir.predict(["dull"])[0]["label"]


def test_tags_per_word_match_the_signature(exports, tagger_dir):
    import bert_tf

    sentences = ["Anne lives in Berlin", "Paris", "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 2]
    predictor = bert_tf.Predictor.from_dir(exports["tagging"])
    outputs = predictor.run({"text": sentences})  # the signature's own outputs, one call
    results = predictor.predict(sentences, batch_size=2)
    for row, (sentence, result) in enumerate(zip(sentences, results)):
        starts = outputs["word_start"][row] == 1
        expected = [t.decode() for t in outputs["tag"][row][starts]]
        assert result["words"] == sentence.split()
        assert result["tags"][:len(expected)] == expected and set(expected) <= set(TAGS)
        assert all(0 < s <= 1 for s in result["scores"][:len(expected)])
    # The 52-word sentence does not fit 32 word pieces: its last words get no tag, said as None.
    assert results[2]["tags"][-1] is None and results[2]["tags"][0] is not None
    in_memory = bert_tf.Predictor.from_dir(tagger_dir).predict(sentences)
    assert [r["tags"] for r in in_memory] == [r["tags"] for r in results]
    np.testing.assert_allclose([s for r in in_memory[:2] for s in r["scores"]],
                               [s for r in results[:2] for s in r["scores"]], atol=1e-5)


def test_spans_for_qa_and_pairs_for_regression(exports):
    import bert_tf

    pairs = [("Who wrote it?", "Anne wrote it in Berlin."), ("Where?", "It happened in Paris last year.")]
    predictor = bert_tf.Predictor.from_dir(exports["squad"])
    results = predictor.predict(pairs + [{"question": "Who?", "context": "Anne did."}])
    outputs = predictor.run({"question": [q for q, _ in pairs], "context": [c for _, c in pairs]})
    assert [r["answer"] for r in results[:2]] == [a.decode() for a in outputs["answer"]]
    assert all(r["answer"] in context for r, (_, context) in zip(results, pairs))
    np.testing.assert_allclose([r["score"] for r in results[:2]], outputs["score"], atol=1e-5)

    regression = bert_tf.Predictor.from_dir(exports["regression"])
    scores = [r["score"] for r in regression.predict([("a film", "a movie"), ("dull", "far too long")])]
    expected = regression.run({"text": ["a film", "dull"], "text_pair": ["a movie", "far too long"]})
    np.testing.assert_allclose(scores, expected["score"], atol=1e-5)
    with pytest.raises(UserError, match=r"input 0 is \('a film',\): this regression model takes text and text_pair"):
        regression.predict([("a film",)])


def test_from_dir_finds_versions_and_refuses_other_directories(predictors, classifier_export, tmp_path):
    import bert_tf

    base = os.path.dirname(classifier_export)
    assert bert_tf.Predictor.from_dir(base).predict(["dull"]) == predictors[1].predict(["dull"])
    with pytest.raises(UserError, match="holds no saved_model.pb, model.tflite or fine-tuned model"):
        bert_tf.Predictor.from_dir(str(tmp_path))
    with pytest.raises(UserError, match="is not a directory"):
        bert_tf.Predictor.from_dir(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="num_threads applies to TFLite exports"):
        bert_tf.Predictor.from_dir(classifier_export, num_threads=1)
    with pytest.raises(UserError, match="batch_size=0 must be positive"):
        predictors[0].predict(["dull"], batch_size=0)


def test_import_bert_tf_stays_free_of_tensorflow():
    # (bert_tf.Predictor itself is what the other tests call.)
    code = "import sys, bert_tf; print(sorted(m for m in sys.modules if m.startswith(('tensorflow', 'bert_tf.'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-1000:]
