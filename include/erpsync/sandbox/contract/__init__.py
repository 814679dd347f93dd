"""Contract simulators: the kit for test servers that speak a vendor's API dialect (issue 18, item 4).

- :mod:`.rules`: a :class:`~.rules.Rule` is one thing the vendor's API requires of a request (a
  header, a field's shape, a page-size limit, an error it answers), with the vendor's reference
  page it comes from (``cite``). A :class:`~.rules.RuleBook` is a dialect's rules; a
  :class:`~.rules.Recorder` keeps every exchange with the rules it broke, so an adapter's tests
  assert the requests the adapter sent against the vendor's own rules.
- :mod:`.dialect`: ``DialectService``, the sandbox server (faults, Idempotency-Key, ``/_admin``)
  plus a rule book it enforces, and the pieces a dialect picks from: auth handshakes, paging
  styles, rate-limit buckets, error shapes. ``GET /_admin/contract`` reports what was recorded.
- :mod:`.graphql`: a small GraphQL reader for GraphQL dialects (selection, variables, cost).
- :mod:`.shopify`: the worked example, a Shopify Admin GraphQL (2025-10) simulator
  (``python -m erpsync.sandbox.contract shopify --port N``); no Shopify adapter exists yet.
- :mod:`.proxy`: a recording reverse proxy for a system that runs here (Tryton, Vendure): the
  real system answers, the proxy checks each exchange against :mod:`.tryton` / :mod:`.vendure`,
  the rule books of those systems' APIs.

How to build one: docs/adding-a-connector.md, step 5.
"""
