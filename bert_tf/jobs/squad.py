"""run_squad: extractive question answering on SQuAD v1.1/v2.0 JSON (bert_tf/tasks/squad.py) through the
fine-tuning job (finetune.run); its flags."""
from absl import flags as absl_flags

from bert_tf import flags as flag_groups
from bert_tf.jobs import finetune
from bert_tf.tasks.squad import DEFAULT_MAX_ANSWER_LENGTH, DEFAULT_MAX_QUERY_LENGTH, SquadTask


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5, batch_size=32)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(fv, data_format="SQuAD v1.1/v2.0 JSON",
                                      predictions_file="test_predictions.json and test_nbest_predictions.json")
    f = absl_flags
    f.DEFINE_string("predict_file", None, "google-research/bert's name for the evaluation file: the default of "
                    "--dev_file, and of --test_file with --do_predict.", flag_values=fv)
    f.DEFINE_integer("doc_stride", 128, "Context pieces between the starts of consecutive windows.", flag_values=fv)
    f.DEFINE_integer("max_query_length", DEFAULT_MAX_QUERY_LENGTH, "Questions are cut to this many word pieces.",
                     flag_values=fv)
    f.DEFINE_integer("max_answer_length", DEFAULT_MAX_ANSWER_LENGTH, "Longest answer predicted, in word pieces.",
                     flag_values=fv)
    f.DEFINE_integer("n_best_size", 20, "Candidate starts/ends per window, and answers in the n-best file.",
                     flag_values=fv)
    f.DEFINE_bool("version_2_with_negative", False, "SQuAD v2.0: questions may have no answer (predict '').",
                  flag_values=fv)
    f.DEFINE_float("null_score_diff_threshold", 0.0, "v2.0: answer '' when the null score beats the best span "
                   "by more than this.", flag_values=fv)
    f.DEFINE_alias("predict_batch_size", "eval_batch_size", flag_values=fv)
    f.DEFINE_bool("verbose_logging", False, "Print a line for each data-processing notice: training answers "
                  "skipped because their text is not at answer_start, questions cut to --max_query_length.",
                  flag_values=fv)
    flag_groups.check_ranges(fv)


def run(flags):
    """The run_squad job; returns {'train'/'eval'/'test': results} for what was asked."""
    return finetune.run(SquadTask(flags), flags)
