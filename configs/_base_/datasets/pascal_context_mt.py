# PASCAL-Context multi-task (ATRC/ASTMT `PASCALContext` tree): semseg (21),
# human_parts (7), sal, normals, edge. 4998 train / 5105 val images.
# Prepare: docs/en/datasets.md (optionally convert the .mat annotations once
# with tools/dataset_converters/pascal_context_mt.py).
dataset_type = 'PascalContextMTDataset'
data_root = 'data/PASCALContext'
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
crop_size = (512, 512)

# Partial labels: 'one', 'random' or 'full'. `label_mapping` maps each
# setting to its file, so a child config only sets
# train_dataloader = dict(dataset=dict(label_setting='random')).
# The .npy task lists hold the same membership as DiffusionMTL's
# new_*.pth pickles and are read without unpickling arbitrary objects.
label_setting = 'one'
label_mapping = dict(
    one='data/ssl_mapping/pascal/onelabel.npy',
    random='data/ssl_mapping/pascal/randomlabels.npy',
    full=None)

# Image padding as the reference: it normalises, then pads with 0, i.e. with
# the mean colour. diffmtl pads in pixel space (the data preprocessor
# normalises later), so the pad value is the preprocessor's ImageNet mean in
# the pipeline's BGR order: padded pixels normalise to exactly 0 (the image
# becomes float32 for that, losslessly). Keep it equal to
# model.data_preprocessor.mean (RGB) reversed.
img_pad_val = [103.53, 116.28, 123.675]

# Reference (ATRC) augmentation: continuous scale 0.5-2, 512 crop with
# cat_max_ratio 0.75, flip (normals x negated), photometric distortion,
# centred padding to 512 (image: mean colour, labels 255, normals 0).
# The crop check reads only labelled semseg maps (diffmtl); the reference
# also reads the semseg labels of images not labelled for semseg:
# MultiTaskRandomCrop(cat_labels='all') reproduces that (docs/en/datasets.md).
train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    # A crop that shows no human part is ignored for human_parts (reference).
    dict(type='MultiTaskIgnoreEmptyMaps', tasks=('human_parts', )),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='MultiTaskPad', size=crop_size, center=True,
         pad_val=img_pad_val),
    dict(type='PackMultiTaskInputs'),
]
# Test: no resize, every image (<= 500 px) padded to 512x512 (mean colour).
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskPad',
        size=crop_size,
        center=True,
        pad_val=img_pad_val,
        pad_gt=False),
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
        ], [
            dict(
                type='MultiTaskPad',
                size=crop_size,
                center=True,
                pad_val=img_pad_val,
                pad_gt=False)
        ], [dict(type='PackMultiTaskInputs')]])
]

train_dataloader = dict(
    batch_size=6,
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
