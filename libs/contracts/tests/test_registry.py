import re

import pytest

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.errors import ContractError
from funmagic_contracts.examples import EXAMPLES
from funmagic_contracts.registry import EVENT_MODULES, EVENT_TYPES, _build, event_model
from funmagic_contracts.topics import EVENT_TOPICS

# Past participles that do not end in "ed". Add one here only for a real irregular verb.
IRREGULAR_PAST_TENSE = {"Spent", "Sent", "Paid", "Built", "Made", "Held", "Lost", "Taken", "Given", "Done"}

# The event catalog (EVENTS.md and DESIGN §4). Removing one of these is a breaking change.
CATALOG = {
    "UserRegistered", "UserEmailVerified", "UserRoleChanged", "UserDisabled", "UserEnabled", "UserDeleted",
    "TaskRequested", "TaskStarted", "StepRequested", "TaskCancelRequested", "TaskCompleted", "TaskFailed",
    "TaskCancelled", "TaskDeleted", "StepOutputDiscarded", "ToolChanged", "ToolTypeChanged", "BannerChanged",
    "StudioReplyCompleted", "StudioReplyFailed", "StudioReplyCancelled", "StudioChatDeleted",
    "CreditsGranted", "CreditsPurchased", "CreditsReserved", "CreditsReservationRejected", "CreditsSpent",
    "CreditsReleased", "CreditsAdjusted",
    "StepStarted", "StepProgressed", "StepDelayed", "StepCompleted", "StepFailed", "ProviderHealthChanged",
    "AssetCreated", "AssetPublished", "AssetUnpublished", "AssetDeleted",
}  # fmt: skip


def all_subclasses(cls: type) -> set[type]:
    direct = set(cls.__subclasses__())
    return direct.union(*(all_subclasses(c) for c in direct))


def concrete_events() -> set[type[IntegrationEvent]]:
    return {c for c in all_subclasses(IntegrationEvent) if "EVENT_TYPE" in vars(c)}


def test_every_event_of_the_catalog_is_registered():
    assert {t for t, _ in EVENT_TYPES} >= CATALOG


def test_every_integration_event_class_is_registered_under_its_type_and_version():
    assert set(EVENT_TYPES.values()) == concrete_events()
    for (event_type, version), model in EVENT_TYPES.items():
        assert (event_type, version) == (model.EVENT_TYPE, model.EVENT_VERSION)


@pytest.mark.parametrize("model", sorted(EVENT_TYPES.values(), key=lambda m: m.EVENT_TYPE), ids=str)
def test_every_event_travels_on_a_registered_event_topic(model):
    assert model.TOPIC in {t.name for t in EVENT_TOPICS}


@pytest.mark.parametrize("model", sorted(EVENT_TYPES.values(), key=lambda m: m.EVENT_TYPE), ids=str)
def test_every_event_type_is_a_past_tense_camel_case_name(model):
    words = re.findall(r"[A-Z][a-z0-9]*", model.EVENT_TYPE)

    assert "".join(words) == model.EVENT_TYPE
    assert words[-1].endswith("ed") or words[-1] in IRREGULAR_PAST_TENSE, model.EVENT_TYPE


@pytest.mark.parametrize("model", sorted(EVENT_TYPES.values(), key=lambda m: m.EVENT_TYPE), ids=str)
def test_every_event_has_a_version_and_a_required_string_subject_field(model):
    assert isinstance(model.EVENT_VERSION, int)
    assert model.EVENT_VERSION >= 1
    field = model.model_fields[model.SUBJECT_FIELD]
    assert field.is_required()
    assert field.annotation is str


@pytest.mark.parametrize("model", sorted(EVENT_TYPES.values(), key=lambda m: m.EVENT_TYPE), ids=str)
def test_every_event_is_frozen_and_tolerates_unknown_fields(model):
    assert model.model_config["frozen"] is True
    assert model.model_config["extra"] == "ignore"


def test_every_event_module_lists_its_names_explicitly_and_they_exist():
    for module in EVENT_MODULES:
        assert module.__all__ == sorted(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_event_has_an_example():
    assert set(EXAMPLES) == set(EVENT_TYPES)


def test_an_event_defined_twice_under_the_same_type_and_version_is_refused():
    with pytest.raises(ContractError, match="defined twice"):
        _build((EVENT_MODULES[0], EVENT_MODULES[0]))


def test_looking_up_an_unknown_event_is_a_contract_error():
    with pytest.raises(ContractError, match="unknown event 'Nope' version 1"):
        event_model("Nope", 1)
