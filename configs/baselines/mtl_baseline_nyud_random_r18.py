# MTL baseline (ResNet-18, 6 basic blocks per task), NYUD-v2 (MTAN 288x384),
# random-label setting.
_base_ = ['./mtl_baseline_nyud_one_r18.py']
train_dataloader = dict(dataset=dict(label_setting='random'))
val_evaluator = dict(delta_m_reference='nyud_random')
test_evaluator = val_evaluator
