# Synthetic multi-task room scenes: the embedded, CPU-sized default dataset.
# Generate it first (about half a minute on 2 cores; byte-identical for a
# given seed):
#   python tools/dataset_converters/make_synthetic_scenes.py \
#       --out data/synthetic_scenes
# (2000 train / 500 val / 1000 test images).
# Layout and label rules: docs/en/synthetic_scenes.md.
dataset_type = 'FolderMultiTaskDataset'
data_root = 'data/synthetic_scenes'
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
num_classes = dict(semseg=6, human_parts=7)
img_size = (96, 128)  # (h, w) of the generated images: the train crop

# Partial labels: 'one' (mappings/onelabel.json), 'random'
# (mappings/randomlabels.json) or 'full'. `label_mapping` maps each setting
# to its file (relative to data_root), so a child config only sets
# train_dataloader = dict(dataset=dict(label_setting='random')).
label_setting = 'one'
label_mapping = dict(
    one='mappings/onelabel.json',
    random='mappings/randomlabels.json',
    full=None)

train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomResize', ratio_range=(1.0, 1.5)),
    dict(type='MultiTaskRandomCrop', crop_size=img_size, cat_max_ratio=0.75),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='MultiTaskPad', size=img_size),
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
    num_workers=2,
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
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        tasks=tasks,
        test_mode=True,
        pipeline=test_pipeline))
# The held-out test split (ids after val): every number of the studies
# (configs/studies/) comes from it; hyper-parameters are chosen on val.
test_dataloader = dict(
    val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
# 10 instead of 25 boundary thresholds halves the edge metric's CPU time
# (the bulk of a validation pass on CPU); see docs/en/metrics.md for the
# options of every task's metric. A child config that drops `edge` from the
# tasks keeps working (options of tasks not evaluated are ignored).
val_evaluator = dict(
    type='MultiTaskMetric', task_metrics=dict(edge=dict(thresholds=10)))
test_evaluator = val_evaluator
