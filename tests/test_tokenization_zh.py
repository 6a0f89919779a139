"""Chinese through the vocabulary and both tokenizers: serving (GraphTokenizer) must give training's ids.

The vocabularies are learned from the shipped Chinese data plus the edge-case table itself, so the
edge characters are real vocabulary entries: a comparison where both sides say [UNK] proves little.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from bert_tf import tokenization
from bert_tf.export.graph_tokenizer import GraphTokenizer
from bert_tf.tokenization import HostTokenizer
from tests.conftest import DATA

ZH = os.path.join(DATA, "zh")

EDGE_CASES = [
    "１２月３１日，中共中央总书记发表１９９８年新年讲话。",  # full-width digits and punctuation
    "，。！？、；：（）《》【】……——",
    "我在ＮＹ用iPhone12拍了３张照片，花了$199.99（约1,380元）。",  # mixed Chinese/Latin/digits
    "太好了😀👍🏻❤️！服务一流🎉",  # emoji, a skin-tone modifier, a variation selector
    "繁體中文與臺灣的簡體對照：書、國、門、龍",  # traditional characters
    "他说\"很好\"，又说“非常好”，书名是《围城》，「日本」『引用』＂全角＂＇单＇'ascii'",  # quotes
    "零\u200b宽\u200c字\u200d符\ufeff和\u2060连接",  # zero-width characters and BOM mid-text
    "控\x01制\x7f字\x85符\x1b[0m\t制表\r\n换行",  # control characters
    "ＡＢＣ ａｂｃ Ｃａｆé ＧＢ１８０３０ Ａ股",  # full-width Latin, cased and uncased
    "㐀𠀀𪜀〇々〆ー丨乂",  # CJK extensions A and B, iteration marks, rare radicals
    "中文abc123中文ABC",
    "Ⅻ①㈱㊣㎏℃",
    "ｑ\u3000ｗ\u00a0ｅ",  # ideographic and no-break spaces
    "\u2028行\u2029分隔",  # line and paragraph separators
    "日本語のテキストと한국어",
    "𝟘𝟙𝟚 ﬁ ㍻",  # compatibility characters NFD leaves alone
    "[MASK]和[SEP]是文字",
    "豈更車\U0002f800 ｶﾀｶﾅ 👨\u200d👩\u200d👧一家",  # compatibility ideographs (NFD maps them), half-width kana, ZWJ
    "ＡＢＣ１２３！＃＄％＆＋＝＠￥＾～｜",  # full-width symbols: punctuation splits, currency/math symbols do not
    "",
]


def _sentences():
    """About 3,000 real sentences: corpus lines (spaces removed, as users' text has none) and reviews."""
    with open(os.path.join(ZH, "corpus_segmented.txt"), encoding="utf-8") as f:
        corpus = [line.replace(" ", "") for line in f.read().split("\n") if line.strip()][:1500]
    with open(os.path.join(ZH, "sentiment_train.tsv"), encoding="utf-8") as f:
        reviews = [line.split("\t")[0] for line in f.read().split("\n")[1:] if line][:1500]
    return corpus + reviews


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def zh_vocab(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("zh_vocab")
    edge = folder / "edge.txt"
    edge.write_text("\n".join(EDGE_CASES * 2) + "\n", encoding="utf-8")
    path = str(folder / "vocab.txt")
    tokenization.build_vocab([os.path.join(ZH, "corpus_segmented.txt"), os.path.join(ZH, "sentiment_train.tsv"),
                              str(edge)], path, vocab_size=8000, do_lower_case=request.param)
    return path, request.param


def test_vocab_holds_single_ideographs_and_no_impossible_pieces(zh_vocab):
    path, _ = zh_vocab
    vocab = tokenization.load_vocab(path)
    ideographs = [t for t in vocab if tokenization._CJK_CHAR.search(t)]
    # Each ideograph is its own word (BERT's basic tokenizer): never part of a longer token, never "##".
    assert ideographs and all(len(t) == 1 for t in ideographs)
    # Far more than the tokenizers trainer's default alphabet of 1,000 characters.
    assert len(ideographs) > 2500
    assert {"中", "国", "臺", "灣", "𠀀", "㐀", "😀"} <= set(vocab)


def test_host_tokenizer_splits_ideographs_and_keeps_fullwidth_digit_runs(zh_vocab):
    path, lower = zh_vocab
    host = HostTokenizer(path, do_lower_case=lower)
    tokens = host.convert_ids_to_tokens(host.tokenize_ids(["１２月３１日，中共中央"])[0])
    assert tokens == ["１２", "月", "３１", "日", "，", "中", "共", "中", "央"]
    mixed = host.convert_ids_to_tokens(host.tokenize_ids(["中文ABC中文"])[0])
    assert mixed[:2] == ["中", "文"] and mixed[-2:] == ["中", "文"]
    assert "".join(t.lstrip("#") for t in mixed[2:-2]) == ("abc" if lower else "ABC")


def test_graph_ids_equal_host_ids_on_real_sentences_and_edge_cases(zh_vocab):
    path, lower = zh_vocab
    host = HostTokenizer(path, do_lower_case=lower)
    graph = GraphTokenizer(path, do_lower_case=lower, max_seq_length=128)
    texts = _sentences() + EDGE_CASES
    assert len(texts) > 3000
    expected = host.tokenize_ids(texts)
    actual = graph.word_pieces(tf.constant(texts)).to_list()
    differing = [(text, host.convert_ids_to_tokens(e), host.convert_ids_to_tokens(a))
                 for text, e, a in zip(texts, expected, actual) if e != a]
    assert not differing, differing[:3]
    # The edge cases really exercised the vocabulary: few of their pieces are [UNK].
    edge_ids = [i for ids in expected[-len(EDGE_CASES):] for i in ids]
    assert sum(i == host.unk_id for i in edge_ids) / len(edge_ids) < 0.1


def test_encoded_pairs_equal_host_with_truncation(zh_vocab):
    path, lower = zh_vocab
    host = HostTokenizer(path, do_lower_case=lower)
    graph = GraphTokenizer(path, do_lower_case=lower, max_seq_length=32)
    texts = _sentences()[1490:1530]  # corpus lines then reviews, many longer than 32 pieces
    pairs = list(reversed(texts))
    expected, truncated = host.encode(texts, pairs, max_seq_length=32)
    got = graph(tf.constant(texts), tf.constant(pairs))
    np.testing.assert_array_equal(got["input_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(got["token_type_ids"].numpy(), expected["segment_ids"])
    assert truncated > 10


def test_one_character_per_token_for_tagging(zh_vocab):
    path, lower = zh_vocab
    host = HostTokenizer(path, do_lower_case=lower)
    characters = list("新华社北京１２月３１日电")
    ids, starts, _ = host.tokenize_words([characters])[0]
    assert starts == list(range(len(characters))) and len(ids) == len(characters)
    words, pieces = GraphTokenizer(path, do_lower_case=lower).pieces_by_word(tf.constant([" ".join(characters)]))
    assert [i for word in pieces.to_list()[0] for i in word] == list(ids)
