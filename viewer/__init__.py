"""The Bokeh server app: bokeh serve viewer --args REC [--scan SCAN.json]."""
