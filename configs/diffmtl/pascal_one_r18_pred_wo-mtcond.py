# Ablation (Table 2) "w/o Multi-Task Conditioning": no conditioner, the
# denoiser's blocks are self-attention blocks over the task tokens.
_base_ = ['./pascal_one_r18_pred.py']
model = dict(multi_task_condition=False)
