"""The Bokeh server app: bokeh serve viewer --address 127.0.0.1 --args REC [--scan SCAN.json].

Bokeh runs this file once, when the server starts (main.py runs once per browser session): it
opens the recording here so that the first page is as quick as the next ones. Bad arguments are
left for main.py, which shows them in the page.
"""
import os
import sys

import bokeh.plotting  # noqa: F401  (imported here at server start, so the first page does not wait for it)

from . import data

if os.path.basename(sys.argv[0]) == "__init__.py":  # run by bokeh (which sets argv), not imported
    try:
        data.warm(data.open_view(*data.parse_args(sys.argv[1:])))
    except ValueError:
        pass
