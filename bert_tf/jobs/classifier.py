"""run_classifier: sentence(-pair) classification and regression (bert_tf/tasks/classification.py)
through the fine-tuning job (finetune.run); its flags."""
from absl import flags as absl_flags

from bert_tf import flags as flag_groups
from bert_tf.data import glue
from bert_tf.jobs import finetune
from bert_tf.tasks.classification import PREDICTIONS_FILE, ClassificationTask

DEFAULT_BUCKETS = "16,24,32,48,64,96,128,192,256,384,512"


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5)
    flag_groups.define_strategy_flags(fv)
    f = absl_flags
    f.DEFINE_enum("task_type", "classification", ["classification", "regression"],
                  "classification (softmax over labels) or regression (one score, MSE).", flag_values=fv)
    flag_groups.define_finetune_flags(
        fv, data_format=".tsv (tab, header), .csv or .jsonl", predictions_file=PREDICTIONS_FILE,
        length_buckets=DEFAULT_BUCKETS)
    f.DEFINE_bool("pack_sequences", False,
                  "Train on each batch's examples packed several to a row of --max_seq_length, each attending "
                  "only to itself (the same outputs as unpacked): short texts stop paying for padding while "
                  "batches stay random samples. Training only; evaluation and prediction are unpacked.",
                  flag_values=fv)
    f.DEFINE_string("tfds_name", None, "Read splits from tensorflow-datasets instead, e.g. glue/sst2.",
                    flag_values=fv)
    f.DEFINE_string("tfds_data_dir", None, "Where the tfds data set was prepared (no downloads happen).",
                    flag_values=fv)
    f.DEFINE_string("text_column", "sentence", "Column holding the text.", flag_values=fv)
    f.DEFINE_string("text_pair_column", None, "Column holding the second text of sentence-pair tasks.",
                    flag_values=fv)
    f.DEFINE_string("label_column", "label", "Column holding the label.", flag_values=fv)
    f.DEFINE_list("labels", None, "The label set, in id order (default: sorted labels of the training data).",
                  flag_values=fv)
    # google-research/bert's way in: a named task whose files sit in --data_dir in their standard layout.
    f.DEFINE_string("task_name", None, f"A GLUE/XNLI task read from --data_dir in its standard TSV layout, as "
                    f"google-research/bert does (replaces --train_file/--dev_file/--test_file and the column "
                    f"flags): {', '.join(glue.TASKS)}.", flag_values=fv)
    f.DEFINE_string("data_dir", None, "With --task_name: the directory holding the task's train/dev/test TSV files.",
                    flag_values=fv)
    f.DEFINE_integer("predict_batch_size", None, "Batch size for --do_predict (default: --eval_batch_size).",
                     flag_values=fv)
    flag_groups.check_ranges(fv)


def run(flags):
    """The run_classifier job; returns {'train'/'eval'/'test': results} for what was asked."""
    return finetune.run(ClassificationTask(flags), flags)
