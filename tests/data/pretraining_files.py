"""Writing and reading back pretraining records in tests (shared by the tests of data/pretraining*)."""
import numpy as np
import tensorflow as tf

from bert_tf.data import pretraining
from bert_tf.tokenization import HostTokenizer

SEQ, PRED = 64, 10


def read(pattern, compression=None):
    files = sorted(tf.io.gfile.glob(pattern))
    rows = []
    for raw in tf.data.TFRecordDataset(files, compression_type=compression or ""):
        example = tf.train.Example.FromString(raw.numpy())
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            row[name] = np.array(getattr(feature, kind).value)
        rows.append(row)
    return {name: np.stack([r[name] for r in rows]) for name in rows[0]}


def create(tmp_path, corpus, vocab, name="out.tfrecord", **overrides):
    settings = dict(max_seq_length=SEQ, max_predictions_per_seq=PRED, dupe_factor=2, random_seed=7)
    workers = overrides.pop("num_workers", 1)
    shards = overrides.pop("num_output_shards", 1)
    gzip = overrides.pop("gzip", False)
    settings.update(overrides)
    output = str(tmp_path / name)
    stats = pretraining.create_pretraining_data(corpus, output, HostTokenizer(vocab), pretraining.Settings(**settings),
                                                num_output_shards=shards, num_workers=workers, gzip=gzip,
                                                verbose=False)
    return output, stats
