# DiffusionMTL (Feature Diffusion), ResNet-18, PASCAL-Context, random-label
# setting: the one-label config with the other partial-label mapping and its
# delta-m reference.
_base_ = ['./pascal_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
val_evaluator = dict(delta_m_reference='pascal_random')
test_evaluator = val_evaluator
