# Copyright (c) diffmtl contributors. All rights reserved.
"""Synchronised norms under partial labels, replayed on CPU.

Two gloo processes train DiffusionMTL (feature, prediction, the
ablations), the MTL baseline, XTC and JTR with SyncBN in the backbone, the
decoders, the XTC mapper and JTR's auto-encoder g, on batches whose
labelled task sets (and sizes) differ between the processes. Every SyncBN layer is replaced by
:class:`ReplaySyncBN`, which reproduces ``torch.nn.SyncBatchNorm``'s
collectives on the CPU (forward: ``all_gather`` of each process's (mean,
var, count); backward: ``all_reduce`` of (sum dy, sum dy (x - mean))). Every
collective issued from Python (these, DDP's bucket all-reduces through a
recording comm hook, and the model's own all-reduces) is recorded, and
before it runs the processes compare its name, shape and issuer, so a
divergence fails at the first differing collective instead of mixing
statistics or hanging.

Checked: both processes issue the same collective sequence in all four
iterations, every SyncBN layer that gathers statistics also reduces its
gradient statistics, and the DDP-averaged gradients of the iterations with
equal batch sizes equal those of one process (plain BN) trained on the
union of both batches: float64, within ``rtol=1e-8, atol=1e-10`` (the
two differ in the order of the sums behind the statistics; the largest
differences seen are about 1e-12; JTR, whose g adds 78 synchronised
normalisations per iteration, within ``rtol=1e-7, atol=1e-9``), and a
parameter the one-process run leaves without a gradient has none or an
exactly zero one.
"""
import datetime
import hashlib
import os
import socket
import sys
import time
import traceback
import zlib

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from diffmtl.registry import MODELS
# A missing project must fail these tests, not skip them.
import projects.xtc.xtc  # noqa: F401
from projects.jtr.jtr import JTRViews, ViewParams

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mtl_model_utils import make_batch  # noqa: E402
from _mtl_model_utils import tiny_baseline_cfg  # noqa: E402
from _mtl_model_utils import tiny_diffusion_cfg  # noqa: E402

pytestmark = pytest.mark.slow

SYNC_BN = dict(type='SyncBN', requires_grad=True)
WORLD = 2
#: Per iteration, each process's batch as task masks (PASCAL task order
#: semseg, human_parts, sal, normals, edge). Iteration 0: different task
#: sets (human_parts and edge unlabelled everywhere); 1: an image without
#: labels, a task on one process only; 2: every task labelled in every
#: image of process 0 (JTR then detaches all of its predictions), nothing
#: in process 1; 3: batch sizes 3 and 1, nothing labelled in process 1.
SCHEDULE = [
    [[(1, 0, 0, 0, 0), (0, 0, 1, 0, 0)], [(0, 0, 0, 1, 0), (0, 0, 0, 1, 0)]],
    [[(0, 1, 0, 0, 1), (0, 0, 0, 0, 0)], [(1, 0, 0, 0, 0), (1, 0, 1, 0, 0)]],
    [[(1, 1, 1, 1, 1), (1, 1, 1, 1, 1)], [(0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]],
    [[(0, 0, 0, 0, 1), (0, 1, 0, 0, 0), (1, 0, 0, 0, 0)], [(0, 0, 0, 0, 0)]],
]
#: Iterations whose processes hold equally many images: DDP's average of
#: the per-process losses (each 1/B_r sum over its images) is then the
#: union batch's loss. They come first: the one-process reference trains
#: on them only, so its weights match up to the last of them.
EQUAL_SIZE_ITERS = (0, 1, 2)
SIZE = (32, 48)
RTOL, ATOL = 1e-8, 1e-10
#: Tolerances of a case whose gradients pass through more synchronised
#: statistics: JTR's g runs 78 SyncBN normalisations per iteration (its
#: 26 layers in the 2 full passes, its encoder's 13 in the 2 frozen
#: ones), whose sums the two runs take in different orders (largest
#: difference seen: 1.6e-8 relative, 3e-10 absolute).
CASE_TOLERANCES = {'jtr': (1e-7, 1e-9)}
CASES = ('diffusion_feature', 'diffusion_prediction', 'diffusion_ablations',
         'baseline', 'xtc', 'jtr', 'denoiser_sync_norm')
TRAINED = CASES[:-1]

# ---------------------------------------------------------------------------
# recording collectives
# ---------------------------------------------------------------------------
_ALL_GATHER = dist.all_gather
_ALL_REDUCE = dist.all_reduce
#: Collectives of the running case in this process: 'op(shape) issuer'.
RECORD = []


def _collective(op, tensor, issuer, group, run):
    """Record a collective, check that every process issues the same one
    (name, shape, issuer) at this position, then run it."""
    entry = f'{op}{tuple(tensor.shape)} {issuer}'
    RECORD.append(entry)
    sig = torch.tensor([len(RECORD), zlib.crc32(entry.encode())])
    sigs = [torch.zeros_like(sig) for _ in range(dist.get_world_size(group))]
    _ALL_GATHER(sigs, sig, group=group)
    if any(not torch.equal(s, sig) for s in sigs):
        entries = [None] * len(sigs)
        dist.all_gather_object(entries, entry, group=group)
        raise AssertionError(
            f'collective #{len(RECORD)} differs between the processes: ' +
            '; '.join(f'rank {r}: {e}' for r, e in enumerate(entries)))
    return run()


def _recording_all_reduce(tensor,
                          op=dist.ReduceOp.SUM,
                          group=None,
                          async_op=False):
    """``dist.all_reduce`` as the model calls it, recorded."""
    return _collective(
        'all_reduce', tensor, 'model', group,
        lambda: _ALL_REDUCE(tensor, op=op, group=group, async_op=async_op))


def _recording_ddp_hook(group, bucket):
    """DDP's default all-reduce hook (average), recorded."""
    buf = bucket.buffer()
    buf.div_(dist.get_world_size(group))
    work = _collective('all_reduce', buf, f'DDP bucket {bucket.index()}',
                       group,
                       lambda: _ALL_REDUCE(buf, group=group, async_op=True))
    return work.get_future().then(lambda fut: fut.value()[0])


# ---------------------------------------------------------------------------
# SyncBN stand-in
# ---------------------------------------------------------------------------
class _ReplaySyncBNFunction(torch.autograd.Function):
    """``torch.nn.modules._functions.SyncBatchNorm`` in CPU operations."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum,
                group, name):
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        if x.numel() > 0:
            stats = torch.cat([
                x.mean(dims),
                x.var(dims, unbiased=False),
                x.new_tensor([x.numel() // c])
            ])
        else:  # an empty input still takes part, with count 0
            stats = x.new_zeros(2 * c + 1)
        gathered = [
            torch.empty_like(stats) for _ in range(dist.get_world_size(group))
        ]
        _collective('all_gather', stats, name, group,
                    lambda: _ALL_GATHER(gathered, stats, group=group))
        table = torch.stack(gathered)
        table = table[table[:, -1] >= 1]
        counts = table[:, -1:]
        total = counts.sum()
        mean = (table[:, :c] * counts).sum(0) / total
        var = ((table[:, c:2 * c] +
                (table[:, :c] - mean)**2) * counts).sum(0) / total
        invstd = torch.rsqrt(var + eps)
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * total /
                                                (total - 1))
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.total, ctx.group, ctx.name = total, group, name
        shape = (1, c) + (1, ) * (x.dim() - 2)
        y = (x - mean.view(shape)) * invstd.view(shape)
        if weight is not None:
            y = y * weight.view(shape) + bias.view(shape)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, mean, invstd = ctx.saved_tensors
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        shape = (1, c) + (1, ) * (x.dim() - 2)
        grad_in = grad_w = grad_b = None
        if x.numel() > 0:
            xmu = x - mean.view(shape)
            sum_dy = grad_out.sum(dims)
            sum_dy_xmu = (grad_out * xmu).sum(dims)
            if weight is not None and ctx.needs_input_grad[1]:
                grad_w = sum_dy_xmu * invstd
            if weight is not None and ctx.needs_input_grad[2]:
                grad_b = sum_dy
            if ctx.needs_input_grad[0]:
                combined = torch.cat([sum_dy, sum_dy_xmu])
                _collective('all_reduce', combined, ctx.name, ctx.group,
                            lambda: _ALL_REDUCE(combined, group=ctx.group))
                sum_dy, sum_dy_xmu = combined[:c], combined[c:]
                scale = invstd if weight is None else invstd * weight
                grad_in = (grad_out - (sum_dy / ctx.total).view(shape) - xmu *
                           (invstd**2 * sum_dy_xmu / ctx.total).view(shape)
                           ) * scale.view(shape)
        elif ctx.needs_input_grad[0]:
            zeros = x.new_zeros(2 * c)
            _collective('all_reduce', zeros, ctx.name, ctx.group,
                        lambda: _ALL_REDUCE(zeros, group=ctx.group))
        return grad_in, grad_w, grad_b, None, None, None, None, None, None


class ReplaySyncBN(nn.SyncBatchNorm):
    """``nn.SyncBatchNorm`` whose synchronised path runs on the CPU.

    Outside training or without a group of several processes it is BN,
    as ``nn.SyncBatchNorm``.
    """

    replay_name = ''

    def forward(self, x):
        group = self.process_group or dist.group.WORLD
        if not (self.training and dist.is_available()
                and dist.is_initialized() and dist.get_world_size(group) > 1):
            return _BatchNorm.forward(self, x)
        self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else \
            1.0 / float(self.num_batches_tracked)
        return _ReplaySyncBNFunction.apply(x, self.weight, self.bias,
                                           self.running_mean, self.running_var,
                                           self.eps, momentum, group,
                                           self.replay_name)


def use_replay_norms(model, group=None):
    """Replace every ``nn.SyncBatchNorm`` of ``model`` by a
    :class:`ReplaySyncBN` with its state, named after its path.

    Returns:
        list[str]: the replaced layers' names.
    """
    names = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, nn.SyncBatchNorm) or isinstance(
                    child, ReplaySyncBN):
                continue
            name = f'{parent_name}.{child_name}' if parent_name else \
                child_name
            layer = ReplaySyncBN(child.num_features, child.eps, child.momentum,
                                 child.affine, child.track_running_stats,
                                 group)
            layer.to(child.running_mean)
            layer.load_state_dict(child.state_dict())
            layer.train(child.training)
            layer.replay_name = name
            setattr(parent, child_name, layer)
            names.append(name)
    return names


# ---------------------------------------------------------------------------
# models and data
# ---------------------------------------------------------------------------
class GlobalNoise:
    """Training noise keyed by (iteration, global image index, task, step,
    kind), so one process over the union batch draws what two processes
    draw over their halves; ``offset`` is the process's first global
    index."""

    def __init__(self):
        self.iteration = 0
        self.offset = 0

    def __call__(self, task, step, kind, batch_idx, shape):
        rows = []
        for b in batch_idx.tolist():
            key = f'{self.iteration}|{self.offset + b}|{task}|{step}|{kind}'
            g = torch.Generator().manual_seed(
                int.from_bytes(
                    hashlib.sha256(key.encode()).digest()[:7], 'little'))
            rows.append(torch.randn(shape, generator=g, dtype=torch.float64))
        return torch.stack(rows) if rows else torch.zeros((0, ) + shape)


class KeyedViews(JTRViews):
    """JTR's views, each drawn with a generator keyed by (iteration,
    global image index, view), so that one process over the union batch
    draws what two draw over their halves (scale-crop and photometric
    augmentation both on)."""

    def __init__(self, noise, **kwargs):
        super().__init__(**kwargs)
        self.noise = noise

    def sample(self, num, size):
        batch = num // 2  # the model's two views, view-major
        rows = []
        for r in range(num):
            view, b = divmod(r, batch)
            key = (f'{self.noise.iteration}|{self.noise.offset + b}|'
                   f'view{view}')
            seed = int.from_bytes(
                hashlib.sha256(key.encode()).digest()[:7], 'little')
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                rows.append(super().sample(1, size))
        return ViewParams(*(torch.cat([getattr(p, f) for p in rows])
                            for f in ('scale', 'box', 'ops', 'bins', 'signs')))


def _with_sync_bn(cfg):
    cfg['backbone'] = dict(cfg['backbone'], norm_cfg=SYNC_BN)
    cfg['decoder'] = dict(cfg['decoder'], norm_cfg=SYNC_BN)
    return cfg


def build_case(case):
    """The case's model (float64, train mode, SyncBN layers still torch's)
    and its noise source (None without diffusion)."""
    torch.manual_seed(0)
    noise = None
    if case.startswith('diffusion') or case == 'denoiser_sync_norm':
        noise = GlobalNoise()
        kwargs = dict(diffusion_feature=dict(mode='feature'),
                      diffusion_prediction=dict(mode='prediction'),
                      diffusion_ablations=dict(mode='prediction',
                                               use_diffusion=False,
                                               multi_task_condition=False,
                                               detach_x_start=True,
                                               init_loss_weight=0.),
                      denoiser_sync_norm=dict(mode='feature'))[case]
        cfg = _with_sync_bn(tiny_diffusion_cfg(noise_fn=noise, **kwargs))
    elif case == 'baseline':
        cfg = _with_sync_bn(tiny_baseline_cfg())
    elif case == 'jtr':
        noise = GlobalNoise()
        seg = dict(mode='softmax')  # no Gumbel noise
        cfg = _with_sync_bn(
            tiny_baseline_cfg(
                type='JTRMultiTaskBaseline',
                jtr_net=dict(widths=(4, 4, 4, 4, 4), norm_cfg=SYNC_BN),
                jtr_loss=dict(encodings=dict(semseg=seg, human_parts=seg)),
                views=KeyedViews(noise)))
    else:
        cfg = _with_sync_bn(
            tiny_baseline_cfg(type='XTCMultiTaskBaseline',
                              mapper=dict(type='FiLMResNetMapper',
                                          stem_channels=8,
                                          base_channels=8,
                                          norm_cfg=SYNC_BN),
                              seg_encoding='softmax'))
    model = MODELS.build(cfg)
    if case == 'denoiser_sync_norm':
        model.denoiser.norm = nn.SyncBatchNorm(4)
    return model.double().train(), noise


def rank_batch(iteration, rank):
    """(inputs (B, 3, H, W) float64, samples) of ``rank`` at
    ``iteration``."""
    inputs, samples = make_batch(SCHEDULE[iteration][rank],
                                 size=SIZE,
                                 seed=100 * iteration + rank)
    return inputs.double(), samples


def union_batch(iteration):
    parts = [rank_batch(iteration, r) for r in range(WORLD)]
    return (torch.cat([p[0] for p in parts]), [s for p in parts for s in p[1]])


class SnapshotOptimWrapper(OptimWrapper):
    """Keeps each step's gradients (None where a parameter has none)."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.named = list(model.named_parameters())
        self.snapshots = []

    def step(self, **kwargs):
        self.snapshots.append({
            n:
            None if p.grad is None else p.grad.detach().clone()
            for n, p in self.named
        })
        super().step(**kwargs)


def _optim_wrapper(model):
    return SnapshotOptimWrapper(model,
                                optimizer=torch.optim.SGD(model.parameters(),
                                                          lr=0.01))


# ---------------------------------------------------------------------------
# the two processes
# ---------------------------------------------------------------------------
def _run_case(case, rank, group):
    RECORD.clear()
    model, noise = build_case(case)
    layers = use_replay_norms(model, group)
    ddp = MMDistributedDataParallel(module=model,
                                    device_ids=None,
                                    find_unused_parameters=True,
                                    process_group=group)
    ddp.register_comm_hook(group, _recording_ddp_hook)
    optim = _optim_wrapper(model)
    iterations, losses = [], []
    for it in range(len(SCHEDULE)):
        inputs, samples = rank_batch(it, rank)
        if noise is not None:
            noise.iteration = it
            noise.offset = sum(len(m) for m in SCHEDULE[it][:rank])
        start = len(RECORD)
        log_vars = ddp.train_step(dict(inputs=inputs, data_samples=samples),
                                  optim)
        iterations.append(RECORD[start:])
        losses.append(float(log_vars['loss'].detach()))
    return dict(error=None,
                layers=layers,
                iterations=iterations,
                losses=losses,
                grads=[optim.snapshots[i] for i in EQUAL_SIZE_ITERS])


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    timeout = datetime.timedelta(seconds=90)
    dist.init_process_group('gloo',
                            rank=rank,
                            world_size=WORLD,
                            timeout=timeout)
    dist.all_reduce = _recording_all_reduce
    # DDP refuses SyncBatchNorm layers in CPU modules, since torch's run on
    # GPUs only; ReplaySyncBN runs on the CPU.
    DistributedDataParallel._passing_sync_batchnorm_handle = \
        lambda self, module: None
    results = {}
    for case in CASES:
        try:
            group = dist.new_group(backend='gloo', timeout=timeout)
            results[case] = _run_case(case, rank, group)
        except Exception as exc:  # reported per case by the tests
            results[case] = dict(error=f'{type(exc).__name__}: {exc}',
                                 trace=traceback.format_exc(),
                                 record=list(RECORD))
        torch.save(results, os.path.join(out_dir, f'rank{rank}.pt'))
    sys.stdout.flush()
    sys.stderr.flush()
    # skip gloo's C++ teardown, which can abort after the work is done
    os._exit(0)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def replay(tmp_path_factory):
    """Both processes' results, ``[rank0, rank1]``, each ``{case: ...}``."""
    out_dir = tmp_path_factory.mktemp('collectives')
    ctx = mp.start_processes(_worker,
                             args=(_free_port(), str(out_dir)),
                             nprocs=WORLD,
                             join=False,
                             start_method='spawn')
    deadline = time.monotonic() + 900
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail('the two training processes did not finish')
    return [
        torch.load(out_dir / f'rank{r}.pt', weights_only=True)
        for r in range(WORLD)
    ]


def _case(replay, case):
    results = [r[case] for r in replay]
    for rank, res in enumerate(results):
        assert res['error'] is None, (
            f'{case}, rank {rank}: {res["error"]}\n{res.get("trace", "")}')
    return results


@pytest.mark.parametrize('case', TRAINED)
def test_processes_issue_the_same_collectives(replay, case):
    results = _case(replay, case)
    first, second = results
    assert len(first['iterations']) == len(SCHEDULE) == 4
    assert first['iterations'] == second['iterations']
    assert first['layers'] == second['layers'] and first['layers']
    for it, calls in enumerate(first['iterations']):
        # every SyncBN layer that gathered statistics reduced its
        # gradient statistics in the same iteration, as often
        for name in first['layers']:
            gathers = sum(
                c.startswith('all_gather(') and c.endswith(f' {name}')
                for c in calls)
            reduces = sum(
                c.startswith('all_reduce(') and c.endswith(f' {name}')
                for c in calls)
            assert gathers == reduces, (case, it, name, gathers, reduces)
        assert any(c.endswith(' backbone.bn1') for c in calls)
    assert all(
        torch.isfinite(torch.tensor(r['losses'])).all() for r in results)


@pytest.mark.parametrize('case', TRAINED)
def test_gradients_equal_one_process_over_the_union(replay, case):
    results = _case(replay, case)
    model, noise = build_case(case)
    use_replay_norms(model)  # BN: no process group
    optim = _optim_wrapper(model)
    for it in EQUAL_SIZE_ITERS:
        if noise is not None:
            noise.iteration, noise.offset = it, 0
        inputs, samples = union_batch(it)
        model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    for i, it in enumerate(EQUAL_SIZE_ITERS):
        ref = optim.snapshots[i]
        for rank, res in enumerate(results):
            got = res['grads'][i]
            assert got.keys() == ref.keys()
            for name, g_ref in ref.items():
                g = got[name]
                if g_ref is None:
                    assert g is None or not bool(g.any()), (case, it, name)
                    continue
                assert g is not None, (case, it, rank, name)
                torch.testing.assert_close(
                    g,
                    g_ref,
                    rtol=CASE_TOLERANCES.get(case, (RTOL, ATOL))[0],
                    atol=CASE_TOLERANCES.get(case, (RTOL, ATOL))[1],
                    msg=lambda m: f'{case}, iteration {it}, rank {rank}, '
                    f'{name}: {m}')


def test_denoiser_with_synchronised_norms_is_refused(replay):
    for rank in range(WORLD):
        error = replay[rank]['denoiser_sync_norm']['error']
        assert error is not None and error.startswith('ValueError'), error
        assert 'denoiser holds synchronised norms' in error
