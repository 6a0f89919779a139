"""Pretraining records: schema, masking and NSP statistics, determinism, bad input."""
import os
import subprocess
import sys

import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import pretraining, pretraining_records, records
from bert_tf.data.pretraining_corpus import Corpus
from bert_tf.errors import UserError
from bert_tf.tokenization import HostTokenizer
from tests.data.pretraining_files import PRED, SEQ
from tests.data.pretraining_files import create as _create
from tests.data.pretraining_files import read as _read


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return HostTokenizer(vocab_file)


@pytest.fixture(scope="module")
def big_output(tmp_path_factory, corpus_file, vocab_file):
    """A few thousand instances of the sample corpus (25 duplication rounds)."""
    path, stats = _create(tmp_path_factory.mktemp("big"), corpus_file, vocab_file, dupe_factor=25)
    return _read(path), stats


def test_schema_is_google_research_bert(tmp_path, corpus_file, vocab_file, tokenizer):
    path, stats = _create(tmp_path, corpus_file, vocab_file)
    raw = next(iter(tf.data.TFRecordDataset(path))).numpy()
    example = tf.train.Example.FromString(raw)
    kinds = {name: (f.WhichOneof("kind"), len(getattr(f, f.WhichOneof("kind")).value))
             for name, f in example.features.feature.items()}
    assert kinds == {"input_ids": ("int64_list", SEQ), "input_mask": ("int64_list", SEQ),
                     "segment_ids": ("int64_list", SEQ), "masked_lm_positions": ("int64_list", PRED),
                     "masked_lm_ids": ("int64_list", PRED), "masked_lm_weights": ("float_list", PRED),
                     "next_sentence_labels": ("int64_list", 1)}
    data = _read(path)
    assert stats["instances"] == len(data["input_ids"]) == records.count_records(path)
    assert stats["documents"] == 5 and stats["skipped_non_utf8_lines"] == 0
    cls, sep, pad = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id
    for row in range(len(data["input_ids"])):
        ids, mask, segments = data["input_ids"][row], data["input_mask"][row], data["segment_ids"][row]
        length = int(mask.sum())
        assert (mask[:length] == 1).all() and (mask[length:] == 0).all()
        assert ids[0] == cls and ids[length - 1] == sep and (ids[length:] == pad).all()
        seps = np.flatnonzero(ids[:length] == sep)
        assert len(seps) == 2  # exactly [CLS] A [SEP] B [SEP]
        assert (segments[:seps[0] + 1] == 0).all() and (segments[seps[0] + 1:length] == 1).all()
        assert (segments[length:] == 0).all() and seps[0] >= 2 and seps[1] - seps[0] >= 2
        weights = data["masked_lm_weights"][row]
        count = int(weights.sum())
        positions = data["masked_lm_positions"][row]
        assert (weights[:count] == 1).all() and (weights[count:] == 0).all()
        assert (np.diff(positions[:count]) > 0).all() and (positions[count:] == 0).all()
        assert (data["masked_lm_ids"][row][count:] == 0).all()
        assert all(0 < p < length and p not in seps for p in positions[:count])
    # Our fast serializer parses to exactly the message the generic writer builds.
    parsed = {k: v[0] for k, v in _read(path).items()}
    assert records.to_example(parsed) == example


def test_masking_and_nsp_statistics(big_output, tokenizer):
    data, stats = big_output
    n = len(data["input_ids"])
    assert 2000 <= n <= 6000, n
    lengths = data["input_mask"].sum(1)
    expected = np.minimum(PRED, np.maximum(1, np.array([round(x * 0.15) for x in lengths])))
    np.testing.assert_array_equal(data["masked_lm_weights"].sum(1), expected)
    valid = data["masked_lm_weights"] > 0
    positions = data["masked_lm_positions"]
    shown = np.take_along_axis(data["input_ids"], positions, axis=1)[valid]
    original = data["masked_lm_ids"][valid]
    total = valid.sum()
    masked = np.mean(shown == tokenizer.mask_id)
    kept = np.mean((shown == original) & (shown != tokenizer.mask_id))
    assert abs(masked - 0.8) < 0.015, masked
    assert abs(kept - 0.1) < 0.012, kept
    assert abs(1 - masked - kept - 0.1) < 0.012
    assert total > 20000
    # Random replacements are uniform over the vocabulary: distinct ids as for uniform draws.
    replaced = shown[(shown != tokenizer.mask_id) & (shown != original)]
    size = tokenizer.vocab_size
    expected_distinct = size * (1 - (1 - 1 / size) ** len(replaced))
    assert abs(len(np.unique(replaced)) - expected_distinct) < 0.04 * expected_distinct
    # Next-sentence labels: 1 = random next. Half the multi-sentence chunks plus every
    # one-sentence chunk (long sentences at this short length) are random, so above one half;
    # test_nsp_balance_on_short_sentences checks the one half itself.
    random_share = data["next_sentence_labels"].mean()
    assert 0.5 < random_share < 0.68, random_share
    # Most sequences are filled (short targets come with short_seq_prob=0.1 only).
    assert np.mean(lengths >= SEQ - 8) > 0.8


def test_output_is_identical_for_any_worker_count(tmp_path, corpus_file, vocab_file):
    one, _ = _create(tmp_path, corpus_file, vocab_file, name="one", dupe_factor=3, num_workers=1,
                     num_output_shards=2)
    three, _ = _create(tmp_path, corpus_file, vocab_file, name="three", dupe_factor=3, num_workers=3,
                       num_output_shards=2)
    for suffix in ("-00000-of-00002", "-00001-of-00002"):
        with open(one + suffix, "rb") as a, open(three + suffix, "rb") as b:
            assert a.read() == b.read()
    other, _ = _create(tmp_path, corpus_file, vocab_file, name="other", dupe_factor=3, random_seed=8)
    assert not np.array_equal(_read(other)["input_ids"], _read(one + "*")["input_ids"])


def test_gzip_shards_hold_all_instances(tmp_path, corpus_file, vocab_file):
    path, stats = _create(tmp_path, corpus_file, vocab_file, num_output_shards=3, gzip=True)
    shards = sorted(tf.io.gfile.glob(path + "-*"))
    assert len(shards) == 3 and not os.path.exists(path)
    assert sum(records.count_records(s, "GZIP") for s in shards) == stats["instances"]
    data = records.make_dataset(shards, pretraining_records.feature_spec(SEQ, PRED), 4, False, compression="GZIP")
    batch = next(iter(data))
    assert batch["attention_mask"].dtype == tf.int32 and batch["masked_lm_weights"].shape == (4, PRED)


def test_whole_word_masking_masks_every_piece(tmp_path, corpus_file, vocab_file, tokenizer):
    path, _ = _create(tmp_path, corpus_file, vocab_file, do_whole_word_mask=True, dupe_factor=4)
    data = _read(path)
    continuation = pretraining.VocabInfo.from_tokenizer(tokenizer).continuation
    words_checked = 0
    for row in range(len(data["input_ids"])):
        count = int(data["masked_lm_weights"][row].sum())
        positions = data["masked_lm_positions"][row][:count]
        chosen = set(positions.tolist())
        assert count <= PRED
        # Reconstruct the original sequence, then its words.
        original = data["input_ids"][row].copy()
        original[positions] = data["masked_lm_ids"][row][:count]
        length = int(data["input_mask"][row].sum())
        word = []
        for position in range(1, length):
            token = original[position]
            if word and continuation[token] and original[position - 1] != tokenizer.sep_id:
                word.append(position)
                continue
            if len(word) > 1:
                inside = [p in chosen for p in word]
                assert all(inside) or not any(inside), (row, word)
                words_checked += any(inside)
            word = [position] if token not in (tokenizer.sep_id, tokenizer.cls_id) else []
    assert words_checked > 20


def test_bad_input_is_counted_or_rejected(tmp_path, vocab_file):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(b"First document has one sentence.\n\n\xff\xfe broken line\nSecond document, first line.\n"
                       b"  \n\n\nThird " + b"very " * 200 + b"long line.\nAnd a short one.\n")
    _, stats = _create(tmp_path, str(corpus), vocab_file)
    assert stats["skipped_non_utf8_lines"] == 1
    assert stats["first_non_utf8_line"].endswith("bad.txt:3")
    assert stats["documents"] == 3 and stats["single_sentence_documents"] == 2
    assert stats["sentences_longer_than_max_seq_length"] == 1
    assert stats["instances"] > 0
    single = tmp_path / "single.txt"
    single.write_text("Only one document.\nWith two lines.\n")
    with pytest.raises(UserError, match="at least two"):
        _create(tmp_path, str(single), vocab_file)
    with pytest.raises(UserError, match="max_predictions_per_seq"):
        _create(tmp_path, str(corpus), vocab_file, max_predictions_per_seq=0)
    with pytest.raises(UserError, match="matches no file"):
        _create(tmp_path, str(tmp_path / "missing*.txt"), vocab_file)


def _synthetic_instances(short_seq_prob):
    docs, sentences, length = 20, 150, 5
    rng = np.random.RandomState(0)
    corpus = Corpus(tokens=rng.randint(10, 100, docs * sentences * length).astype(np.int32),
                                sent_start=np.arange(docs * sentences + 1) * length,
                                doc_start=np.arange(docs + 1) * sentences, stats={})
    vocab = pretraining.VocabInfo(100, cls_id=2, sep_id=3, mask_id=4, pad_id=0, continuation=np.zeros(100, bool))
    settings = pretraining.Settings(max_seq_length=SEQ, max_predictions_per_seq=PRED, dupe_factor=10,
                                    short_seq_prob=short_seq_prob)
    labels, lengths = [], []
    for dupe, task, documents in pretraining.make_tasks(docs, settings):
        for raw in pretraining.run_task(corpus, settings, vocab, dupe, task, documents):
            example = tf.train.Example.FromString(raw)
            labels.append(example.features.feature["next_sentence_labels"].int64_list.value[0])
            lengths.append(sum(example.features.feature["input_mask"].int64_list.value))
    return np.array(labels), np.array(lengths)


def test_nsp_balance_and_short_targets_on_short_sentences():
    """With many short sentences every chunk has several, so random next is drawn with p = 1/2."""
    labels, lengths = _synthetic_instances(short_seq_prob=0.0)
    assert len(labels) > 3000
    assert abs(labels.mean() - 0.5) < 0.03, labels.mean()
    # Chunks fill to the target (61 tokens) and are cut back to at most 61 + 3 specials.
    assert lengths.max() == SEQ and np.mean(lengths >= SEQ - 5) > 0.9
    # Always-short targets, uniform in [2, 61] (once per document and round): much shorter
    # sequences, and the short ones are many (a document yields more of them).
    _, short = _synthetic_instances(short_seq_prob=1.0)
    assert short.mean() < 0.55 * lengths.mean() and short.min() == 5 + 5 + 3, short.mean()


def test_a_local_run_never_imports_tensorflow(tmp_path, corpus_file, vocab_file):
    """TensorFlow's import was half of a 100k-instance run: local files, uncompressed, need none of it."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools",
                          "create_pretraining_data.py")
    output = str(tmp_path / "out.tfrecord")
    result = subprocess.run([sys.executable, "-X", "importtime", script, f"--input_file={corpus_file}",
                             f"--vocab_file={vocab_file}", f"--output_file={output}", "--dupe_factor=2",
                             "--num_workers=1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "bert_tf.data.pretraining" in loaded
    assert not {"tensorflow", "tensorflow_text", "tf_keras"} & loaded
    assert len(_read(output)["input_ids"]) > 0
