"""Contract simulators: the kit for test servers that speak a vendor's API dialect (issue 18, item 4).

- :mod:`.rules`: a :class:`~.rules.Rule` is one thing the vendor's API requires of a request (a
  header, a field's shape, a page-size limit, an error it answers), with the vendor's reference
  page it comes from (``cite``). A :class:`~.rules.RuleBook` is a dialect's rules; a
  :class:`~.rules.Recorder` keeps every exchange with the rules it broke, so an adapter's tests
  assert the requests the adapter sent against the vendor's own rules.
"""
