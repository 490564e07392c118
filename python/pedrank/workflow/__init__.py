"""The workflow: ranking a pool (rank, confidence), choosing models end to end (select), PED's
options (tune), fine-tuned truth (finetune), judging a ranking (evaluate), file formats (io) and
the recommended default (recommendation, bootstrap)."""
