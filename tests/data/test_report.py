"""The data report on small hand-made files whose counts, lengths and overlaps are known."""
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from bert_tf.data import report
from bert_tf.jobs import classifier, tagger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Every word is one piece except "films" (film ##s) and "unwatchable" ([UNK]).
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "##s", "very", "dull", "plot",
         "anne", "lives", "in", "berlin", "paris"]
TRAIN = ["sentence\tlabel",
         "a good film\tpos",              # 3 pieces + 2 = 5
         "a bad film\tneg",               # 5
         "good films\tpos",               # good film ##s: 5
         "a good film\tpos",              # duplicate of row 1, same label
         "a  good film\tneg",             # the same text again (whitespace collapsed), other label: conflicting
         "\tpos",                         # empty text: dropped by the reader
         "very very very very very very very dull plot\tpos",  # 9 + 2 = 11
         "good\tpos"]                     # 3
TEST = ["sentence\tlabel",
        "a good film\tpos",               # also in train
        "unwatchable\tneg",               # [UNK]: 3
        "dull plot\tneg"]                 # 4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (root / "train.tsv").write_text("\n".join(TRAIN) + "\n")
    (root / "test.tsv").write_text("\n".join(TEST) + "\n")
    return root


def _flags(define, argv):
    fv = flags.FlagValues()
    define(fv)
    fv(["test"] + argv)
    return fv


def test_counts_lengths_duplicates_overlap_and_warnings(files):
    from bert_tf.tokenization import HostTokenizer

    fv = _flags(classifier.define_flags, [f"--train_file={files / 'train.tsv'}", f"--test_file={files / 'test.tsv'}"])
    result, lengths = report.build_report(report.read_splits(fv, "classification"),
                                          HostTokenizer(str(files / "vocab.txt")), 8, "classification")
    train, test = result["splits"]["train"], result["splits"]["test"]
    assert lengths["train"].tolist() == [5, 5, 5, 5, 5, 11, 3]
    assert lengths["test"].tolist() == [5, 3, 4]
    assert (train["rows"], train["empty_rows"], train["unlabelled_rows"]) == (7, 1, 0)
    assert train["label_counts"] == {"neg": 2, "pos": 5}
    assert (train["duplicate_rows"], train["conflicting_duplicates"]) == (2, 1)
    assert train["length_pieces"] == {"min": 3, "mean": 5.57, "p50": 5.0, "p90": 7.4, "p95": 9.2, "p99": 10.64,
                                      "max": 11}
    assert (train["truncated_rows"], train["truncated_share"]) == (1, 0.1429)
    assert (test["rows"], test["label_counts"], test["truncated_rows"], test["duplicate_rows"]) == \
        (3, {"neg": 2, "pos": 1}, 0, 0)
    assert result["overlap_with_train"] == {"test": {"rows": 1, "share": 0.3333}}
    assert result["warnings"] == [
        "1 of 3 test rows (33.3%) also occur in train: test scores will be optimistic",
        "14.3% of train rows are longer than --max_seq_length=8 word pieces (p99 11) and get cut"]
    # A longer --max_seq_length truncates nothing and says nothing about it; 5:2 is no heavy imbalance.
    result, _ = report.build_report(report.read_splits(fv, "classification"),
                                    HostTokenizer(str(files / "vocab.txt")), 11, "classification")
    assert result["splits"]["train"]["truncated_rows"] == 0 and len(result["warnings"]) == 1


def test_tagging_counts_words_and_warns_on_imbalance_without_o(files, tmp_path):
    from bert_tf.tokenization import HostTokenizer

    conll = tmp_path / "train.conll"
    sentences = [[("anne", "B-PER"), ("lives", "O"), ("in", "O"), ("berlin", "B-LOC")]] * 10 + \
        [[("paris", "B-PER")]]
    conll.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n")
    fv = _flags(tagger.define_flags, [f"--train_file={conll}"])
    result, lengths = report.build_report(report.read_splits(fv, "tagging"), HostTokenizer(str(files / "vocab.txt")),
                                          16, "tagging")
    train = result["splits"]["train"]
    assert (result["label_unit"], train["rows"], train["duplicate_rows"]) == ("words", 11, 9)
    assert train["label_counts"] == {"B-LOC": 10, "B-PER": 11, "O": 20}
    assert lengths["train"].tolist() == [6] * 10 + [3]
    assert result["warnings"] == []  # O is 2x B-PER, but O never counts; B-PER:B-LOC is 1.1x


def test_job_hook_writes_json_and_png_and_the_tool_prints(files, tmp_path):
    out = tmp_path / "out"
    os.makedirs(out)
    fv = _flags(classifier.define_flags, [f"--train_file={files / 'train.tsv'}", f"--dev_file={files / 'test.tsv'}",
                                          f"--output_dir={out}", "--max_seq_length=8"])
    from bert_tf.tokenization import HostTokenizer

    written = report.report_job_data(fv, HostTokenizer(str(files / "vocab.txt")), "classification")
    assert json.loads((out / report.REPORT_JSON).read_text()) == written
    assert (out / report.REPORT_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["overlap_with_train"] == {"dev": {"rows": 1, "share": 0.3333}}

    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "inspect_data.py"), "--task=classification",
                           f"--vocab_file={files / 'vocab.txt'}", "--bert_config_file=tiny",
                           f"--train_file={files / 'train.tsv'}", f"--test_file={files / 'test.tsv'}",
                           "--max_seq_length=8"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == ("train: 7 rows; rows per label: neg=2, pos=5; word pieces p50 5 p95 9 max 11; "
                                           "1 over 8; 1 empty, 2 duplicate")
    assert "warning: 1 of 3 test rows (33.3%) also occur in train" in done.stderr
