# SegFormer MiT-B0 backbone settings shared by the MiT configs; no `model`
# key, so it can sit beside a model base in a `_base_` list. `_delete_`
# replaces the ResNet-18 backbone of the config it is merged into.
mit_b0_backbone = dict(
    _delete_=True,
    type='MixVisionTransformer',
    in_channels=3,
    embed_dims=32,
    num_stages=4,
    num_layers=[2, 2, 2, 2],
    num_heads=[1, 2, 5, 8],
    patch_sizes=[7, 3, 3, 3],
    sr_ratios=[8, 4, 2, 1],
    out_indices=(0, 1, 2, 3),
    mlp_ratio=4,
    qkv_bias=True,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.1,
    init_cfg=None)
mit_b0_channels = [32, 64, 160, 256]
