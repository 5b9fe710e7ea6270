# XTC* on the MTL baseline, NYUD-v2, random-label setting (Tab. 3).
_base_ = ['./xtc_nyud_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
val_evaluator = dict(delta_m_reference='nyud_random')
test_evaluator = val_evaluator
