"""Container side: the measurement engine run as ``python -m llenergymeasure.harness``.

Importing this package is cheap: no ML framework, no NVML, no pyarrow. Each
module imports its heavy dependency inside the function that needs it.
"""
