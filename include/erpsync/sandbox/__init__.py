"""The sandbox: a simulated ERP and storefront served over real HTTP, with runtime fault injection.

Start both with ``python -m erpsync.sandbox``; start them from Python (tests, benchmarks, scripts)
with :func:`erpsync.sandbox.launcher.start_sandbox`. See ``docs/sandbox.md``.
"""
