"""Corpus tokenization: the batched fast path gives exactly HostTokenizer's ids."""
import bert_tf  # noqa: F401
import pytest

from bert_tf.data import pretraining_corpus
from bert_tf.tokenization import HostTokenizer


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
