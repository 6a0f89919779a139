import pytest

from bert_tf.data import classification as data
from bert_tf.data import records
from bert_tf.errors import UserError
from bert_tf.tokenization import HostTokenizer


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_tsv_with_bom_crlf_and_quotes_reads_as_text(tmp_path):
    path = write(tmp_path, "train.tsv", b'\xef\xbb\xbfsentence\tlabel\r\nhe said "hi\tpos \r\n\t neg\r\nok .\tneg\r\n')
    examples, skipped = data.read_examples(path)
    assert [(e.text, e.label, e.line) for e in examples] == [('he said "hi', "pos", 2), ("ok .", "neg", 4)]
    assert skipped == 1  # the row with an empty text


def test_csv_and_jsonl_with_pairs(tmp_path):
    csv_path = write(tmp_path, "d.csv", 'premise,hypothesis,label\n"a, b",c,1\nd,"e ""f""",0\n')
    examples, _ = data.read_examples(csv_path, "premise", "hypothesis")
    assert [(e.text, e.text_pair, e.label) for e in examples] == [("a, b", "c", "1"), ("d", 'e "f"', "0")]
    jsonl = write(tmp_path, "d.jsonl", '{"sentence": "x", "label": 2}\n\n{"sentence": "y", "label": 10}\n')
    examples, _ = data.read_examples(jsonl)
    assert data.label_list_from(examples) == ["2", "10"]  # numeric labels sort as numbers


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("sentence\tlabel\n", "has a header but no rows"),
    ("sentence\tsentence\tlabel\nx\ty\t1\n", r"repeats column\(s\) \['sentence'\]"),
    ("text\tlabel\nx\t1\n", "has no column 'sentence' \\(columns: \\['text', 'label'\\]\\)"),
    ("sentence\tlabel\nx\t1\ty\n", "line 2 has 3 fields but the header has 2"),
    ("sentence\tlabel\nx\t\n", "line 2 has an empty 'label'"),
    (b"sentence\tlabel\nok\t1\ncaf\xe9\t0\n", "line 3 is not UTF-8 \\(byte 0xe9\\)"),
])
def test_malformed_files_name_the_problem(tmp_path, content, message):
    path = write(tmp_path, "bad.tsv", content)
    with pytest.raises(UserError, match=message):
        data.read_examples(path)


def test_records_hold_ids_and_label_ids_and_count_unseen(tmp_path, vocab_file):
    tokenizer = HostTokenizer(vocab_file)
    examples = [data.Example("anarchism is", label="a"), data.Example("alabama", label="b"),
                data.Example("autism", label="zzz")]
    out = str(tmp_path / "r.tfrecord")
    stats = data.convert_to_records(examples, tokenizer, 8, out, label_list=["a", "b"])
    assert stats["unseen_labels"] == 1 and stats["unseen_label_values"] == ["zzz"]
    dataset = records.make_dataset(out, data.feature_spec(8), batch_size=3, is_training=False)
    batch = next(iter(dataset))
    assert batch["label_ids"].numpy().ravel().tolist() == [0, 1, -1]
    many = [data.Example("autism", label=f"x{i % 25}") for i in range(50)]
    stats = data.convert_to_records(many, tokenizer, 8, str(tmp_path / "many.tfrecord"), label_list=["a"])
    assert stats["unseen_labels"] == 50
    assert stats["unseen_label_values"] == [f"x{i}" for i in range(data.MAX_UNSEEN_LABELS_SHOWN)]
    expected, _ = tokenizer.encode([e.text for e in examples], None, 8)
    assert batch["input_ids"].numpy().tolist() == expected["input_ids"].tolist()
    assert batch["attention_mask"].dtype.name == "int32"


def test_cache_is_reused_only_for_identical_content_and_settings(tmp_path, vocab_file):
    tokenizer = HostTokenizer(vocab_file)
    source = write(tmp_path, "t.tsv", "sentence\tlabel\nx\t1\ny\t0\n")
    examples, _ = data.read_examples(source)
    cache = str(tmp_path / "cache")
    first, _ = data.cached_records(examples, [source], cache, "train", tokenizer, 16, ["0", "1"], False)
    again, _ = data.cached_records(examples, [source], cache, "train", tokenizer, 16, ["0", "1"], False)
    other_length, _ = data.cached_records(examples, [source], cache, "train", tokenizer, 32, ["0", "1"], False)
    write(tmp_path, "t.tsv", "sentence\tlabel\nx\t1\nz\t0\n")
    changed, _ = data.cached_records(examples, [source], cache, "train", tokenizer, 16, ["0", "1"], False)
    assert first == again and len({first, other_length, changed}) == 3
