"""The pretraining model as a model directory's ``bert_tf.json`` names it: no fine-tuning job and no
serving signature, only the model (converting a checkpoint, compiling its steps)."""
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.tasks.base import Task


class PretrainingTask(Task):
    name = "pretraining"

    def build_model(self, config):
        return BertPretrainingModel(config)
