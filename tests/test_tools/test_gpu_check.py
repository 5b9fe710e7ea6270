# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/misc/gpu_check.py and tools/analysis_tools/benchmark_gpu.py on the
CPU: the report of a run without CUDA, the parsing of test metrics and
training logs, the metric comparison, and the benchmark's random batches
and rows."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from tool_runner import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tests', 'test_models'))
from _mtl_model_utils import tiny_diffusion_cfg  # noqa: E402

gpu_check = load_tool('tools/misc/gpu_check.py')
#: The configs' preprocessor: uint8 images in, normalised and stacked.
PRE = dict(type='MultiTaskDataPreProcessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
benchmark_gpu = load_tool('tools/analysis_tools/benchmark_gpu.py')


def test_compare_metrics_tolerance():
    cpu = {'semseg/mIoU': 40.0, 'depth/rmse': 0.5, 'only/cpu': 1.0}
    gpu = {'semseg/mIoU': 40.3, 'depth/rmse': 0.56, 'only/gpu': 2.0}
    res = gpu_check.compare_metrics(gpu, cpu)
    # 0.05 + 0.01 * 40 = 0.45 > 0.3; 0.05 + 0.005 < 0.06
    assert set(res['diffs']) == {'semseg/mIoU', 'depth/rmse'}
    assert list(res['beyond']) == ['depth/rmse']
    assert res['worst'] == 'semseg/mIoU' and not res['ok']
    assert gpu_check.compare_metrics(cpu, cpu)['ok']
    assert not gpu_check.compare_metrics({}, cpu)['ok']


def test_metrics_and_losses_are_read_from_the_work_dir(tmp_path):
    run = tmp_path / '20250101_000000'
    (run / 'vis_data').mkdir(parents=True)
    (run / '20250101_000000.json').write_text(
        json.dumps({'semseg/mIoU': 12.5, 'step': 0, 'edge/odsF': 0.25}) +
        '\n')
    (run / 'vis_data' / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in [
            dict(loss=3.0, iter=10), dict(lr=0.1), dict(loss=float('nan'))
        ]) + '\n')
    assert gpu_check.GpuCheck._metrics(str(tmp_path)) == {
        'semseg/mIoU': 12.5, 'edge/odsF': 0.25
    }
    losses = gpu_check.GpuCheck._losses(str(tmp_path))
    assert losses['logged'] == 2 and not losses['all_finite']


@pytest.mark.slow
def test_run_without_cuda_reports_the_cpu_mode(tmp_path):
    """Without CUDA the check says so, collects and skips the CUDA tests and
    writes both reports; the skipped steps are named."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    out = tmp_path / 'report'
    proc = subprocess.run([
        sys.executable, 'tools/misc/gpu_check.py', '--out', str(out),
        '--skip', 'benchmark', 'train', 'collective_safety'
    ], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['mode'] == 'cpu' and report['cuda'] is False
    steps = {s['name']: s for s in report['steps']}
    assert 'no CUDA device' in steps['environment']['note']
    assert steps['imports']['status'] == 'ok'
    cuda = steps['cuda_tests']
    assert cuda['status'] == 'skipped'
    assert cuda['counts']['tests'] >= 10
    assert cuda['counts']['skipped'] == cuda['counts']['tests']
    for name in ('benchmark', 'train', 'collective_safety'):
        assert steps[name]['status'] == 'skipped'
    table = (out / 'gpu_check.md').read_text()
    assert '| cuda_tests | skipped |' in table


def test_random_batch_is_one_label_and_trains():
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from diffmtl.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(tiny_diffusion_cfg(data_preprocessor=PRE))
    batch = benchmark_gpu.random_batch(model, 3, 32, seed=1)
    assert len(batch['inputs']) == 3
    for x, sample in zip(batch['inputs'], batch['data_samples']):
        assert x.dtype == torch.uint8 and x.shape == (3, 32, 32)
        assert sum(sample.task_mask) == 1
        labelled = model.tasks[list(sample.task_mask).index(True)]
        spec = model.task_specs[labelled]
        gt = sample.get(spec.gt_field).data
        assert gt.shape[-2:] == (32, 32)
        if spec.discrete:
            assert int(gt.max()) < max(model.out_channels[labelled], 2)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch, optim)
    assert torch.isfinite(log_vars['loss'])


def test_time_training_rows_on_the_cpu():
    cfg = Config(dict(
        model=tiny_diffusion_cfg(data_preprocessor=PRE, inference_seed=0),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.01))))
    row = benchmark_gpu.time_training(cfg, 'fp32', 'cpu', batch=2, size=32,
                                      iters=1, warmup=1)
    assert row['status'] == 'ok' and row['finite']
    assert row['images_per_sec'] == pytest.approx(2 / row['sec_per_iter'])
    assert row['peak_gib'] is None
    amp = benchmark_gpu.time_training(cfg, 'fp16', 'cpu', 2, 32, 1, 1)
    assert amp['status'] == 'skipped: AMP needs CUDA'
    rows = benchmark_gpu.time_inference(cfg, 'cpu', size=32, images=1)
    assert [r['noise'] for r in rows] == ['seeded', 'global RNG']
    table = benchmark_gpu.markdown_table(
        [dict(config='x.py', train=[row, amp], inference=rows)])
    assert '| x.py | fp16 | - | - | - | skipped: AMP needs CUDA |' in table
