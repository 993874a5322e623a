"""tillflow: live hourly conversion from footfall and point-of-sale tickets."""

__version__ = "0.1.0"
