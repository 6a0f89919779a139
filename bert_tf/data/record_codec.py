"""A vectorized writer of serialized tf.train.Example messages (packed int64 and float lists).

Per-value Python work is what makes ``tf.train.Example(...).SerializeToString()`` slow for
millions of pretraining instances; this writes the same wire format for a whole batch of
instances at once with numpy. ``python tools/benchmark.py record_codec`` measures the difference.
"""
import functools

import numpy as np

from bert_tf.data import record_writer

# Ids, positions and labels of BERT records stay far below this (vocabularies hold at most a few
# hundred thousand pieces), and a lookup table of this many varints takes 6 MB. Larger values are
# left to protobuf rather than given a hand-written path of their own.
TABLE_LIMIT = 1 << 21


@functools.lru_cache(maxsize=4096)
def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@functools.lru_cache(maxsize=8)
def _varint_table(limit):
    """Varints of 0..limit-1: [limit, width] uint8 bytes, [limit, width] bool (byte in use), byte counts."""
    values = np.arange(limit, dtype=np.uint64)
    width = max(1, ((limit - 1).bit_length() + 6) // 7)
    shifts = (np.arange(width) * 7).astype(np.uint64)
    groups = ((values[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    nbytes = 1 + (values[:, None] >= (np.uint64(1) << shifts[1:])).sum(1)
    more = np.arange(width)[None, :] < (nbytes[:, None] - 1)
    return groups | (more.astype(np.uint8) << 7), np.arange(width)[None, :] < nbytes[:, None], nbytes


def _packed_varints(values):
    """Row-wise protobuf varint encoding of an int matrix in [0, TABLE_LIMIT) -> list of bytes per row."""
    rows, columns = values.shape
    top = int(values.max()) if values.size else 0
    if top < 0x80:  # one byte per value: the row's bytes are the values themselves
        flat = values.astype(np.uint8).tobytes()
        return [flat[i:i + columns] for i in range(0, rows * columns, columns)]
    # Table lookups sized to a power of two, so a few tables serve every batch; np.take, several
    # times faster than fancy indexing here.
    table, in_use, nbytes = _varint_table(1 << top.bit_length())
    flat = np.take(table, values, axis=0)[np.take(in_use, values, axis=0)].tobytes()
    ends = np.cumsum(np.take(nbytes, values).sum(1)).tolist()
    return [flat[s:e] for s, e in zip([0] + ends[:-1], ends)]


@functools.lru_cache(maxsize=1024)
def _entry_header(key, kind_tag, payload_length):
    """Bytes before a packed payload in one map<string, Feature> entry of tf.train.Features."""
    value_list = 1 + len(_varint(payload_length)) + payload_length
    feature_header = kind_tag + _varint(value_list) + b"\x0a" + _varint(payload_length)
    feature_length = len(feature_header) + payload_length
    entry_length = 1 + len(_varint(len(key))) + len(key) + 1 + len(_varint(feature_length)) + feature_length
    return (b"\x0a" + _varint(entry_length) + b"\x0a" + _varint(len(key)) + key + b"\x12" +
            _varint(feature_length) + feature_header)


def serialize_examples(features):
    """{name: int or float array [N, ...]} -> N serialized tf.train.Example (packed lists, in key order).

    Equivalent to ``record_writer.to_example(...).SerializeToString()`` (tests check they parse to
    equal messages) but vectorized: per-value Python work is what makes the reference slow.
    Integers must be non-negative; a batch holding one of TABLE_LIMIT or more goes the protobuf way.
    """
    arrays = {name: np.asarray(array) for name, array in features.items()}
    ints = [array for array in arrays.values() if array.dtype.kind != "f" and array.size]
    if any(int(array.min()) < 0 for array in ints):
        raise ValueError("feature values must be non-negative")
    if any(int(array.max()) >= TABLE_LIMIT for array in ints):
        count = len(next(iter(arrays.values())))
        return [record_writer.to_example({name: array[row] for name, array in arrays.items()}).SerializeToString()
                for row in range(count)]
    columns = []
    for name, array in arrays.items():
        rows = array.reshape(len(array), -1)
        key = name.encode("utf-8")
        if array.dtype.kind == "f":
            width = rows.shape[1] * 4
            flat = rows.astype("<f4").tobytes()
            payloads = [flat[i:i + width] for i in range(0, len(flat), width)]
            tag = b"\x12"
        else:
            payloads = _packed_varints(rows)
            tag = b"\x1a"
        columns.append([_entry_header(key, tag, len(p)) for p in payloads])
        columns.append(payloads)
    out = []
    for pieces in zip(*columns):
        body = b"".join(pieces)
        out.append(b"\x0a" + _varint(len(body)) + body)
    return out
