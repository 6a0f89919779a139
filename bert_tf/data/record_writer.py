"""Writing TFRecords: tf.train.Example encoding and the one atomic sharded writer.

Layouts follow google-research/bert (int64 ids, ``input_mask``, ``segment_ids``) so its files and
ours are interchangeable. Uncompressed local files are framed here in Python, byte for byte what
``tf.io.TFRecordWriter`` writes: create_pretraining_data then never imports TensorFlow, whose
import is half of its run time. Compressed or remote files go through TensorFlow.
"""
import contextlib
import struct

import google_crc32c
import numpy as np

from bert_tf import fileio, gfile
from bert_tf.errors import ParameterError

_CRC_MASK_DELTA = 0xA282EAD8


def _tf():
    import tensorflow as tf

    return tf


def int_feature(values):
    tf = _tf()
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in np.ravel(values)]))


def float_feature(values):
    tf = _tf()
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in np.ravel(values)]))


def bytes_feature(values):
    tf = _tf()
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def to_example(features):
    """{name: array-like} -> tf.train.Example, ints as int64 and floats as float lists."""
    converted = {}
    for name, value in features.items():
        array = np.asarray(value)
        if array.dtype.kind in "iub":
            converted[name] = int_feature(array)
        elif array.dtype.kind == "f":
            converted[name] = float_feature(array)
        else:
            converted[name] = bytes_feature([v if isinstance(v, bytes) else str(v).encode("utf-8")
                                             for v in np.ravel(array)])
    tf = _tf()
    return tf.train.Example(features=tf.train.Features(feature=converted))


def shard_paths(output_file, num_shards):
    if num_shards == 1:
        return [output_file]
    return [f"{output_file}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def masked_crc32c(data):
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits plus a constant (mod 2**32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


class FramedRecordFile:
    """An uncompressed TFRecord file written without TensorFlow: each record is its length
    (uint64, little-endian), the length's masked CRC-32C, the data, and the data's masked CRC-32C."""

    def __init__(self, path):
        self._file = gfile.GFile(path, "wb")

    def write(self, data):
        length = struct.pack("<Q", len(data))
        self._file.write(b"".join((length, struct.pack("<I", masked_crc32c(length)), data,
                                   struct.pack("<I", masked_crc32c(data)))))

    def close(self):
        self._file.close()


def _record_writer(path, compression):
    if fileio.is_local(path) and not compression:
        return FramedRecordFile(path)
    tf = _tf()
    return tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression))


def write_records(output_file, examples, num_shards=1, compression=None):
    """Writes serialized examples round-robin over shards; every shard appears only when all are done.

    ``examples`` yields ``tf.train.Example`` or bytes. Returns the number written.
    """
    if num_shards < 1:
        raise ParameterError(f"num_shards={num_shards} must be at least 1", "num_shards")
    paths = shard_paths(output_file, num_shards)
    count = 0
    # One atomic_path per shard: on any failure every shard's temporary is discarded.
    with contextlib.ExitStack() as shards:
        temps = [shards.enter_context(fileio.atomic_path(p)) for p in paths]
        writers = [_record_writer(t, compression or "") for t in temps]
        try:
            for count, example in enumerate(examples, start=1):
                payload = example if isinstance(example, bytes) else example.SerializeToString()
                writers[(count - 1) % num_shards].write(payload)
        finally:
            for writer in writers:
                writer.close()
    return count
