# DiffusionMTL (Feature Diffusion), ResNet-18, Cityscapes (MTAN 128x256, 7
# classes), one-label setting.
_base_ = [
    '../_base_/models/diffmtl_r18.py',
    '../_base_/datasets/cityscapes_mt.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_cityscapes_200e.py',
]
crop_size = (128, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    tasks=('semseg', 'depth'),
    num_classes=dict(_delete_=True, semseg=7),
    loss_weights=dict(_delete_=True, semseg=1.0, depth=1.0))
# Epoch-based training as the reference: shuffled, drop_last, poly stepped
# once per epoch.
train_dataloader = dict(
    batch_size=8,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(label_setting='one'))
# delta-m against the paper's single-task baseline of the same setting.
val_evaluator = dict(delta_m_reference='cityscapes_one')
test_evaluator = val_evaluator
