from benchmarks.data_head import first_examples


def test_first_rows_of_a_tsv_keep_the_header(tmp_path):
    source = tmp_path / "train.tsv"
    source.write_text("label\tsentence\n1\ta\n0\tb\n1\tc\n")
    target = first_examples(str(source), 2, str(tmp_path / "head.tsv"))
    assert open(target).read() == "label\tsentence\n1\ta\n0\tb\n"


def test_first_sentences_of_a_conll_file(tmp_path):
    source = tmp_path / "train.conll"
    source.write_text("a\tX\nb\tY\n\nc\tX\n\n\nd\tY\n")
    target = first_examples(str(source), 2, str(tmp_path / "head.conll"))
    assert open(target).read() == "a\tX\nb\tY\n\nc\tX\n"
