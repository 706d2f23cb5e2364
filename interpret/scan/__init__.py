"""scan() -> Scan: every unit against every feature, with shift-null p-values, q-values and verdicts."""
from interpret.scan.result import Scan, scan

__all__ = ["Scan", "scan"]
