"""CoNLL reading and word-piece tagging features, on a hand-made vocab so every id is known."""
import numpy as np
import pytest

from bert_tf.data import records, tagging
from bert_tf.errors import UserError
from bert_tf.modeling.tasks import IGNORE_LABEL
from bert_tf.tokenization import HostTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "play", "##ing", ".", "dog"]
ID = {token: i for i, token in enumerate(VOCAB)}
CLS, SEP, PAD = ID["[CLS]"], ID["[SEP]"], ID["[PAD]"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return HostTokenizer(str(path), do_lower_case=True)


def write(tmp_path, text, name="data.conll"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_reads_tab_separated_with_docstart_and_blank_lines(tmp_path):
    path = write(tmp_path, "-DOCSTART-\tO\n\nThe\tDET\ncats\tNOUN\n\n\n.\t.\n")
    sentences = tagging.read_conll(path)
    assert [(s.words, s.tags, s.line) for s in sentences] == [(["The", "cats"], ["DET", "NOUN"], 3),
                                                              (["."], ["."], 7)]


def test_reads_conll2003_first_and_last_columns(tmp_path):
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
                           "Peter NNP B-NP B-PER\n")
    sentences = tagging.read_conll(path)
    assert [(s.words, s.tags) for s in sentences] == [(["EU", "rejects"], ["B-ORG", "O"]), (["Peter"], ["B-PER"])]


def test_wrong_field_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "The\tDET\ncats\tNOUN\textra\n")
    with pytest.raises(UserError, match=r"data\.conll line 2 has 3 fields but earlier lines have 2"):
        tagging.read_conll(path)
    one_column = write(tmp_path, "The\ncats\n", "words.conll")
    with pytest.raises(UserError, match=r"words\.conll line 1 has 1 fields"):
        tagging.read_conll(one_column)
    assert [s.tags for s in tagging.read_conll(one_column, require_tags=False)] == [None]


def test_first_piece_carries_the_label_others_are_ignored(tokenizer):
    labels = ["DET", "NOUN", "VERB", "."]
    sentence = tagging.Sentence(["The", "cats", "playing", "."], ["DET", "NOUN", "VERB", "."])
    [(features, kept)] = list(tagging.encode_sentences([sentence], tokenizer, 12, labels))
    assert kept == 4
    assert features["input_ids"].tolist() == [CLS, ID["the"], ID["cat"], ID["##s"], ID["play"], ID["##ing"],
                                              ID["."], SEP, PAD, PAD, PAD, PAD]
    assert features["input_mask"].tolist() == [1] * 8 + [0] * 4
    assert features["segment_ids"].tolist() == [0] * 12
    ignore = IGNORE_LABEL
    assert features["label_ids"].tolist() == [ignore, 0, 1, ignore, 2, ignore, 3, ignore, ignore, ignore, ignore,
                                              ignore]


def test_truncation_keeps_whole_words_and_unseen_tags_are_marked(tokenizer):
    labels = ["DET", "NOUN"]
    sentence = tagging.Sentence(["the", "cats", "dog", "the"], ["DET", "NOUN", "ADJ", "DET"])
    # Budget 6 - 2 = 4 pieces: "the", "cat ##s", "dog" fit; the last "the" is cut.
    [(features, kept)] = list(tagging.encode_sentences([sentence], tokenizer, 6, labels))
    assert kept == 3
    assert features["input_ids"].tolist() == [CLS, ID["the"], ID["cat"], ID["##s"], ID["dog"], SEP]
    assert features["label_ids"].tolist() == [IGNORE_LABEL, 0, 1, IGNORE_LABEL, tagging.UNKNOWN_TAG, IGNORE_LABEL]


def test_word_predictions_read_first_pieces_and_fill_truncated_words():
    label_ids = np.array([[IGNORE_LABEL, 0, 1, IGNORE_LABEL, 0, IGNORE_LABEL]])
    logits = np.zeros((1, 6, 3))
    logits[0, 1, 2] = logits[0, 2, 1] = logits[0, 3, 0] = logits[0, 4, 0] = 5.0
    tags = tagging.word_predictions(label_ids, logits, ["O", "B-X", "I-X"], [4], fallback="O")
    assert tags == [["I-X", "B-X", "O", "O"]]


def test_cached_records_convert_once_and_count(tmp_path, tokenizer):
    path = write(tmp_path, "The\tDET\ncats\tNOUN\n\ndog\tNOUN\ncats\tVERB\n")
    sentences = tagging.read_conll(path)
    cache = str(tmp_path / "cache")
    first, stats = tagging.cached_records(sentences, [path], cache, "train", tokenizer, 8, ["DET", "NOUN", "VERB"])
    mtime = (tmp_path / "cache" / first.split("/")[-1]).stat().st_mtime_ns
    second, again = tagging.cached_records(sentences, [path], cache, "train", tokenizer, 8, ["DET", "NOUN", "VERB"])
    assert second == first and again == stats
    assert (tmp_path / "cache" / first.split("/")[-1]).stat().st_mtime_ns == mtime
    assert stats == {"num_examples": 2, "truncated": 0, "truncated_words": 0, "unseen_labels": 0,
                     "unseen_label_values": []}
    assert records.count_records(first) == 2
    batch = next(iter(records.make_dataset(first, tagging.feature_spec(8), 2, is_training=False)))
    assert batch["label_ids"].numpy().tolist() == [[IGNORE_LABEL, 0, 1, IGNORE_LABEL] + [IGNORE_LABEL] * 4,
                                                   [IGNORE_LABEL, 1, 2, IGNORE_LABEL] + [IGNORE_LABEL] * 4]
