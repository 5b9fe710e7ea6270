# Copyright (c) diffmtl contributors. All rights reserved.
"""Writing a study's summary files: ``summary.json``, ``summary.md``,
``summary.png`` and, with a learning curve, ``summary_curve.png``."""
import os
import os.path as osp
from typing import List, Sequence

from .charts import curve_chart, summary_chart
from .markdown import summary_markdown
from .records import write_json

__all__ = ['write_summary']


def write_summary(summary: dict, out_dir: str,
                  tasks: Sequence[str]) -> List[str]:
    """Write ``summary.json``, ``summary.md`` and ``summary.png``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, n)
             for n in ('summary.json', 'summary.md', 'summary.png')]
    write_json(paths[0], summary)
    with open(paths[1], 'w') as f:
        f.write(summary_markdown(summary, list(tasks)))
    if any(a['n'] for a in summary['arms']):
        summary_chart(summary, list(tasks), paths[2])
    else:
        paths = paths[:2]
    if summary.get('curve') and any(e['points'] for e in summary['curve']):
        paths.append(osp.join(out_dir, 'summary_curve.png'))
        curve_chart(summary, paths[-1])
    return paths
