"""The one text reader: GB18030/GBK detection and --encoding, BOMs, line endings, full-width separators."""
import codecs
import logging

import pytest

from bert_tf.data import classification, pretraining_corpus, squad, tagging, text_files
from bert_tf.errors import UserError

TSV = "sentence\tlabel\n宾馆服务非常好，环境也很好。\tpos\n交通很不方便，不推荐。\tneg\n"


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_gbk_file_is_refused_with_the_encoding_to_pass(tmp_path):
    path = _write(tmp_path, "train.tsv", TSV.encode("gbk"))
    with pytest.raises(UserError) as error:
        classification.read_examples(path)
    assert str(error.value) == (f"{path} line 2 is not UTF-8 (byte 0xb1); the file reads as GB18030/GBK Chinese: "
                                "pass --encoding=gb18030 (or re-save the file as UTF-8)")


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "GB2312"])
def test_gbk_file_reads_with_encoding(tmp_path, encoding):
    path = _write(tmp_path, "train.tsv", TSV.encode("gb2312"))
    examples, skipped = classification.read_examples(path, encoding=encoding)
    assert [(e.text, e.label, e.line) for e in examples] == [
        ("宾馆服务非常好，环境也很好。", "pos", 2), ("交通很不方便，不推荐。", "neg", 3)]
    assert skipped == 0


def test_unknown_encoding_and_wrong_encoding_name_the_fix(tmp_path):
    path = _write(tmp_path, "train.tsv", TSV.encode("utf-8"))
    with pytest.raises(UserError, match=r"^--encoding=gb-what is not an encoding Python knows: use e\.g\. utf-8, "):
        classification.read_examples(path, encoding="gb-what")
    with pytest.raises(UserError, match=r"line 2 is not ascii \(byte 0xe5\): pass the file's real --encoding"):
        classification.read_examples(path, encoding="ascii")


def test_latin1_is_not_mistaken_for_chinese(tmp_path):
    path = _write(tmp_path, "train.tsv", "sentence\tlabel\ncafé crème\t1\n".encode("latin-1"))
    with pytest.raises(UserError) as error:
        classification.read_examples(path)
    assert str(error.value) == (f"{path} line 2 is not UTF-8 (byte 0xe9): re-save the file as UTF-8, or pass "
                                "--encoding=<its encoding> (e.g. latin-1, big5)")


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                        (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_byte_order_marks_are_dropped(tmp_path, bom, codec):
    path = _write(tmp_path, "train.tsv", bom + TSV.encode(codec))
    examples, _ = classification.read_examples(path)
    assert [e.label for e in examples] == ["pos", "neg"]  # the header's first column is "sentence", not "\ufeffsentence"


def test_crlf_reads_silently_and_mixed_endings_are_reported_with_line_numbers(tmp_path, caplog):
    crlf = _write(tmp_path, "crlf.tsv", TSV.replace("\n", "\r\n").encode())
    with caplog.at_level(logging.WARNING):
        assert [e.text for e in classification.read_examples(crlf)[0]][1] == "交通很不方便，不推荐。"
    assert not caplog.records
    mixed = _write(tmp_path, "mixed.tsv", b"sentence\tlabel\r\n" + "好\tpos\n差\tneg\r\n不错\tpos\r\n".encode())
    with caplog.at_level(logging.WARNING):
        examples, _ = classification.read_examples(mixed)
    assert [(e.text, e.label) for e in examples] == [("好", "pos"), ("差", "neg"), ("不错", "pos")]
    assert [r.getMessage() for r in caplog.records] == [
        f"{mixed} mixes CRLF and LF line endings: 1 line(s) end in LF (line(s) 2); read as the same lines, but "
        "check the file was not pasted together"]


def test_bare_carriage_return_is_an_error_naming_lines(tmp_path):
    path = _write(tmp_path, "train.tsv", "sentence\tlabel\n好\tpos\r差\tneg\n".encode())
    with pytest.raises(UserError, match=r"train\.tsv has a carriage return \(\\r\) inside line\(s\) 2: convert"):
        classification.read_examples(path)


def test_lines_end_only_at_newline_not_at_unicode_separators(tmp_path):
    # str.splitlines would cut this row in two at U+2028 and U+0085.
    path = _write(tmp_path, "train.tsv", "sentence\tlabel\n上\u2028下\x85文\tpos\n".encode())
    examples, _ = classification.read_examples(path)
    assert [(e.text, e.label) for e in examples] == [("上\u2028下\x85文", "pos")]


def test_full_width_space_separators_are_reported_with_line_numbers(tmp_path):
    rows = "sentence\tlabel\n好\tpos\n差\u3000neg\n不错\tpos\n很差\u3000neg\n"
    path = _write(tmp_path, "train.tsv", rows.encode())
    with pytest.raises(UserError) as error:
        classification.read_examples(path)
    assert str(error.value) == (f"{path} line(s) 3, 5 separate columns with U+3000 Ideographic Space, not a tab: "
                                "replace it with a tab")
    header = _write(tmp_path, "header.tsv", "sentence\u3000label\n好\u3000pos\n".encode())
    with pytest.raises(UserError, match=r"line\(s\) 1 separate columns with U\+3000"):
        classification.read_examples(header)


def test_full_width_space_inside_a_text_is_text(tmp_path):
    path = _write(tmp_path, "train.tsv", "sentence\tlabel\n宾馆\u3000很好\tpos\n".encode())
    assert classification.read_examples(path)[0][0].text == "宾馆\u3000很好"


def test_conll_full_width_separator_and_gbk(tmp_path):
    good = "新\tB-ORG\n华\tI-ORG\n社\tI-ORG\n\n北\tB-LOC\n京\tI-LOC\n"
    path = _write(tmp_path, "ner.conll", good.replace("华\t", "华\u3000").encode())
    with pytest.raises(UserError) as error:
        tagging.read_conll(path)
    assert str(error.value) == (f"{path} line(s) 2 separate columns with U+3000 Ideographic Space, not a tab: "
                                "replace it with a tab")
    gbk = _write(tmp_path, "gbk.conll", good.encode("gbk"))
    with pytest.raises(UserError, match=r"line 1 is not UTF-8 \(byte 0xd0\); the file reads as GB18030/GBK"):
        tagging.read_conll(gbk)
    sentences = tagging.read_conll(gbk, encoding="gb18030")
    assert [(s.words, s.tags) for s in sentences] == [(["新", "华", "社"], ["B-ORG", "I-ORG", "I-ORG"]),
                                                      (["北", "京"], ["B-LOC", "I-LOC"])]


def test_squad_json_in_gb18030_with_bom_and_encoding(tmp_path):
    text = '{"data": [{"paragraphs": [{"context": "北京是中国的首都。", "qas": [{"id": "q1", "question": ' \
           '"中国的首都是哪里？", "answers": [{"text": "北京", "answer_start": 0}]}]}]}]}'
    path = _write(tmp_path, "squad.json", text.encode("gb18030"))
    with pytest.raises(UserError, match=r"pass --encoding=gb18030"):
        squad.read_squad(path, is_training=True)
    examples, _ = squad.read_squad(path, is_training=True, encoding="gb18030")
    assert (examples[0].answer_text, examples[0].answer_start) == ("北京", 0)
    bom = _write(tmp_path, "bom.json", codecs.BOM_UTF8 + text.encode())
    assert squad.read_squad(bom, is_training=True)[0][0].question == "中国的首都是哪里？"


def test_corpus_in_gbk_stops_naming_the_encoding_and_reads_with_it(tmp_path):
    corpus = "中国人民银行发布公告。\n今天天气很好。\n\n北京欢迎你。\n上海也欢迎你。\n"
    path = _write(tmp_path, "corpus.txt", codecs.BOM_UTF8 + corpus.encode("utf-8"))
    stats = {"skipped_non_utf8_lines": 0}
    assert list(pretraining_corpus._lines(path, stats)) == corpus.rstrip("\n").split("\n")
    gbk = _write(tmp_path, "gbk.txt", corpus.encode("gbk"))
    with pytest.raises(UserError, match=r"gbk\.txt line 1 is not UTF-8 \(byte 0xd6\); the file reads as GB18030"):
        list(pretraining_corpus._lines(gbk, stats))
    assert list(pretraining_corpus._lines(gbk, stats, encoding="gbk")) == corpus.rstrip("\n").split("\n")


def test_helpers_directly():
    assert text_files.check_encoding("GBK") == "gbk" and text_files.check_encoding(None) is None
    assert text_files.looks_gb18030("中文".encode("gbk")) and not text_files.looks_gb18030("café".encode("latin-1"))
    assert text_files.tab_like_lines(["a\tb", "c\u3000d", "e f", "g\u00a0h"]) == [(2, "\u3000"), (4, "\u00a0")]
