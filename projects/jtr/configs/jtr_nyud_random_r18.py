# JTR on the MTL baseline, NYUD-v2, random-label setting.
_base_ = ['./jtr_nyud_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
val_evaluator = dict(delta_m_reference='nyud_random')
test_evaluator = val_evaluator
# REQUIRED: the depth statistics of the random-label setting (other
# images are labelled for depth than in the one-label one):
#   python projects/jtr/tools/depth_stats.py \
#       projects/jtr/configs/jtr_nyud_random_r18.py
model = dict(jtr_loss=dict(encodings=dict(depth=dict(mean=None, std=None))))
