# DiffusionMTL (Prediction Diffusion), ResNet-18, PASCAL-Context, random-label
# setting.
_base_ = [
    '../_base_/models/diffmtl_r18_pred.py',
    '../_base_/datasets/pascal_context_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_pascal_100e.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge'),
    num_classes=dict(semseg=21, human_parts=7),
    loss_weights=dict(
        semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0, edge=50.0))
# Epoch-based training as the reference: shuffled, drop_last, poly stepped
# once per epoch.
train_dataloader = dict(
    batch_size=6,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(label_setting='random'))
# delta-m against the paper's single-task baseline of the same setting.
val_evaluator = dict(delta_m_reference='pascal_random')
test_evaluator = val_evaluator
