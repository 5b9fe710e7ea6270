# Copyright (c) diffmtl contributors. All rights reserved.
"""One-command check of diffmtl on a GPU machine (CPU-side parts anywhere).

Meant for a bare machine with a CUDA build of torch (Python 3.12) and
nothing else, without network: the other packages come as pure-Python
wheels from a folder (``--wheels``; ``docs/en/gpu.md`` says how to fill
it) and are installed into a scratch ``--target`` folder put on
``PYTHONPATH``. In order:

1. ``environment``: Python, torch, CUDA, GPU;
2. ``install`` (with ``--wheels``) and ``imports`` (mmengine, mmcv, mmseg,
   diffmtl and pytest import, versions);
3. ``cuda_tests``: ``pytest -m cuda`` (CPU vs CUDA logits, seeded noise on
   CUDA, RNG round trip, AMP steps, no host sync in the training forward);
4. ``collective_safety``: ``tests/test_models/test_collective_safety.py``
   (two processes, SyncBN replayed over gloo on the CPU; that test offers
   no real-SyncBN/NCCL mode, and NCCL refuses two ranks on one GPU; pass
   environment variables to it with ``--collective-env KEY=VALUE``);
5. ``benchmark``: ``tools/analysis_tools/benchmark_gpu.py`` on
   ``configs/diffmtl/pascal_one_r18.py`` and
   ``configs/baselines/mtl_baseline_pascal_one_r18.py`` at 512x512, batch
   6, random weights and one-label data: s/iter, images/s, peak GiB in
   fp32, AMP fp16, AMP bf16; inference ms per image with and without
   seeded noise;
6. ``synthetic_data``: ``make_synthetic_scenes.py`` (a small set);
7. ``train``: ``tools/train.py --amp`` for 60 iterations
   (``configs/diffmtl/synthetic_one_r18.py``, with
   ``env_cfg.cudnn_benchmark``, ``pin_memory`` and non-blocking copies on);
8. ``resume``: ``--resume`` on to iteration 80;
9. ``test_gpu``, ``test_cpu``, ``compare``: ``tools/test.py`` of
   ``iter_80.pth`` on the GPU and on the CPU, without inference noise (the
   metrics must agree within ``0.05 + 1e-2 |cpu|``) and with the seeded
   noise (reported only: CPU and CUDA draw different noise).

It writes ``gpu_check.json`` (every step: status, seconds, details) and
``gpu_check.md`` (a short table, with the benchmark tables) into ``--out``
(default ``$OUT`` when set, else ``work_dirs/gpu_check``); the logs of
each command go to ``<out>/logs/``. Without CUDA it says so and runs the
CPU-side parts only, on small settings (``--dry-run`` forces those
settings on a GPU machine too). Exit status 0 when no step failed.

Examples::

    bash tools/misc/gpu_check.sh --wheels .whl --target /tmp/site
    python tools/misc/gpu_check.py --dry-run --out /tmp/gpu_check
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

__all__ = ['SETTINGS', 'compare_metrics', 'GpuCheck', 'parse_args', 'main']

#: Settings of a full run on a GPU and of the CPU / ``--dry-run`` run.
SETTINGS = {
    'gpu': dict(
        bench_configs=['configs/diffmtl/pascal_one_r18.py',
                       'configs/baselines/mtl_baseline_pascal_one_r18.py'],
        bench_args=['--size', '512', '--batch', '6', '--iters', '10',
                    '--warmup', '3', '--infer-images', '5'],
        scenes=dict(train=240, val=16, test=48, workers=8),
        train_iters=60, resume_iters=80, checkpoint_interval=20,
        batch=8, workers=4, amp=True),
    'cpu': dict(
        bench_configs=['configs/diffmtl/synthetic_one_r18.py',
                       'configs/baselines/mtl_baseline_synthetic_one_r18.py'],
        bench_args=['--size', '64', '--batch', '2', '--iters', '1',
                    '--warmup', '1', '--infer-images', '1',
                    '--precisions', 'fp32'],
        scenes=dict(train=8, val=4, test=4, workers=1),
        train_iters=2, resume_iters=4, checkpoint_interval=2,
        batch=2, workers=0, amp=False),
}
TRAIN_CONFIG = 'configs/diffmtl/synthetic_one_r18.py'
#: ``compare``: |gpu - cpu| <= ABS_TOL + REL_TOL * |cpu| per metric.
ABS_TOL, REL_TOL = 0.05, 1e-2


def compare_metrics(gpu: Dict[str, float],
                    cpu: Dict[str, float]) -> Dict[str, object]:
    """GPU minus CPU metrics and those beyond the tolerance.

    Returns:
        dict: ``diffs`` (``{metric: gpu - cpu}`` over the shared metrics),
        ``beyond`` (those with ``|diff| > ABS_TOL + REL_TOL * |cpu|``),
        ``worst`` (the metric of the largest ``|diff|``, None without
        shared metrics) and ``ok`` (shared metrics and none beyond).
    """
    diffs = {k: gpu[k] - cpu[k] for k in cpu if k in gpu}
    beyond = {
        k: d for k, d in diffs.items()
        if abs(d) > ABS_TOL + REL_TOL * abs(cpu[k])
    }
    worst = max(diffs, key=lambda k: abs(diffs[k])) if diffs else None
    return dict(diffs=diffs, beyond=beyond, worst=worst,
                ok=bool(diffs) and not beyond)


class GpuCheck:
    """The steps, their records and the report.

    Args:
        args (argparse.Namespace): Parsed command line.
    """

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = osp.abspath(args.out or os.environ.get('OUT') or
                               osp.join(REPO, 'work_dirs', 'gpu_check'))
        self.logs = osp.join(self.out, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.env = dict(os.environ)
        self.steps: List[dict] = []
        self.cuda = False
        self.mode = 'cpu'
        self.started = time.monotonic()

    # -- helpers -----------------------------------------------------------
    def record(self, name: str, status: str, seconds: float,
               **details) -> dict:
        step = dict(name=name, status=status, seconds=round(seconds, 1),
                    **details)
        self.steps.append(step)
        note = details.get('note') or details.get('error') or ''
        print(f'[gpu_check] {name}: {status} ({seconds:.1f} s)'
              + (f' - {note}' if note else ''), flush=True)
        return step

    def skip(self, name: str, why: str) -> dict:
        return self.record(name, 'skipped', 0., note=why)

    def run(self, name: str, cmd: List[str], timeout: int,
            env: Optional[Dict[str, str]] = None) -> dict:
        """Run ``cmd`` in the repository, log to ``logs/<name>.log``;
        returns ``dict(rc, seconds, log, tail)``."""
        log = osp.join(self.logs, f'{name}.log')
        t0 = time.monotonic()
        with open(log, 'w') as f:
            f.write('$ ' + ' '.join(shlex.quote(c) for c in cmd) + '\n')
            f.flush()
            try:
                proc = subprocess.run(cmd, cwd=REPO, env=env or self.env,
                                      stdout=f, stderr=subprocess.STDOUT,
                                      timeout=timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = 'timeout'
        with open(log) as f:
            tail = f.read()[-1500:]
        return dict(rc=rc, seconds=time.monotonic() - t0, log=log, tail=tail)

    def simple(self, name: str, cmd: List[str], timeout: int,
               env: Optional[Dict[str, str]] = None, **details) -> dict:
        res = self.run(name, cmd, timeout, env)
        ok = res['rc'] == 0
        return self.record(
            name, 'ok' if ok else 'failed', res['seconds'], log=res['log'],
            **details, **({} if ok else dict(error=f"exit {res['rc']}",
                                             tail=res['tail'])))

    # -- steps -------------------------------------------------------------
    def environment(self) -> None:
        t0 = time.monotonic()
        info = dict(python=platform.python_version(), machine=platform.node(),
                    cpus=os.cpu_count())
        try:
            import torch
            self.cuda = torch.cuda.is_available()
            info.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                        cuda_available=self.cuda)
            if self.cuda:
                info['gpu'] = torch.cuda.get_device_name()
                free, total = torch.cuda.mem_get_info()
                info['gpu_memory_gib'] = round(total / 2**30, 1)
        except ImportError as err:
            info['torch'] = f'not importable: {err}'
        self.mode = 'gpu' if self.cuda and not self.args.dry_run else 'cpu'
        info['mode'] = self.mode
        note = None
        if not self.cuda:
            note = ('no CUDA device: running the CPU-side parts only, on '
                    'small settings')
        elif self.args.dry_run:
            note = '--dry-run: the CPU settings, on the GPU'
        self.record('environment', 'ok', time.monotonic() - t0,
                    note=note, **info)

    def install(self) -> bool:
        if not self.args.wheels:
            self.skip('install', 'no --wheels given: using the packages '
                      'Python finds')
        else:
            wheels = sorted(glob.glob(osp.join(self.args.wheels, '*.whl')))
            if not wheels:
                self.record('install', 'failed', 0.,
                            error=f'no *.whl in {self.args.wheels}')
                return False
            target = osp.abspath(self.args.target)
            res = self.simple(
                'install', [
                    sys.executable, '-m', 'pip', 'install', '-q',
                    '--no-index', '--no-deps', '--no-compile', '--upgrade',
                    '--target', target
                ] + wheels, 600, wheels=[osp.basename(w) for w in wheels],
                target=target)
            if res['status'] != 'ok':
                return False
            path = self.env.get('PYTHONPATH')
            self.env['PYTHONPATH'] = target + (os.pathsep + path
                                               if path else '')
        code = ('import json, mmengine, mmcv, mmseg, pytest, diffmtl; '
                'print(json.dumps(dict(mmengine=mmengine.__version__, '
                'mmcv=mmcv.__version__, mmseg=mmseg.__version__, '
                'pytest=pytest.__version__)))')
        res = self.run('imports', [sys.executable, '-c', code], 300)
        if res['rc'] != 0:
            self.record('imports', 'failed', res['seconds'], log=res['log'],
                        error='a package does not import', tail=res['tail'])
            return False
        versions = json.loads(res['tail'].strip().splitlines()[-1])
        self.record('imports', 'ok', res['seconds'], **versions)
        return True

    def pytest_step(self, name: str, args: List[str], timeout: int,
                    env: Optional[Dict[str, str]] = None,
                    note: Optional[str] = None) -> dict:
        junit = osp.join(self.logs, f'{name}.xml')
        res = self.run(name, [
            sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
            f'--junitxml={junit}'
        ] + args, timeout, env)
        counts = dict(tests=0, failures=0, errors=0, skipped=0)
        failed_names = []
        if osp.isfile(junit):
            root = ET.parse(junit).getroot()
            suites = [root] if root.tag == 'testsuite' else list(root)
            for suite in suites:
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
                for case in suite.iter('testcase'):
                    if case.find('failure') is not None or \
                            case.find('error') is not None:
                        failed_names.append(case.get('name'))
        counts['passed'] = (counts['tests'] - counts['failures'] -
                            counts['errors'] - counts['skipped'])
        ok = res['rc'] == 0
        status = 'ok' if ok else 'failed'
        if ok and counts['tests'] and counts['skipped'] == counts['tests']:
            status = 'skipped'
        details = dict(counts=counts, log=res['log'])
        if note:
            details['note'] = note
        if not ok:
            details.update(error=f"exit {res['rc']}", failed=failed_names,
                           tail=res['tail'])
        return self.record(name, status, res['seconds'], **details)

    def cuda_tests(self) -> None:
        note = None if self.cuda else 'no CUDA: collected and skipped'
        self.pytest_step('cuda_tests', ['-m', 'cuda', 'tests'], 480,
                         note=note)

    def collective_safety(self) -> None:
        path = 'tests/test_models/test_collective_safety.py'
        if self.mode == 'cpu':
            self.skip('collective_safety',
                      f'CPU settings: run `pytest {path}` on its own (a '
                      'few minutes on 2 cores)')
            return
        if not osp.isfile(osp.join(REPO, path)):
            self.record('collective_safety', 'failed', 0.,
                        error=f'{path} is missing')
            return
        env = dict(self.env)
        for item in self.args.collective_env or []:
            key, _, value = item.partition('=')
            env[key] = value
        note = ('2 processes replaying SyncBN over gloo on the CPU (the test '
                'offers no real-SyncBN/NCCL mode; NCCL refuses two ranks on '
                'one GPU)')
        if self.args.collective_env:
            note = f'with {self.args.collective_env}'
        self.pytest_step('collective_safety', [path], 480, env=env,
                         note=note)

    def benchmark(self) -> None:
        s = SETTINGS[self.mode]
        out = osp.join(self.out, 'benchmark.json')
        res = self.run('benchmark', [
            sys.executable, 'tools/analysis_tools/benchmark_gpu.py',
            *s['bench_configs'], *s['bench_args'], '--out', out
        ], 900)
        if res['rc'] != 0 or not osp.isfile(out):
            self.record('benchmark', 'failed', res['seconds'],
                        log=res['log'], error=f"exit {res['rc']}",
                        tail=res['tail'])
            return
        with open(out) as f:
            data = json.load(f)
        bad = [
            f"{osp.basename(r['config'])} {t['precision']}"
            for r in data['results'] for t in r['train']
            if t['status'] == 'ok' and not t['finite']
        ] + [
            f"{osp.basename(r['config'])} {t['precision']}: {t['status']}"
            for r in data['results'] for t in r['train']
            if t['status'].startswith('error')
        ]
        self.record('benchmark', 'failed' if bad else 'ok', res['seconds'],
                    log=res['log'], results=data, json=out,
                    **(dict(error=f'non-finite or failed: {bad}')
                       if bad else {}))

    def synthetic_data(self) -> Optional[str]:
        s = SETTINGS[self.mode]['scenes']
        root = osp.join(self.out, 'synthetic_scenes')
        res = self.simple('synthetic_data', [
            sys.executable, 'tools/dataset_converters/make_synthetic_scenes.py',
            '--out', root, '--num-train', str(s['train']), '--num-val',
            str(s['val']), '--num-test', str(s['test']), '--workers',
            str(s['workers'])
        ], 600, root=root, **s)
        return root if res['status'] == 'ok' else None

    def _options(self, root: str, max_iters: int) -> List[str]:
        s = SETTINGS[self.mode]
        opts = [
            f'train_cfg.max_iters={max_iters}',
            f'train_cfg.val_interval={10 * max_iters}',
            f"default_hooks.checkpoint.interval={s['checkpoint_interval']}",
            'default_hooks.checkpoint.max_keep_ckpts=10',
            'default_hooks.logger.interval=10',
            f"train_dataloader.batch_size={s['batch']}",
            'randomness.seed=0',
        ]
        for loader in ('train', 'val', 'test'):
            opts += [
                f"{loader}_dataloader.num_workers={s['workers']}",
                f'{loader}_dataloader.persistent_workers=False',
                f'{loader}_dataloader.dataset.data_root={root}',
            ]
        if self.mode == 'gpu':
            opts += [
                'env_cfg.cudnn_benchmark=True',
                'train_dataloader.pin_memory=True',
                'model.data_preprocessor.non_blocking=True',
            ]
        return opts

    def train(self, root: str) -> Optional[str]:
        s = SETTINGS[self.mode]
        work = osp.join(self.out, 'train')
        amp = ['--amp'] if s['amp'] else []
        base = [sys.executable, 'tools/train.py', TRAIN_CONFIG,
                '--work-dir', work] + amp
        res = self.simple(
            'train', base + ['--cfg-options'] +
            self._options(root, s['train_iters']), 900,
            iters=s['train_iters'], amp=bool(amp))
        first = osp.join(work, f"iter_{s['train_iters']}.pth")
        if res['status'] != 'ok' or not osp.isfile(first):
            if res['status'] == 'ok':
                res.update(status='failed', error=f'{first} missing')
            return None
        res['losses'] = self._losses(work)
        res = self.simple(
            'resume', base + ['--resume', '--cfg-options'] +
            self._options(root, s['resume_iters']), 900,
            iters=s['resume_iters'])
        last = osp.join(work, f"iter_{s['resume_iters']}.pth")
        if res['status'] == 'ok':
            with open(res['log']) as f:
                log = f.read()
            # mmengine logs "resumed epoch: E, iter: I" after loading
            resumed = f"iter: {s['train_iters']}" in log and \
                'resumed' in log.lower()
            if not osp.isfile(last) or not resumed:
                res.update(status='failed',
                           error=f'no {last}' if not osp.isfile(last) else
                           'the log does not show a resume')
            res['losses'] = self._losses(work)
        return last if res['status'] == 'ok' else None

    @staticmethod
    def _losses(work: str) -> Dict[str, object]:
        """Last logged total loss and whether every logged one is
        finite (``vis_data/scalars.json`` of the newest run)."""
        files = sorted(glob.glob(osp.join(work, '*', 'vis_data',
                                          'scalars.json')))
        values = []
        for path in files:
            with open(path) as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if 'loss' in row:
                        values.append(float(row['loss']))
        finite = all(v == v and abs(v) != float('inf') for v in values)
        return dict(logged=len(values), last=values[-1] if values else None,
                    all_finite=finite)

    def _test(self, name: str, ckpt: str, root: str, device: str,
              noise: bool) -> Optional[Dict[str, float]]:
        work = osp.join(self.out, name)
        env = dict(self.env)
        if device == 'cpu':
            env['CUDA_VISIBLE_DEVICES'] = ''
        opts = self._options(root, SETTINGS[self.mode]['resume_iters'])
        opts += ['test_dataloader.dataset.split=test']
        if not noise:
            opts.append('model.inference_noise=False')
        res = self.simple(name, [
            sys.executable, 'tools/test.py', TRAIN_CONFIG, ckpt,
            '--work-dir', work, '--cfg-options'
        ] + opts, 900, env=env, device=device, inference_noise=noise)
        if res['status'] != 'ok':
            return None
        metrics = self._metrics(work)
        if not metrics:
            res.update(status='failed', error=f'no metrics json in {work}')
            return None
        res['metrics'] = metrics
        return metrics

    @staticmethod
    def _metrics(work: str) -> Dict[str, float]:
        """Float metrics of the newest ``<work>/<stamp>/<stamp>.json``."""
        files = sorted(glob.glob(osp.join(work, '*', '*.json')))
        for path in reversed(files):
            with open(path) as f:
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
            for line in reversed(lines):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                metrics = {k: float(v) for k, v in row.items()
                           if isinstance(v, (int, float)) and '/' in k}
                if metrics:
                    return metrics
        return {}

    def test_and_compare(self, ckpt: str, root: str) -> None:
        if self.mode == 'gpu':
            quiet = dict(cuda=self._test('test_gpu', ckpt, root, 'cuda',
                                         False),
                         cpu=self._test('test_cpu', ckpt, root, 'cpu', False))
            noisy = dict(
                cuda=self._test('test_gpu_seeded', ckpt, root, 'cuda', True),
                cpu=self._test('test_cpu_seeded', ckpt, root, 'cpu', True))
        else:
            self.skip('test_gpu', 'no CUDA device' if not self.cuda else
                      '--dry-run')
            self._test('test_cpu', ckpt, root, 'cpu', False)
            self.skip('compare', 'needs the GPU metrics')
            return
        if not (quiet['cuda'] and quiet['cpu']):
            self.record('compare', 'failed', 0.,
                        error='a test run has no metrics')
            return
        result = compare_metrics(quiet['cuda'], quiet['cpu'])
        seeded = {}
        if noisy['cuda'] and noisy['cpu']:
            seeded = compare_metrics(noisy['cuda'], noisy['cpu'])['diffs']
        worst = result['worst']
        self.record(
            'compare', 'ok' if result['ok'] else 'failed', 0.,
            tolerance=f'{ABS_TOL} + {REL_TOL} |cpu|',
            metrics=len(result['diffs']), worst=worst,
            worst_diff=result['diffs'].get(worst), beyond=result['beyond'],
            seeded_noise_diffs=seeded,
            note='noise-free GPU vs CPU metrics; seeded-noise deltas are '
            'informational (CPU and CUDA draw different noise)')

    # -- report ------------------------------------------------------------
    def report(self) -> int:
        total = time.monotonic() - self.started
        failed = [s['name'] for s in self.steps if s['status'] == 'failed']
        data = dict(mode=self.mode, cuda=self.cuda,
                    seconds=round(total, 1), failed=failed,
                    steps=self.steps)
        with open(osp.join(self.out, 'gpu_check.json'), 'w') as f:
            json.dump(data, f, indent=2, default=str)
        lines = [
            f'# gpu_check ({self.mode} mode, '
            f"{'CUDA' if self.cuda else 'no CUDA'}), {total:.0f} s", '',
            '| step | status | s | note |', '|---|---|---|---|'
        ]
        for s in self.steps:
            note = s.get('error') or s.get('note') or ''
            if 'counts' in s:
                c = s['counts']
                note = (f"{c['passed']} passed, {c['skipped']} skipped, "
                        f"{c['failures'] + c['errors']} failed. " + note)
            lines.append(f"| {s['name']} | {s['status']} | {s['seconds']} "
                         f"| {note.replace('|', '/')[:200]} |")
        bench = next((s for s in self.steps if s['name'] == 'benchmark'
                      and 'results' in s), None)
        if bench is not None:
            sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
            from benchmark_gpu import markdown_table
            lines += ['', f"Benchmark on {bench['results']['device']}:", '',
                      markdown_table(bench['results']['results'])]
        text = '\n'.join(lines) + '\n'
        with open(osp.join(self.out, 'gpu_check.md'), 'w') as f:
            f.write(text)
        print(text)
        print(f'[gpu_check] report: {osp.join(self.out, "gpu_check.json")}')
        return 1 if failed else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Check diffmtl on a GPU machine (CPU parts anywhere)')
    p.add_argument('--wheels', help='folder of pure-Python wheels to install '
                   'first (docs/en/gpu.md)')
    p.add_argument('--target', default='/tmp/diffmtl_site',
                   help='where --wheels are installed (put on PYTHONPATH)')
    p.add_argument('--out', help='report folder (default: $OUT, else '
                   'work_dirs/gpu_check)')
    p.add_argument('--dry-run', action='store_true',
                   help='the small CPU settings even on a GPU machine')
    p.add_argument('--skip', nargs='+', default=[],
                   choices=['cuda_tests', 'collective_safety', 'benchmark',
                            'train'],
                   help='steps to leave out (train: data, training, resume, '
                   'tests)')
    p.add_argument('--collective-env', nargs='+', metavar='KEY=VALUE',
                   help='environment of the collective_safety step')
    return p.parse_args(argv)


def main(argv=None) -> int:
    check = GpuCheck(parse_args(argv))
    check.environment()
    if check.install():
        skip = set(check.args.skip)
        for name, step in [('cuda_tests', check.cuda_tests),
                           ('collective_safety', check.collective_safety),
                           ('benchmark', check.benchmark)]:
            if name in skip:
                check.skip(name, '--skip')
            else:
                step()
        if 'train' in skip:
            check.skip('train', '--skip')
        else:
            root = check.synthetic_data()
            ckpt = check.train(root) if root else None
            if ckpt:
                check.test_and_compare(ckpt, root)
    return check.report()


if __name__ == '__main__':
    sys.exit(main())
