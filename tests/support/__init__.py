"""Helpers the tests share, imported one way only: `from tests.support.<module> import ...`.

`apps` serves the real apps in the test's IOLoop, `http` makes one real HTTP call, `checks`
holds the contract's shapes, `data` creates users and listings, `fake` stands in for a
downstream service. Fixtures live in tests/conftest.py, not here.
"""
