# Single-task baseline, PASCAL-Context random-label setting (see
# single_task_pascal_one_r18.py; choose the task with model.tasks).
_base_ = ['./mtl_baseline_pascal_random_r18.py']
model = dict(tasks=('semseg', ))
# A single-task run is itself the delta-m reference.
val_evaluator = dict(delta_m_reference=None)
test_evaluator = val_evaluator
