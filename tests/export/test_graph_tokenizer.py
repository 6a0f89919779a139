"""The serving graph's tokenizer must give the ids training gave (HostTokenizer), on hard text."""
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.export.graph_tokenizer import GraphTokenizer
from bert_tf.tokenization import HostTokenizer

TRICKY = [
    "Héllo, wörld! Ça va?", "naïve café résumé", "東京は日本の首都です。", "don't stop-believing...",
    "ＡＢＣ ｆｕｌｌ-width", "ﬁnance ligature", "Straße groß", "İstanbul DAĞI", "ΣΟΦΙΑΣ σοφίας",
    "zero\u200dwidth soft\u00adhyphen", "tab\there\nnew\rline", "nbsp\u00a0here\u3000ideographic",
    "x" * 100, "y" * 101, "é" * 60, "supercalifragilisticexpialidocious" * 2, "emoji 😀 ok", "\x00nul\ufffd",
    "Ⅷ ① ㎏", "v\x0bt\x0cf\x85n", "hangul 한국어", "", "   ", "[MASK] [SEP] [CLS] [unused1]",
    "e\u0301 combining", "$100.00 & 50% (approx.) #tag @user", "“quotes” — dashes … ellipsis",
]


@pytest.fixture(scope="module")
def minilm_vocab(minilm_dir):
    return f"{minilm_dir}/vocab.txt"


@pytest.mark.parametrize("lower", [True, False])
def test_word_pieces_equal_host_ids(minilm_vocab, lower):
    host = HostTokenizer(minilm_vocab, do_lower_case=lower)
    graph = GraphTokenizer(minilm_vocab, do_lower_case=lower, max_seq_length=128)
    got = graph.word_pieces(tf.constant(TRICKY)).to_list()
    for text, expected, actual in zip(TRICKY, host.tokenize_ids(TRICKY), got):
        assert actual == expected, (text, host.convert_ids_to_tokens(expected), host.convert_ids_to_tokens(actual))


def test_long_words_become_unk_by_characters_not_bytes(minilm_vocab):
    host = HostTokenizer(minilm_vocab)
    graph = GraphTokenizer(minilm_vocab, max_seq_length=16)
    ids = graph.word_pieces(tf.constant(["é" * 60, "x" * 101])).to_list()
    assert ids[0] != [host.unk_id] and ids[1] == [host.unk_id]


def test_literal_special_tokens_are_text(minilm_vocab):
    host = HostTokenizer(minilm_vocab)
    assert host.convert_ids_to_tokens(host.tokenize_ids(["[SEP]"])[0]) == ["[", "sep", "]"]


def test_encoded_pairs_equal_host_including_truncation(minilm_vocab):
    host = HostTokenizer(minilm_vocab)
    graph = GraphTokenizer(minilm_vocab, max_seq_length=24)
    texts = TRICKY
    pairs = list(reversed(TRICKY))
    for second in (None, pairs):
        expected, truncated = host.encode(texts, second, max_seq_length=24)
        got = graph(tf.constant(texts), None if second is None else tf.constant(second))
        np.testing.assert_array_equal(got["input_ids"].numpy(), expected["input_ids"])
        np.testing.assert_array_equal(got["token_type_ids"].numpy(), expected["segment_ids"])
        np.testing.assert_array_equal(got["attention_mask"].numpy(), expected["input_mask"])
        assert truncated > 0  # the long rows really were cut


def test_pieces_by_word_match_pretokenized_host_words(minilm_vocab):
    sentences = ["EU rejects German call to boycott British lamb .", "U.S. Treasury's bonds fell 1.5%",
                 "Müller's naïve café", "東京 tower", "a \u200d b"]
    host = HostTokenizer(minilm_vocab)
    words, pieces = GraphTokenizer(minilm_vocab).pieces_by_word(tf.constant(sentences))
    assert [[w.decode() for w in row] for row in words.to_list()] == [s.split(" ") for s in sentences]
    for sentence, (ids, starts, _), row in zip(sentences, host.tokenize_words([s.split(" ") for s in sentences]),
                                               pieces.to_list()):
        if sentence == "a \u200d b":  # a word that normalises to nothing keeps one [UNK], as the tagger trains
            assert row == [ids[:1], [host.unk_id], ids[1:]]
            continue
        assert [i for word in row for i in word] == list(ids), sentence
        assert np.cumsum([0] + [len(w) for w in row[:-1]]).tolist() == starts, sentence
