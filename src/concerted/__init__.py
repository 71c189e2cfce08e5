"""concerted: coordinated inauthentic behaviour and mass-reporting brigades, with evidence."""

__version__ = "0.1.0"
