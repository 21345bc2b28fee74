"""The bottom of the house: what every app's front door shares (domain error base, problem+json,
OpenAPI helpers, pagination, identifiers, JSON parsing, the edge middleware, the failed-attempt
limiter, log redaction, CSV and sorting helpers). No models; imports Django and DRF, never an
app of this project (tests/test_layering.py checks)."""
