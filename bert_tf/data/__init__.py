"""Data stages: raw files -> examples -> TFRecords -> tf.data pipelines."""
