# Single-task baseline: the MTL baseline with one task, trained on the images
# labelled for that task (one model per task; pick it with
#   --cfg-options model.tasks="['normals']"
# ). The dataset keeps all tasks; the model only reads its own GT and the
# task_mask, so unlabelled images contribute nothing.
_base_ = ['./mtl_baseline_pascal_one_r18.py']
model = dict(tasks=('semseg', ))
# A single-task run is itself the delta-m reference.
val_evaluator = dict(delta_m_reference=None)
test_evaluator = val_evaluator
