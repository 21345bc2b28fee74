"""A reference AppSuite licensing agent: activates, syncs and verifies license documents.

Stand-alone (no Django): it plays the on-premise server against the licensing service's
activation API, the way a real AppSuite server does.
"""

__version__ = "1.0.0"
