"""One class per fine-tuning task (classification/regression, tagging, SQuAD, multiple choice): what
the job reads and converts, the head it builds, how it scores and writes predictions, and its serving
signature. ``bert_tf.jobs.finetune.run`` drives a task; ``registry`` maps stored task names to them."""
