"""FunMagic's shared event contracts: the envelope, every integration event, the topic registry.

Pure data and functions: no I/O at import or anywhere except the ``export`` and ``compat`` command lines.
"""

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope, decode, encode, kafka_headers, kafka_key, parse_event
from funmagic_contracts.errors import ContractError
from funmagic_contracts.ids import uuid7
from funmagic_contracts.registry import EVENT_TYPES, event_model

__version__ = "0.1.0"

__all__ = [
    "EVENT_TYPES",
    "ContractError",
    "Envelope",
    "IntegrationEvent",
    "__version__",
    "decode",
    "encode",
    "event_model",
    "kafka_headers",
    "kafka_key",
    "parse_event",
    "uuid7",
]
