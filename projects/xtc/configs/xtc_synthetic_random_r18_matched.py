# XTC* on the capacity-matched MTL baseline of the synthetic scenes,
# random-label setting: the 'xtc' arm of configs/studies/synthetic_random.py.
# Everything as xtc_synthetic_one_r18_matched.py but the labels (a test
# checks that the two resolve to the same model and optimiser).
_base_ = ['./xtc_synthetic_one_r18_matched.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
