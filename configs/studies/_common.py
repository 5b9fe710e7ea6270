# Shared settings of the synthetic-scene studies (see docs/en/results.md).
# Every arm trains with the same data, schedule (3000 iterations of batch
# 8) and seeds, and is tested with the same options on the held-out test
# split (1000 images) with seeded, batch-invariant inference noise.
tasks = ['semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth']
seeds = [0, 1, 2]
input_shape = (96, 128)  # parameter / MAC count
train_options = {
    # no validation pass during training: the study scores test only
    'train_cfg.val_interval': 100000,
    'val_cfg': None,
    'val_dataloader': None,
    'val_evaluator': None,
}
test_options = {
    'test_dataloader.dataset.split': 'test',
}
