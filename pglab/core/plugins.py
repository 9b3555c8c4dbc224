"""Agents come from the ``pglab.agents`` entry-point group, pglab's own included.

A third-party package adds an agent by declaring, in its pyproject.toml::

    [project.entry-points."pglab.agents"]
    my-agent = "my_package.module:MY_AGENT"   # an pglab.core.agent.AgentSpec
"""

from __future__ import annotations

import difflib
import warnings
from functools import cache
from importlib.metadata import entry_points

from pglab.core.preset import AgentSpec
from pglab.errors import ConfigError


@cache
def load_agents() -> dict[str, AgentSpec]:
    """Every installed agent by name; a plug-in that fails to load is skipped with a warning."""
    agents: dict[str, AgentSpec] = {}
    for entry in entry_points(group="pglab.agents"):
        try:
            spec = entry.load()
        except Exception as exc:  # a third party's bug must not take the lab down
            warnings.warn(f"pglab.agents plug-in {entry.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if not isinstance(spec, AgentSpec):
            warnings.warn(f"pglab.agents plug-in {entry.name!r} is not an AgentSpec; skipped", stacklevel=2)
            continue
        agents[spec.name] = spec
    return agents


def get_agent(name: str) -> AgentSpec:
    agents = load_agents()
    if name not in agents:
        close = difflib.get_close_matches(name, sorted(agents), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown agent {name!r}; {hint}available agents: {', '.join(sorted(agents))}")
    return agents[name]
