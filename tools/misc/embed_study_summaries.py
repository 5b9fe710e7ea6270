# Copyright (c) diffmtl contributors. All rights reserved.
"""Copy study summaries into a Markdown page, or check that they are there.

A page marks where a summary goes with a pair of comments::

    <!-- study-summary: results/synthetic_one/summary.md -->
    ...
    <!-- /study-summary -->

Everything between them is replaced by that ``summary.md`` (path relative
to the repository root) without its ``# Study`` title line, its headings
one level deeper, so the page's own sections keep their level. The
runner rewrites ``summary.md`` after every run; this keeps the tables a
page quotes equal to the committed ones (``--check`` fails when they
differ; ``tests/test_tools/test_embed_study_summaries.py`` runs it on
``docs/en/results.md``).

A page may quote only some sections of a summary: ``sections:`` after the
path lists them, separated by ``;``, by their ``##`` heading (``top`` is
the text before the first heading), in the summary's order::

    <!-- study-summary: results/synthetic_one/summary.md sections: top -->
    <!-- study-summary: results/synthetic_random/summary.md sections: top; Initial vs final predictions -->

Examples::

    python tools/misc/embed_study_summaries.py docs/en/results.md
    python tools/misc/embed_study_summaries.py docs/en/results.md --check
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Callable, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_PAGE = osp.join('docs', 'en', 'results.md')

BLOCK = re.compile(
    r'(?P<open><!-- study-summary: (?P<path>[^ ]+)'
    r'(?: sections: (?P<sections>[^\n]*?))? -->\n)'
    r'(?P<body>.*?)'
    r'(?P<close><!-- /study-summary -->)', re.S)

#: The name of the text before a summary's first ``##`` heading.
TOP = 'top'


def split_sections(lines: List[str]) -> List[tuple]:
    """``[(name, lines)]``: the text before the first ``## `` heading as
    :data:`TOP`, then one entry per ``## `` heading (its text)."""
    parts = [(TOP, [])]
    for ln in lines:
        if ln.startswith('## '):
            parts.append((ln[3:].strip(), []))
        parts[-1][1].append(ln)
    return parts


def summary_body(summary_md: str,
                 sections: Optional[Sequence[str]] = None) -> str:
    """The part of a ``summary.md`` a page quotes: no title, headings one
    level deeper; with ``sections``, only those (see the module doc).

    Raises:
        ValueError: A section the summary does not have, naming the ones it
            has.
    """
    lines = summary_md.splitlines()
    if lines and lines[0].startswith('# '):
        lines = lines[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    if sections is not None:
        parts = split_sections(lines)
        names = [name for name, _ in parts]
        unknown = [s for s in sections if s not in names]
        if unknown:
            raise ValueError(f'sections {unknown} not in the summary; it has '
                             f'{names}')
        lines = []
        for name, part in parts:
            if name in sections:
                while part and not part[-1].strip():
                    part = part[:-1]
                lines += part + ['']
    return '\n'.join('#' + ln if ln.startswith('#') else ln
                     for ln in lines).rstrip('\n') + '\n'


def _sections(match) -> Optional[List[str]]:
    if match['sections'] is None:
        return None
    return [s.strip() for s in match['sections'].split(';') if s.strip()]


def embed(page: str, read: Callable[[str], str]) -> str:
    """``page`` with every marked block replaced by ``read(path)``'s body.

    Raises:
        ValueError: An opening marker without its closing one.
    """
    opened = page.count('<!-- study-summary:')
    blocks = list(BLOCK.finditer(page))
    if opened != len(blocks):
        raise ValueError(f'{opened} study-summary markers but only '
                         f'{len(blocks)} closed by <!-- /study-summary -->')
    return BLOCK.sub(
        lambda m: m['open'] + summary_body(read(m['path']), _sections(m)) +
        m['close'], page)


def marked_paths(page: str) -> List[str]:
    return [m['path'] for m in BLOCK.finditer(page)]


def _read_from(root: str) -> Callable[[str], str]:

    def read(path: str) -> str:
        full = osp.join(root, path)
        if not osp.isfile(full):
            raise FileNotFoundError(f'study-summary marker names {path}, '
                                    f'which is not a file under {root}')
        with open(full, encoding='utf-8') as f:
            return f.read()

    return read


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Copy study summaries into a Markdown page between '
        '<!-- study-summary: PATH --> and <!-- /study-summary --> markers')
    parser.add_argument('page', nargs='?', default=DEFAULT_PAGE,
                        help=f'the page (default: {DEFAULT_PAGE})')
    parser.add_argument('--root', default=REPO,
                        help='what marker paths are relative to (default: '
                        'the repository root)')
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 when the page differs')
    args = parser.parse_args(argv)
    with open(args.page, encoding='utf-8') as f:
        page = f.read()
    new = embed(page, _read_from(args.root))
    paths = marked_paths(page)
    if args.check:
        if new != page:
            print(f'{args.page}: out of date with '
                  f'{", ".join(paths)}; run python '
                  f'tools/misc/embed_study_summaries.py {args.page}')
            return 1
        print(f'{args.page}: {len(paths)} summaries up to date')
        return 0
    if new != page:
        # written next to the page, then renamed over it: never half-written
        tmp = args.page + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(new)
        os.replace(tmp, args.page)
    print(f'{args.page}: {len(paths)} summaries embedded'
          + ('' if new != page else ' (unchanged)'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
