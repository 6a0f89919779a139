"""run_tagger: token tagging from CoNLL files (bert_tf/tasks/tagging.py) through the fine-tuning job
(finetune.run); its flags."""
from absl import flags as absl_flags

from bert_tf import flags as flag_groups
from bert_tf.jobs import finetune
from bert_tf.tasks.tagging import PREDICTIONS_FILE, TaggingTask


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(
        fv, data_format="CoNLL, token<TAB>tag per line (or CoNLL-2003 'token POS chunk NER'), a blank line "
        "between sentences", predictions_file=PREDICTIONS_FILE, length_buckets="32,64,128,256,512")
    absl_flags.DEFINE_list("labels", None, "The tag set, in id order (default: sorted tags of the training data).",
                           flag_values=fv)
    flag_groups.check_ranges(fv)


def run(flags):
    """The run_tagger job; returns {'train'/'eval'/'test': results} for what was asked."""
    return finetune.run(TaggingTask(flags), flags)
