"""How llorchctl shows API objects: kubectl-style tables, describe text, yaml/json, ages.

Everything here is a pure function of the API's JSON and a `now` (unix seconds), so the output is
testable without a daemon. One module per thing shown: `tables` (get of a kind), `details`
(describe), `runtime` (health, capabilities, replica sets, a run's summary), `artifacts`; what
they all use is in `values`.
"""
