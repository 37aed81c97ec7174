"""The composition root of tasks: the only place that names concrete classes."""

from funmagic_kit.runtime import ServiceSpec
from funmagic_tasks.config import TasksSettings
from funmagic_tasks.entrypoints.http import routes
from funmagic_tasks.entrypoints.kafka import subscriptions

SPEC = ServiceSpec(
    name="tasks",
    settings_class=TasksSettings,
    migrations_package="funmagic_tasks.migrations",
    subscriptions=subscriptions,
    routes=routes,
)
