# Cityscapes, MTAN/MTPSL version: 128x256 .npy arrays, semseg (7 classes,
# label_7) and inverse depth. 2975 train / 500 val images.
dataset_type = 'CityscapesMTDataset'
data_root = 'data/cityscapes2'
tasks = ('semseg', 'depth')
crop_size = (128, 256)  # the arrays' own size: no crop or pad needed
# Padding: no pipeline pad. Anything padded (a smaller array) is padded by the
# data preprocessor after normalisation with pad_val=0, i.e. with the mean
# colour, the reference's convention (docs/en/datasets.md, "Image padding").

# MTPSL one-label tensor (row i = train/*/<i>.npy, columns semseg, depth).
# With two tasks a random subset that is never "all tasks" is one label per
# image, so 'random' uses the same file (as the paper).
label_setting = 'one'
label_mapping = dict(
    one='data/ssl_mapping/cityscapes/onelabel.pth',
    random='data/ssl_mapping/cityscapes/onelabel.pth',
    full=None)

train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomScaleCrop', scales=(1.0, 1.2, 1.5)),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
# Test-time augmentation (`tools/test.py --tta`): the plain and the mirrored
# view, merged by MultiTaskTTAModel after the model undoes the flip (normals'
# x negated back). The first view is the unflipped one: its GT is kept.
tta_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='MultiTaskRandomFlip', prob=0.),
            dict(type='MultiTaskRandomFlip', prob=1.)
        ], [dict(type='PackMultiTaskInputs')]])
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        tasks=tasks,
        num_classes=7,
        label_setting=label_setting,
        label_mapping=label_mapping,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        tasks=tasks,
        num_classes=7,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric')
test_evaluator = val_evaluator
