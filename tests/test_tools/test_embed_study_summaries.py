# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/misc/embed_study_summaries.py: the tables docs/en/results.md
quotes are the committed study summaries."""
import os.path as osp

import pytest
from tool_runner import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
tool = load_tool('tools/misc/embed_study_summaries.py')

SUMMARY = ('# Study `s`\n\nSeeds [0]; text.\n\n| a | b |\n|---|---|\n'
           '| x | 1 |\n\n## Paired\n\n| c |\n')


def test_body_drops_the_title_and_demotes_headings():
    assert tool.summary_body(SUMMARY) == (
        'Seeds [0]; text.\n\n| a | b |\n|---|---|\n| x | 1 |\n\n'
        '### Paired\n\n| c |\n')


def test_embed_replaces_only_the_marked_blocks():
    page = ('# Page\n\nbefore\n'
            '<!-- study-summary: results/s/summary.md -->\nstale table\n'
            '<!-- /study-summary -->\nafter\n'
            '<!-- study-summary: results/t/summary.md -->\n'
            '<!-- /study-summary -->\n')
    read = {'results/s/summary.md': SUMMARY,
            'results/t/summary.md': '# Study `t`\n\n| t |\n'}.__getitem__
    out = tool.embed(page, read)
    assert out == (
        '# Page\n\nbefore\n'
        '<!-- study-summary: results/s/summary.md -->\n'
        'Seeds [0]; text.\n\n| a | b |\n|---|---|\n| x | 1 |\n\n'
        '### Paired\n\n| c |\n'
        '<!-- /study-summary -->\nafter\n'
        '<!-- study-summary: results/t/summary.md -->\n| t |\n'
        '<!-- /study-summary -->\n')
    assert tool.embed(out, read) == out  # idempotent
    assert tool.marked_paths(page) == ['results/s/summary.md',
                                       'results/t/summary.md']


def test_sections_quote_only_the_named_parts_in_summary_order():
    summary = SUMMARY + '\n## Other\n\n| d |\n'
    assert tool.summary_body(summary, ['Other', 'top']) == (
        'Seeds [0]; text.\n\n| a | b |\n|---|---|\n| x | 1 |\n\n'
        '### Other\n\n| d |\n')
    assert tool.summary_body(summary, ['Paired']) == '### Paired\n\n| c |\n'
    with pytest.raises(ValueError, match=r"\['Nope'\].*'top', 'Paired'"):
        tool.summary_body(summary, ['Nope'])
    page = ('<!-- study-summary: r/s.md sections: top; Other -->\nold\n'
            '<!-- /study-summary -->\n')
    out = tool.embed(page, {'r/s.md': summary}.__getitem__)
    assert out == ('<!-- study-summary: r/s.md sections: top; Other -->\n'
                   'Seeds [0]; text.\n\n| a | b |\n|---|---|\n| x | 1 |'
                   '\n\n### Other\n\n| d |\n<!-- /study-summary -->\n')
    assert tool.marked_paths(page) == ['r/s.md']
    assert tool.embed(out, {'r/s.md': summary}.__getitem__) == out


def test_unclosed_marker_and_missing_summary_are_named(tmp_path):
    with pytest.raises(ValueError, match='2 study-summary markers but only 1'):
        tool.embed('<!-- study-summary: a.md -->\nx\n<!-- /study-summary -->'
                   '\n<!-- study-summary: b.md -->\n', lambda p: '')
    page = tmp_path / 'page.md'
    page.write_text('<!-- study-summary: results/none/summary.md -->\n'
                    '<!-- /study-summary -->\n')
    with pytest.raises(FileNotFoundError, match='results/none/summary.md'):
        tool.main([str(page), '--root', str(tmp_path)])


def test_check_and_write(tmp_path, capsys):
    (tmp_path / 'r').mkdir()
    (tmp_path / 'r' / 'summary.md').write_text(SUMMARY)
    page = tmp_path / 'page.md'
    page.write_text('<!-- study-summary: r/summary.md -->\nold\n'
                    '<!-- /study-summary -->\n')
    args = [str(page), '--root', str(tmp_path)]
    assert tool.main(args + ['--check']) == 1
    assert 'out of date' in capsys.readouterr().out
    assert tool.main(args) == 0
    assert '### Paired' in page.read_text()
    assert not (tmp_path / 'page.md.tmp').exists()
    assert tool.main(args + ['--check']) == 0


def test_results_page_quotes_the_committed_summaries():
    """docs/en/results.md embeds every study summary it shows, unchanged."""
    page = osp.join(REPO, tool.DEFAULT_PAGE)
    with open(page, encoding='utf-8') as f:
        text = f.read()
    paths = tool.marked_paths(text)
    assert {'results/synthetic_one/summary.md',
            'results/synthetic_random/summary.md'} <= set(paths)
    assert tool.main([page, '--check']) == 0, (
        'run python tools/misc/embed_study_summaries.py')
