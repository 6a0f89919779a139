"""Checking TFRecord files: count and CRC-check records, find and describe corruption."""
import re

import tensorflow as tf
from absl import logging

from bert_tf.errors import ParameterError, UserError


def scan_records(path, compression=None):
    """(number of readable records, index of the first corrupt record or None); CRCs are checked.

    TensorFlow's reader takes a file cut inside a record's length header for a clean end, so for
    uncompressed files the framing is also walked to the last byte.
    """
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path, compression_type=compression or ""):
            count += 1
    except tf.errors.DataLossError:
        return count, count
    if not compression and _framed_bytes(path, count) != tf.io.gfile.stat(path).length:
        return count, count
    return count, None


def _framed_bytes(path, count):
    """Bytes taken by the first ``count`` records: 8-byte length, 4-byte CRC, payload, 4-byte CRC each."""
    position = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        for _ in range(count):
            f.seek(position)
            position += 8 + 4 + int.from_bytes(f.read(8), "little") + 4
    return position


def count_records(path, compression=None):
    """Reads every record (CRCs checked); names the file and record index of the first bad one."""
    count, bad = scan_records(path, compression)
    if bad is not None:
        raise UserError(f"TFRecord file {path} is corrupt at record {bad}: regenerate it")
    return count


def corruption_error(error, files):
    """The error for a DataLossError met while reading ``files`` ((path, compression) pairs): which file, which
    record. The fix it names is the reader's ``skip_corrupt``."""
    match = re.search(r"(corrupted|truncated) record at \d+", str(error))
    detail = f"{match.group(0)} bytes" if match else str(error).strip().splitlines()[0][:200]
    for path, compression in sorted(files, key=lambda item: item[0]):
        _, bad = scan_records(path, compression)
        if bad is not None:
            return ParameterError(f"TFRecord file {path} is corrupt at record {bad} ({detail}): regenerate it, or "
                                  "pass skip_corrupt to train on the records before the damage", "skip_corrupt")
    return ParameterError(f"the training data is corrupt ({detail}): regenerate it, or pass skip_corrupt",
                          "skip_corrupt")


def find_corrupt(files, compression, found):
    """Adds {path: index of its first corrupt record} to ``found`` for the corrupt ones among ``files``."""
    for path in files:
        if path in found:
            continue
        _, bad = scan_records(path, compression)
        if bad is not None:
            found[path] = bad
            logging.warning("%s is corrupt at record %d: its remaining records are skipped", path, bad)
