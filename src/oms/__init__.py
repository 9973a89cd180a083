"""oms: an omnichannel order management system."""

__version__ = "0.1.0"
