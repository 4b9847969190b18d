"""The queue: ordering (priorities), claiming and submitting (services), reading (selectors)
and its API. See docs/architecture.md."""
