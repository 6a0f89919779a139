"""Checks that a pretraining record file matches the training flags, naming the flag to pass."""
import bert_tf  # noqa: F401
import pytest

from bert_tf.data import pretraining_records
from bert_tf.errors import UserError
from tests.data.pretraining_files import PRED, SEQ
from tests.data.pretraining_files import create as _create


def test_check_records_names_mismatches(tmp_path, corpus_file, vocab_file):
    path, _ = _create(tmp_path, corpus_file, vocab_file)
    assert pretraining_records.check_records(path, SEQ, PRED, False)["input_ids"] == SEQ
    with pytest.raises(UserError, match=f"--max_seq_length={SEQ}"):
        pretraining_records.check_records(path, 128, PRED, False)
    with pytest.raises(UserError, match=f"--max_predictions_per_seq={PRED}"):
        pretraining_records.check_records(path, SEQ, 20, False)
    with pytest.raises(UserError, match="dynamic_masking"):
        pretraining_records.check_records(path, SEQ, PRED, True)
    corrupt = tmp_path / "corrupt.tfrecord"
    corrupt.write_bytes(open(path, "rb").read()[:30])
    with pytest.raises(UserError, match="corrupt.tfrecord is corrupt at record 0"):
        pretraining_records.check_records(str(corrupt), SEQ, PRED, False)
