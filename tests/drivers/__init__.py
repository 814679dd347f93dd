"""Test drivers: what a person does in a connected system (adds a product, counts stock, ships a
parcel, receives a return) or what a test reads that no flow does, written against the system's
own API through its adapter's client. They live beside the tests, not in the production adapters
(issue 18): an adapter holds only what the flows call."""
