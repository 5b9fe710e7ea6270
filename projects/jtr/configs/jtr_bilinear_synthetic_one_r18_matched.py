# JTR whose auto-encoder reconstructs from its latent alone: the 'jtr'
# config of the one-label synthetic scenes with g's decoder upsampling
# bilinearly instead of max-unpooling with the encoder's pooling indices
# (same parameters and initial weights). With JTR's unpooling the indices
# carry the reconstruction, and its latent collapses
# (projects/jtr/README.md). The 'jtr_bilinear' arm of
# configs/studies/synthetic_one.py.
_base_ = ['./jtr_synthetic_one_r18_matched.py']
model = dict(jtr_net=dict(unpool='bilinear'))
