# JTR on the MTL baseline, PASCAL-Context, random-label setting.
_base_ = ['./jtr_pascal_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
val_evaluator = dict(delta_m_reference='pascal_random')
test_evaluator = val_evaluator
