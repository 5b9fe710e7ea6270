# Copyright (c) diffmtl contributors. All rights reserved.
"""--check-data decodes every listed file before the run: a damaged image
late in the list stops tools/test.py before the first batch, naming it."""
import pytest
from mmengine.config import Config
from out_components import config_text, write_checkpoint, write_folder
from tool_runner import run_tool

from diffmtl.utils.tool_cfg import enable_data_check


def test_enable_data_check_reaches_wrapped_diffmtl_datasets():
    folder = dict(type='FolderMultiTaskDataset', data_root='x')
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(
            type='ConcatDataset',
            datasets=[dict(folder),
                      dict(type='RepeatDataset', times=2,
                           dataset=dict(folder))])),
        val_dataloader=dict(dataset=dict(folder))))
    enable_data_check(cfg)
    train = cfg.train_dataloader.dataset
    assert train.datasets[0].check_data is True
    assert train.datasets[1].dataset.check_data is True
    assert 'check_data' not in train and 'check_data' not in train.datasets[1]
    assert cfg.val_dataloader.dataset.check_data is True
    with pytest.raises(ValueError, match='none of .* has a diffmtl dataset'):
        enable_data_check(Config(dict(train_dataloader=dict(
            dataset=dict(type='ToyRegressionDataset')))))


@pytest.mark.slow
def test_test_tool_check_data_names_a_damaged_late_image(tmp_path):
    data = write_folder(str(tmp_path / 'data'))
    bad = tmp_path / 'data' / 'images' / '005.png'
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(config_text(data))
    ckpt = write_checkpoint(str(cfg), str(tmp_path / 'ckpt.pth'))
    proc = run_tool('test.py', [cfg, ckpt, '--work-dir', tmp_path / 'work',
                                '--check-data'], cwd=tmp_path)
    assert proc.returncode != 0
    assert '1 of 6 samples cannot be loaded' in proc.stdout
    assert str(bad) in proc.stdout
    assert 'Iter(test)' not in proc.stdout  # stopped before the first batch
