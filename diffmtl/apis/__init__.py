# Copyright (c) diffmtl contributors. All rights reserved.
"""High-level inference API."""
from .inference import (build_inference_pipeline, inference_denoising_process,
                        inference_multitask, init_model, model_tasks)

__all__ = [
    'init_model', 'inference_multitask', 'inference_denoising_process',
    'build_inference_pipeline', 'model_tasks'
]
