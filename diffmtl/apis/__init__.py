# Copyright (c) diffmtl contributors. All rights reserved.
"""High-level inference API: build a model, run it on images, run its
denoising process; build a model for parameter / MAC counting; take a
config's training batches for analysis."""
from .complexity import build_for_counting
from .denoising import run_denoising_process
from .inference import (build_inference_pipeline, inference_denoising_process,
                        inference_multitask, init_model, model_tasks)
from .training import training_batches

__all__ = [
    'init_model', 'inference_multitask', 'inference_denoising_process',
    'build_inference_pipeline', 'model_tasks', 'run_denoising_process',
    'build_for_counting', 'training_batches'
]
