# Copyright (c) diffmtl contributors. All rights reserved.
"""The study summary's paired table: per-seed differences to the
reference arm's run of the same seed, signed so that > 0 is better."""
import pytest

from diffmtl.utils.study import load_study, summary_markdown


def _arm(name, seeds, **metrics):
    return dict(name=name, n=len(seeds), seeds=seeds, diagnostic=False,
                metrics={k: dict(mean=sum(v) / len(v), std=None, n=len(v),
                                 values=v) for k, v in metrics.items()})


def test_paired_table_values_signs_and_common_seeds():
    ref = _arm('base', [0, 1, 2], **{'semseg/mIoU': [50.0, 40.0, 45.0],
                                     'depth/absErr': [1.0, 2.0, 1.5],
                                     'delta_m': [1.0, -1.0, 0.0]})
    # seeds 0 and 2 in common; semseg +2 and -4; depth (lower is better)
    # 0.9 vs 1.0 and 1.7 vs 1.5 -> +0.1 and -0.2; delta-m +2 and -1
    arm = _arm('new', [0, 2], **{'semseg/mIoU': [52.0, 41.0],
                                 'depth/absErr': [0.9, 1.7],
                                 'delta_m': [3.0, -1.0]})
    summary = dict(study='s', seeds=[0, 1, 2], reference='base',
                   arms=[ref, arm])
    text = summary_markdown(summary, ['semseg', 'depth'])
    paired = text[text.index('## Paired against `base`'):]
    rows = [ln for ln in paired.splitlines() if ln.startswith('| new')]
    assert rows == [
        '| new | semseg/mIoU | -1.00 ± 4.24 | 1/2 | 0, 2 |',
        '| new | depth/absErr | -0.0500 ± 0.2121 | 1/2 | 0, 2 |',
        '| new | delta_m | +0.50 ± 2.12 | 1/2 | 0, 2 |',
    ]
    assert '| base |' not in paired  # the reference is not paired with itself


def test_no_paired_table_without_a_finished_reference():
    arm = _arm('new', [0], **{'semseg/mIoU': [52.0]})
    summary = dict(study='s', seeds=[0], reference='base',
                   arms=[_arm('base', [], ), arm])
    summary['arms'][0]['n'] = 0
    assert 'Paired' not in summary_markdown(summary, ['semseg'])


def test_comparisons_table_pairs_arbitrary_arms():
    full = _arm('full', [0, 1], **{'semseg/mIoU': [50.0, 40.0],
                                   'delta_m': [1.0, -1.0]})
    abl = _arm('abl', [0, 1], **{'semseg/mIoU': [47.0, 39.0],
                                 'delta_m': [-2.0, -1.5]})
    base = _arm('base', [0, 1], **{'semseg/mIoU': [45.0, 45.0],
                                   'delta_m': [0.0, 0.0]})
    summary = dict(study='s', seeds=[0, 1], reference='base',
                   arms=[base, full, abl],
                   comparisons=[['abl', 'full']])
    text = summary_markdown(summary, ['semseg'])
    part = text[text.index('## Paired comparisons'):]
    rows = [ln for ln in part.splitlines() if ln.startswith('| abl - full')]
    # semseg -3 and -1; delta-m -3 and -0.5
    assert rows == [
        '| abl - full | semseg/mIoU | -2.00 ± 1.41 | 0/2 | 0, 1 |',
        '| abl - full | delta_m | -1.75 ± 1.77 | 0/2 | 0, 1 |',
    ]
    # the reference table is unchanged: every arm against `base`
    ref_part = text[text.index('## Paired against `base`'):
                    text.index('## Paired comparisons')]
    assert '| full | semseg/mIoU | +0.00 ± 7.07 | 1/2 | 0, 1 |' in ref_part


def test_comparisons_are_validated(tmp_path):
    study = tmp_path / 'study.py'
    study.write_text(
        "seeds = [0]\n"
        "arms = [dict(name='a', config='configs/diffmtl/synthetic_one_r18.py'),"
        " dict(name='b', eval_of='a')]\n"
        "comparisons = [('b', 'c')]\n")
    with pytest.raises(ValueError, match="comparisons.*'b', 'c'"):
        load_study(str(study))
    study.write_text(study.read_text().replace("('b', 'c')", "('b', 'a')"))
    assert load_study(str(study))['comparisons'] == [('b', 'a')]


def test_train_minutes_mark_resumed_runs():
    fresh = _arm('fresh', [0, 1], **{'semseg/mIoU': [50.0, 40.0]})
    fresh['train_seconds'] = dict(mean=600.0, values=[540.0, 660.0],
                                  resumed=[False, False])
    cont = _arm('cont', [0, 1], **{'semseg/mIoU': [50.0, 40.0]})
    cont['train_seconds'] = dict(mean=300.0, values=[240.0, 360.0],
                                 resumed=[False, True])
    summary = dict(study='s', seeds=[0, 1], reference='fresh',
                   arms=[fresh, cont])
    text = summary_markdown(summary, ['semseg'])
    main_table = text[:text.index('## Paired')]
    rows = {ln.split(' | ')[0][2:]: ln for ln in main_table.splitlines()
            if ln.startswith('| fresh |') or ln.startswith('| cont |')}
    assert rows['fresh'].endswith('| 10.0 |')
    assert rows['cont'].endswith('| 5.0† |')
    assert '† mean over seeds' in text
    # without a resumed run there is no footnote
    summary['arms'] = [fresh]
    assert '†' not in summary_markdown(summary, ['semseg'])


def test_initial_delta_m_row_pairs_initial_predictions():
    # the baseline has one stage: a staged arm's initial predictions are
    # paired with the baseline's only ones
    base = _arm('base', [0, 1], **{'semseg/mIoU': [45.0, 45.0],
                                   'delta_m': [0.5, -0.5]})
    full = _arm('full', [0, 1], **{'semseg/mIoU': [46.0, 44.0],
                                   'initial/semseg/mIoU': [44.0, 43.0],
                                   'delta_m': [1.0, -1.0],
                                   'initial/delta_m': [-2.0, -4.0]})
    abl = _arm('abl', [0, 1], **{'semseg/mIoU': [46.0, 44.0],
                                 'initial/semseg/mIoU': [45.0, 44.0],
                                 'delta_m': [1.0, -1.0],
                                 'initial/delta_m': [-1.0, -1.0]})
    summary = dict(study='s', seeds=[0, 1], reference='base',
                   arms=[base, full, abl],
                   comparisons=[['abl', 'full'], ['full', 'base']])
    text = summary_markdown(summary, ['semseg'])
    ref_part = text[text.index('## Paired against `base`'):
                    text.index('## Paired comparisons')]
    # initial delta-m -2 - 0.5 and -4 + 0.5 -> -2.5 and -3.5
    assert ('| full | initial/delta_m | -3.00 ± 0.71 | 0/2 | 0, 1 |'
            in ref_part)
    part = text[text.index('## Paired comparisons'):]
    # both staged: initial against initial, +1 and +3
    assert ('| abl - full | initial/delta_m | +2.00 ± 1.41 | 2/2 | 0, 1 |'
            in part)
    assert ('| full - base | initial/delta_m | -3.00 ± 0.71 | 0/2 | 0, 1 |'
            in part)
    # a single-stage arm gets no initial row
    assert '| base |' not in ref_part
    assert "`initial/delta_m`: the first arm's initial predictions" in text
