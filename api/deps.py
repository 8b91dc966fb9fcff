"""Dependencies every handler may declare: the verified principal and the process's services."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from api.services import Services
from core.tenancy import Principal


def provide_principal(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Principal:
    # Declaring `services` makes the two a chain rather than a batch: litestar resolves a batch of two or more
    # dependencies in an anyio task group (two task spawns per request, the framework's largest cost on a cached
    # read), while a chain resolves inline.
    del services
    user = request.user
    assert isinstance(user, Principal)
    return user


def provide_services(request: Request[Any, Any, Any]) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


DEPENDENCIES = {
    "principal": Provide(provide_principal, sync_to_thread=False),
    "services": Provide(provide_services, sync_to_thread=False),
}

# Explicit markers: handlers name what they receive (inferred dependencies are deprecated).
ServicesDep = NamedDependency[Services]
PrincipalDep = NamedDependency[Principal]
