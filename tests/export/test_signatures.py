"""Tagging, QA and pair-regression exports: fresh-process outputs equal the in-memory model's
on the tokenization their training data gets, and the decoded outputs are what they claim."""
import os

import numpy as np

from bert_tf.data import tagging
from bert_tf.tokenization import HostTokenizer, truncated_lengths
from tests.export.conftest import MAX_SEQ_LENGTH, SERVING_SAFE_OPS, TAGS, custom_ops, model_outputs, run_fresh

SENTENCES = ["EU rejects German call to boycott British lamb .", "Müller's naïve café in 東京",
             "anarchism " * 27 + "philosophy-of-the-state undeniably"]


def _features(rows, mask, types=None):
    rows = np.asarray(rows)
    return {"input_ids": rows.astype(np.int32), "attention_mask": np.asarray(mask, np.int32),
            "token_type_ids": np.zeros_like(rows, np.int32) if types is None else np.asarray(types, np.int32)}


def test_tagging_outputs_align_with_training_tokenization(tagger_dir, exports):
    host = HostTokenizer(os.path.join(tagger_dir, "vocab.txt"))
    encoded = list(tagging.encode_sentences([tagging.Sentence(s.split(" ")) for s in SENTENCES], host,
                                            MAX_SEQ_LENGTH, TAGS))
    kept = [k for _, k in encoded]
    assert kept[2] < len(SENTENCES[2].split(" "))  # the long sentence is cut at a word boundary
    features = _features([f["input_ids"] for f, _ in encoded], [f["input_mask"] for f, _ in encoded])
    expected = model_outputs(tagger_dir, features)
    got = run_fresh(exports["tagging"], [
        {"name": "text", "signature": "serving_default", "inputs": {"text": SENTENCES}},
        {"name": "ids", "signature": "serve_ids", "inputs": {k: v.tolist() for k, v in features.items()}}])
    assert got["imported"] == []
    longest = int(features["attention_mask"].sum(-1).max())
    assert longest < MAX_SEQ_LENGTH  # the text signature pads to the longest example only
    for name, width in (("text", longest), ("ids", MAX_SEQ_LENGTH)):
        out = got[name]
        assert "error" not in out, out
        assert np.array(out["logits"]).shape == (len(SENTENCES), width, len(TAGS))
        # Positions past the longest example are padding, where the model's outputs mean nothing.
        np.testing.assert_allclose(out["logits"], expected["logits"][:, :width], atol=1e-5)
        np.testing.assert_allclose(out["probabilities"], expected["probabilities"][:, :width], atol=1e-5)
        tag_id = expected["probabilities"][:, :width].argmax(-1)
        assert out["tag_id"] == tag_id.tolist()
        for row, (f, _) in enumerate(encoded):
            length = int(f["input_mask"].sum())
            assert out["token"][row][:length] == host.convert_ids_to_tokens(f["input_ids"][:length])
            assert out["token"][row][length:] == [""] * (width - length)
            assert out["tag"][row] == [""] + [TAGS[t] for t in tag_id[row][1:length - 1]] + \
                [""] * (width - length + 1)
    text = got["text"]
    for row, (f, k) in enumerate(encoded):
        starts = [i for i, label in enumerate(f["label_ids"]) if label != tagging.IGNORE_LABEL]
        assert [i for i, s in enumerate(text["word_start"][row]) if s] == starts
        assert [text["word_index"][row][i] for i in starts] == list(range(k))
    assert sorted(text) == ["logits", "probabilities", "tag", "tag_id", "token", "word_index", "word_start"]


def _squad_features(host, question, context, max_seq_length, max_query_length):
    query = host.tokenize_ids([question])[0][:max_query_length]
    words = context.split(" ")
    ids, _, word_ids = host.tokenize_words([words])[0]
    keep_q, keep_c = (int(x) for x in truncated_lengths(len(query), len(ids), max_seq_length - 3))
    row = [host.cls_id] + query[:keep_q] + [host.sep_id] + list(ids[:keep_c]) + [host.sep_id]
    types = [0] * (keep_q + 2) + [1] * (keep_c + 1)
    word_of_position = [-1] * (keep_q + 2) + list(word_ids[:keep_c]) + [-1]
    pad = max_seq_length - len(row)
    return row + [0] * pad, [1] * len(row) + [0] * pad, types + [0] * pad, word_of_position + [-1] * pad, words


def test_squad_best_span_and_answer_text(squad_dir, exports):
    host = HostTokenizer(os.path.join(squad_dir, "vocab.txt"))
    questions = ["Which state is it?", "who wrote the political philosophy of anarchism and when", "", "Why?"]
    contexts = ["Alabama is a state in the southeastern region of the United States.",
                "Anarchism is a political philosophy. " * 8, "An empty question still reads the context.", ""]
    rows = [_squad_features(host, q, c, 48, 8) for q, c in zip(questions, contexts)]
    features = _features([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    expected = model_outputs(squad_dir, features)
    got = run_fresh(exports["squad"], [
        {"name": "text", "signature": "serving_default", "inputs": {"question": questions, "context": contexts}},
        {"name": "ids", "signature": "serve_ids", "inputs": {k: v.tolist() for k, v in features.items()}}])
    longest = int(features["attention_mask"].sum(-1).max())
    for name, width in (("text", longest), ("ids", 48)):
        out = got[name]
        assert "error" not in out, out
        np.testing.assert_allclose(out["start_logits"], expected["start_logits"][:, :width], atol=1e-5)
        np.testing.assert_allclose(out["end_logits"], expected["end_logits"][:, :width], atol=1e-5)
    out = got["text"]
    for b, (_, mask, types, word_of_position, words) in enumerate(rows):
        start, end = expected["start_logits"][b], expected["end_logits"][b]
        context = [i for i in range(longest) if types[i] == 1 and mask[i] and word_of_position[i] >= 0]
        spans = [(start[i] + end[j], i, j) for i in context for j in context if i <= j < i + 5]
        null = start[0] + end[0]
        assert abs(out["no_answer_score"][b] - null) < 1e-4
        if not spans:  # no context: the null span, empty answer
            assert (out["start_position"][b], out["end_position"][b], out["answer"][b]) == (0, 0, "")
            assert abs(out["score"][b] - null) < 1e-4
            continue
        score, i, j = max(spans)
        assert (out["start_position"][b], out["end_position"][b]) == (i, j)
        assert abs(out["score"][b] - score) < 1e-4
        assert out["answer"][b] == " ".join(words[word_of_position[i]:word_of_position[j] + 1])
    assert got["ids"]["start_position"] == out["start_position"]


def test_pair_regression_takes_text_and_text_pair(pair_regression_dir, exports):
    host = HostTokenizer(os.path.join(pair_regression_dir, "vocab.txt"))
    texts, pairs = ["A man is playing a guitar.", "short", "long " * 30], ["A person plays music.", "x " * 40, "y"]
    encoded, truncated = host.encode(texts, pairs, max_seq_length=MAX_SEQ_LENGTH)
    assert truncated == 2
    features = _features(encoded["input_ids"], encoded["input_mask"], encoded["segment_ids"])
    expected = model_outputs(pair_regression_dir, features)
    got = run_fresh(exports["regression"], [
        {"name": "text", "signature": "serving_default", "inputs": {"text": texts, "text_pair": pairs}}])
    assert sorted(got["text"]) == ["score"]
    np.testing.assert_allclose(got["text"]["score"], expected["score"], atol=1e-5)


def test_graphs_use_only_long_standing_tf_text_ops(exports):
    for task in ("classification", "tagging", "squad", "regression"):
        assert custom_ops(exports[task]) <= SERVING_SAFE_OPS, task
