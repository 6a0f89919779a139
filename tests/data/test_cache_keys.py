"""Conversion cache keys cannot go stale: every setting the conversion reads is in the key.

Changing any one of them (which column holds the text or label, the pair column, the label list,
the tfds name, the tokenizer's vocab or casing, the lengths, regression, how many examples) must
give a new cache file; the same settings must find the old one.
"""
import os

import bert_tf  # noqa: F401
import pytest

from bert_tf.data import classification, records, squad, tagging
from bert_tf.jobs import classifier
from bert_tf.tasks.classification import ClassificationTask
from bert_tf.tokenization import HostTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "plot", "fine"]
TSV = "sentence\tother\tlabel\tmood\na good film\tbad plot\t1\tx\na bad plot\tfine film\t0\ty\n"


@pytest.fixture
def setup(tmp_path, flag_values):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    other_vocab = tmp_path / "vocab2.txt"
    other_vocab.write_text("\n".join(VOCAB + ["extra"]) + "\n")
    data = tmp_path / "train.tsv"
    data.write_text(TSV)
    return tmp_path, str(vocab), str(other_vocab), str(data)


def test_every_classification_setting_changes_the_key(setup, flag_values):
    root, vocab, other_vocab, data = setup
    cache = str(root / "cache")

    def key(*argv, vocab_file=vocab, lower=True, max_seq_length=16, labels=None, regression=False, limit=None):
        flags = flag_values(classifier.define_flags, [f"--train_file={data}", f"--output_dir={root}", *argv])
        task = ClassificationTask(flags)
        split = task.read("train")
        examples, sources = split.examples, split.sources
        examples = examples[:limit] if limit else examples
        path, _ = classification.cached_records(
            examples, sources, cache, "train", HostTokenizer(vocab_file, do_lower_case=lower), max_seq_length,
            labels or classification.label_list_from(examples), regression, source=task.source_settings())
        return os.path.basename(path)

    base = key()
    variants = {
        "text_column": key("--text_column=other"),
        "text_pair_column": key("--text_pair_column=other"),
        "label_column": key("--label_column=mood"),
        "labels": key(labels=["1", "0"]),
        "vocab": key(vocab_file=other_vocab),
        "lower_case": key(lower=False),
        "max_seq_length": key(max_seq_length=32),
        "regression": key(regression=True),
        "max_train_examples": key(limit=1),
    }
    assert key() == base  # the same settings find the same file
    assert base not in variants.values(), [n for n, v in variants.items() if v == base]
    assert len(set(variants.values())) == len(variants)
    assert len(os.listdir(cache)) == 2 * (len(variants) + 1)  # records + stats per key


def test_tfds_source_is_in_the_key(setup):
    """tfds splits have no file to hash: their name (and, through the examples, their content) is the key."""
    root, vocab, _, _ = setup
    tokenizer = HostTokenizer(vocab)
    examples = [classification.Example("a good film", None, "1", 0), classification.Example("a bad plot", None, "0", 1)]

    def key(source):
        return os.path.basename(classification.cached_records(examples, [], str(root / "c"), "dev", tokenizer, 16,
                                                              ["0", "1"], False, source=source)[0])

    assert key({"tfds_name": "glue/sst2"}) != key({"tfds_name": "imdb_reviews"})
    assert key({"tfds_name": "glue/sst2", "tfds_data_dir": "/data/a"}) != key({"tfds_name": "glue/sst2"})


def test_items_and_tokenizer_are_in_every_key(setup):
    """records.cached_conversion is the one place keys are made: tagging and SQuAD get the same cover."""
    root, vocab, other_vocab, _ = setup
    sentence = [tagging.Sentence(["a", "film"], ["DET", "NOUN"])]
    relabelled = [tagging.Sentence(["a", "film"], ["DET", "VERB"])]

    def tag_key(sentences, vocab_file=vocab, lower=True, labels=("DET", "NOUN", "VERB"), length=8):
        return os.path.basename(tagging.cached_records(sentences, [], str(root / "t"), "train",
                                                       HostTokenizer(vocab_file, do_lower_case=lower), length,
                                                       list(labels))[0])

    keys = [tag_key(sentence), tag_key(relabelled), tag_key(sentence, vocab_file=other_vocab),
            tag_key(sentence, lower=False), tag_key(sentence, labels=("NOUN", "DET", "VERB")), tag_key(sentence, length=9)]
    assert len(set(keys)) == len(keys)

    def squad_key(vocab_file=vocab, **settings):
        window_settings = dict({"max_seq_length": 32, "doc_stride": 8, "max_query_length": 8, "training": True},
                               **settings)
        return os.path.basename(squad.cached_records([], {}, [], str(root / "s"), "train", HostTokenizer(vocab_file),
                                                     window_settings)[0])

    keys = [squad_key(), squad_key(vocab_file=other_vocab), squad_key(doc_stride=16), squad_key(max_query_length=4)]
    assert len(set(keys)) == len(keys)
    assert records.tokenizer_key(HostTokenizer(vocab)) != records.tokenizer_key(HostTokenizer(vocab, do_lower_case=False))
