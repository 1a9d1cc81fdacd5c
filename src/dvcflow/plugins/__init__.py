"""Reference back ends: an in-memory fake of every family and the national payment platform.

dvcflow registers these itself; a plugin passed to `Engine.open` or found through the
``dvcflow`` entry-point group that serves the same provider type takes their place.
"""

from dvcflow.plugins.fake import FakeBackend, FakePayment
from dvcflow.plugins.national_payment import NationalPaymentPlugin

__all__ = ["FakeBackend", "FakePayment", "NationalPaymentPlugin"]
