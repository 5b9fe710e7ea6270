# DiffusionMTL (Feature Diffusion) on the synthetic scenes, random-label
# setting (every training image has 1-5 of its 6 tasks labelled, from
# mappings/randomlabels.json). Everything else as synthetic_one_r18.py.
_base_ = ['./synthetic_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
