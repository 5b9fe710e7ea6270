# NYUD-v2, MTAN/MTPSL version (the paper's setting): 288x384 .npy arrays,
# semseg (13 classes), depth (m), normals. 795 train / 654 val images.
# The ATRC `NYUDv2` tree (40 classes, + edge) is available with
# dataset=dict(layout='atrc', data_root='data/NYUDv2').
dataset_type = 'NYUDMTDataset'
data_root = 'data/nyuv2'
tasks = ('semseg', 'depth', 'normals')
crop_size = (288, 384)  # the arrays' own size: no crop or pad needed
# Padding: no pipeline pad. Anything padded (a smaller array) is padded by the
# data preprocessor after normalisation with pad_val=0, i.e. with the mean
# colour, the reference's convention (docs/en/datasets.md, "Image padding").

# MTPSL mapping tensors (row i = train/*/<i>.npy, columns semseg, depth,
# normals).
label_setting = 'one'
label_mapping = dict(
    one='data/ssl_mapping/nyud_low/onelabel.pth',
    random='data/ssl_mapping/nyud_low/randomlabels.pth',
    full=None)

# MTPSL augmentation: zoom in by 1, 1.2 or 1.5 (depth divided by the zoom,
# normals bilinear) and horizontal flip (normals x negated).
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
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        tasks=tasks,
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
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric')
test_evaluator = val_evaluator
