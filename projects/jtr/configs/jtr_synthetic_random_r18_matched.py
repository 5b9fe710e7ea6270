# JTR on the capacity-matched MTL baseline of the synthetic scenes,
# random-label setting: the 'jtr' arm of configs/studies/synthetic_random.py.
# Everything as jtr_synthetic_one_r18_matched.py but the labels and the
# depth statistics of this setting's training labels (1000 images,
# projects/jtr/README.md).
_base_ = ['./jtr_synthetic_one_r18_matched.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
model = dict(jtr_loss=dict(encodings=dict(
    depth=dict(mean=4.69295, std=2.65821))))
