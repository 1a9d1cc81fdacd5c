"""Reference back ends: a fake of every family, payment, courier, storage, signing, channels.

dvcflow registers these itself; a plugin passed to `Engine.open` or found through the
``dvcflow`` entry-point group that serves the same provider type takes their place.
"""

from dvcflow.plugins.courier import HttpCourier
from dvcflow.plugins.ed25519 import Ed25519Signer
from dvcflow.plugins.fake import FakeBackend, FakePayment
from dvcflow.plugins.filesystem import FilesystemStore
from dvcflow.plugins.national_payment import NationalPaymentPlugin
from dvcflow.plugins.sms_gateway import SmsGateway
from dvcflow.plugins.smtp import SmtpEmail
from dvcflow.plugins.webhook import Webhook, verify_signature

__all__ = [
    "Ed25519Signer",
    "FakeBackend",
    "FakePayment",
    "FilesystemStore",
    "HttpCourier",
    "NationalPaymentPlugin",
    "SmsGateway",
    "SmtpEmail",
    "Webhook",
    "verify_signature",
]
