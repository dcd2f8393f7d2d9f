"""The error every contract checker of :mod:`ploutos_core.testing` raises."""

from __future__ import annotations

from ploutos_core.errors import PluginError


class ContractError(PluginError):
    """A plugin object breaks the contract the core relies on."""
