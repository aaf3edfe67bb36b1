"""The protocol's rules as small pure functions over state.

Each check returns the ``Violation``s a command would commit (rule id + sentence), so that
the application can refuse it, or record it as an acknowledged deviation (rule DEVIATION).
Checks that no deviation can override raise ``CommandRefused`` directly.
"""
