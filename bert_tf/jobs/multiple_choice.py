"""run_multiple_choice: SWAG-style multiple choice (bert_tf/tasks/multiple_choice.py) through the
fine-tuning job (finetune.run); its flags."""
from absl import flags as absl_flags

from bert_tf import flags as flag_groups
from bert_tf.jobs import finetune
from bert_tf.tasks.multiple_choice import PREDICTIONS_FILE, MultipleChoiceTask


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5, batch_size=16)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(fv, data_format="SWAG-style .csv/.tsv (header) or .jsonl: context, optional "
                                      "question prefix, ending0..endingN-1, label", predictions_file=PREDICTIONS_FILE)
    f = absl_flags
    f.DEFINE_string("context_column", "sent1", "Field holding the context (SWAG: sent1).", flag_values=fv)
    f.DEFINE_string("question_column", "sent2", "Field put before every ending (SWAG: sent2); empty for none.",
                    flag_values=fv)
    f.DEFINE_string("label_column", "label", "Field holding the index of the right ending.", flag_values=fv)
    flag_groups.check_ranges(fv)


def run(flags):
    """The run_multiple_choice job; returns {'train'/'eval'/'test': results} for what was asked."""
    return finetune.run(MultipleChoiceTask(flags), flags)
