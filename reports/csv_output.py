"""CSV for report tables: one header row (the union of the rows' keys, in first-seen
order), then one line per row; nested values are written as JSON."""
from __future__ import annotations

import csv
import io
import json

from rest_framework.renderers import BaseRenderer


def rows_to_csv(rows: list[dict]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return out.getvalue()


class CSVRenderer(BaseRenderer):
    """Renders a list of row dicts; `?format=csv` selects it."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            # Errors stay readable in the CSV response body.
            return f"detail\n{data['detail']}\n"
        return rows_to_csv(data)
