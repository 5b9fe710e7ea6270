# MTL baseline (ResNet-18), NYUD-v2, random-label.
_base_ = [
    '../_base_/models/mtl_baseline_r18.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_nyud_200e.py',
]
crop_size = (288, 384)
model = dict(
    data_preprocessor=dict(size=crop_size),
    tasks=('semseg', 'depth', 'normals'),
    num_classes=dict(_delete_=True, semseg=13),
    loss_weights=dict(_delete_=True, semseg=1.0, depth=1.0, normals=1.0))
# Epoch-based training as the reference: shuffled, drop_last, poly stepped
# once per epoch.
train_dataloader = dict(
    batch_size=4,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(label_setting='random'))
# delta-m against the paper's single-task baseline of the same setting.
val_evaluator = dict(delta_m_reference='nyud_random')
test_evaluator = val_evaluator
