"""Crossing reconciliation between two countries: each exit must meet the partner's entry.

- ``core``: ``reconcile``, the entry point, and the rules in its docstring (pure);
- ``model``: facts, time rules, outcomes, discrepancies and the result (pure values);
- ``pairing``: the pairing engine over integer columns (pure, numpy);
- ``discrepancies``: the cases that need a look, with their reasons in words (pure);
- ``service``: load both sides' crossings at a national node, reconcile, store the cases;
- ``report``: the JSON report, the CSV of discrepancies, the period report.
"""
