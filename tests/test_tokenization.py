import pytest
import tensorflow as tf

from bert_tf import tokenization
from bert_tf.errors import UserError


@pytest.mark.parametrize("a, b, budget, expected", [
    (3, 4, 10, (3, 4)),      # fits: nothing cut
    (20, 2, 10, (8, 2)),     # the long one gives way
    (2, 20, 10, (2, 8)),
    (20, 20, 10, (5, 5)),    # both long: even split
    (20, 20, 9, (5, 4)),     # odd budget: the first segment keeps the extra token
])
def test_truncation_rule_is_longest_first(a, b, budget, expected):
    assert tuple(int(x) for x in tokenization.truncated_lengths(a, b, budget)) == expected
    tensors = tokenization.truncated_lengths(tf.constant([a]), tf.constant([b]), tf.constant(budget))
    assert tuple(int(t.numpy()[0]) for t in tensors) == expected


def test_truncation_rule_cuts_the_longer_segment_first_on_every_small_pair():
    """The rule pretraining packs pairs with too: drop tokens from the longer segment, one at a time,
    from b when the two are equally long, until the pair fits."""
    for a in range(13):
        for b in range(13):
            for budget in range(1, 13):
                keep_a, keep_b = a, b
                while keep_a + keep_b > budget:
                    if keep_a > keep_b:
                        keep_a -= 1
                    else:
                        keep_b -= 1
                assert tuple(int(x) for x in tokenization.truncated_lengths(a, b, budget)) == (keep_a, keep_b)


def test_vocab_is_built_and_holds_the_special_tokens(vocab_file):
    vocab = tokenization.load_vocab(vocab_file)
    assert len(vocab) == 2000
    assert [vocab[t] for t in tokenization.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]


def test_host_encoding_packs_cls_sep_and_segments(vocab_file):
    tokenizer = tokenization.HostTokenizer(vocab_file)
    features, truncated = tokenizer.encode(["Anarchism is a political philosophy"], ["It is"], max_seq_length=16)
    ids = features["input_ids"][0]
    length = int(features["input_mask"][0].sum())
    assert ids[0] == tokenizer.cls_id and ids[length - 1] == tokenizer.sep_id
    pieces = tokenizer.convert_ids_to_tokens(ids[:length])
    assert pieces[1:5] == ["anarchism", "is", "a", "political"]
    first_sep = pieces.index("[SEP]")
    assert features["segment_ids"][0][:first_sep + 1].sum() == 0
    assert features["segment_ids"][0][first_sep + 1:length].tolist() == [1] * (length - first_sep - 1)
    assert truncated == 0 and ids[length:].tolist() == [0] * (16 - length)


def test_bad_vocabs_are_refused(tmp_path):
    duplicate = tmp_path / "dup.txt"
    duplicate.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nthe\n")
    with pytest.raises(UserError, match="lists 'the' twice \\(lines 6 and 7\\)"):
        tokenization.load_vocab(str(duplicate))
    no_mask = tmp_path / "nomask.txt"
    no_mask.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    with pytest.raises(UserError, match="lacks \\[MASK\\]"):
        tokenization.load_vocab(str(no_mask))
    with pytest.raises(UserError, match="does not exist"):
        tokenization.load_vocab(str(tmp_path / "missing.txt"))


def test_build_vocab_gives_one_file_per_corpus(tmp_path):
    """The trainer numbers tokens of equal count in hash order; the written file must not vary."""
    import os

    corpus = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "corpus", "wiki.txt")
    written = []
    for run in range(3):
        path = tmp_path / f"vocab{run}.txt"
        tokenization.build_vocab([corpus], str(path), vocab_size=600)
        written.append(path.read_text(encoding="utf-8"))
    assert written[0] == written[1] == written[2]
    tokens = written[0].split("\n")[:-1]
    assert tokens[:5] == list(tokenization.SPECIAL_TOKENS) and len(tokens) == len(set(tokens))
