# Capacity-matched MTL baseline (5 blocks per task, 5.30 M parameters) on
# the synthetic scenes, random-label setting: the reference arm of
# configs/studies/synthetic_random.py.
_base_ = ['./mtl_baseline_synthetic_one_r18_matched.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
