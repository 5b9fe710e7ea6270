# DiffusionMTL (Feature Diffusion), ResNet-18, NYUD-v2 (MTAN 288x384), random-label
# setting: the one-label config with the other partial-label mapping and its
# delta-m reference.
_base_ = ['./nyud_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
val_evaluator = dict(delta_m_reference='nyud_random')
test_evaluator = val_evaluator
