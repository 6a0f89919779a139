"""Corpus tokenization: the batched fast path gives exactly HostTokenizer's ids."""
import glob
import os

import bert_tf  # noqa: F401
import pytest

from bert_tf import tokenization
from bert_tf.data import pretraining_corpus
from bert_tf.tokenization import HostTokenizer

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")
SHIPPED_CORPORA = sorted(glob.glob(os.path.join(DATA, "corpus", "*.txt"))) + [os.path.join(DATA, "zh",
                                                                                            "corpus_segmented.txt")]


@pytest.mark.parametrize("lower", [True, False])
def test_line_tokenizer_equals_host_tokenizer(corpus_file, vocab_file, lower):
    host = HostTokenizer(vocab_file, do_lower_case=lower)
    lines = [line.strip() for line in open(corpus_file, encoding="utf-8") if line.strip()]
    lines += ["Plain ASCII: punctuation!?, (brackets) {braces} 3.14 e.g. x-y_z a/b 'q' \"dq\" #hash $5 ~tilde",
              "a" * 99 + " " + "b" * 101 + " supercalifragilisticexpialidocious",
              "Literal [MASK] and [SEP] tokens", "tab\tseparated\tline", "Café Ærøskøbing naïve", "中文字 mixed",
              "control\x07char", "emoji 🙂 end", "", "   ", "UPPER lower MiXeD", "dots... and -- dashes"]
    flat, lengths = pretraining_corpus.LineTokenizer(host)(lines)
    expected = host.tokenize_ids(lines)
    assert lengths.tolist() == [len(ids) for ids in expected]
    assert flat.tolist() == [i for ids in expected for i in ids]
    # Most lines of the corpus take the fast path: the comparison above covers it.
    plain = sum(pretraining_corpus.LineTokenizer._PLAIN.match(line) is not None for line in lines)
    assert plain > 0.8 * len(lines)


@pytest.mark.parametrize("corpus", SHIPPED_CORPORA, ids=os.path.basename)
def test_line_tokenizer_equals_host_tokenizer_on_the_shipped_corpora(corpus, tmp_path):
    vocab = str(tmp_path / "vocab.txt")
    tokenization.build_vocab([corpus], vocab, vocab_size=3000)
    lines = [line.strip() for line in open(corpus, encoding="utf-8") if line.strip()]
    for lower in (True, False):
        host = HostTokenizer(vocab, do_lower_case=lower)
        line_tokenizer = pretraining_corpus.LineTokenizer(host)
        # In two chunks, as read_corpus calls it: the second reuses the words the first learned.
        halves = [line_tokenizer(lines[:len(lines) // 2]), line_tokenizer(lines[len(lines) // 2:])]
        expected = host.tokenize_ids(lines)
        assert [n for _, lengths in halves for n in lengths.tolist()] == [len(ids) for ids in expected]
        assert [i for flat, _ in halves for i in flat.tolist()] == [i for ids in expected for i in ids]


def test_line_tokenizer_on_chunks_without_words(vocab_file):
    flat, lengths = pretraining_corpus.LineTokenizer(HostTokenizer(vocab_file))(["", "", "word", "", "two words"])
    host = HostTokenizer(vocab_file)
    assert lengths.tolist() == [0, 0] + [len(ids) for ids in host.tokenize_ids(["word"])] + [0] + [
        len(host.tokenize_ids(["two words"])[0])]
    assert pretraining_corpus.LineTokenizer(host)(["", " "])[1].tolist() == [0, 0]
