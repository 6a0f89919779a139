"""Local TFRecords framed in Python are byte for byte what tf.io.TFRecordWriter writes."""
import uuid

import bert_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from bert_tf.data import record_writer

PAYLOADS = [b"", b"x", bytes(range(256)) * 40, np.random.RandomState(0).bytes(70000)] + [
    f"record {i}".encode() for i in range(50)]


def _tensorflow_bytes(path, payloads, compression=""):
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression)) as writer:
        for payload in payloads:
            writer.write(payload)


def test_python_framing_is_tensorflows(tmp_path):
    ours, theirs = str(tmp_path / "ours.tfrecord"), str(tmp_path / "theirs.tfrecord")
    framed = record_writer.FramedRecordFile(ours)
    for payload in PAYLOADS:
        framed.write(payload)
    framed.close()
    _tensorflow_bytes(theirs, PAYLOADS)
    with open(ours, "rb") as a, open(theirs, "rb") as b:
        assert a.read() == b.read()


def test_write_records_bytes_match_tensorflow_in_every_mode(tmp_path):
    for shards in (1, 3):
        record_writer.write_records(str(tmp_path / f"ours{shards}"), iter(PAYLOADS), num_shards=shards)
        for index, path in enumerate(record_writer.shard_paths(str(tmp_path / f"ours{shards}"), shards)):
            _tensorflow_bytes(str(tmp_path / "theirs"), PAYLOADS[index::shards])
            with open(path, "rb") as a, open(tmp_path / "theirs", "rb") as b:
                assert a.read() == b.read()
    # GZIP and other filesystems stay with TensorFlow's writer; both read back whole.
    gzip_path = str(tmp_path / "gzip.tfrecord")
    remote = f"ram://records-{uuid.uuid4().hex[:8]}/out.tfrecord"
    assert record_writer.write_records(gzip_path, iter(PAYLOADS), compression="GZIP") == len(PAYLOADS)
    assert record_writer.write_records(remote, iter(PAYLOADS)) == len(PAYLOADS)
    for path, compression in ((gzip_path, "GZIP"), (remote, "")):
        assert [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)] == PAYLOADS
