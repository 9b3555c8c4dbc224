"""Finding, checking and vectorising Gymnasium environments.

pglab trains on any registered Gymnasium environment with a Discrete action space. Environment
plug-ins reach Gymnasium's registry two ways, both supported:

* an installed distribution declares an entry point in the ``pglab.envs`` group naming a module
  whose import calls ``gymnasium.register`` (Gymnasium 1.x no longer loads entry points itself,
  so pglab imports every such module at start; pglab's own envs/ registers this way);
* ``--env some_module:MyEnv-v0`` (Gymnasium's own syntax) imports ``some_module`` first -- only
  when the id comes from the user, never from a file pglab opens (see :func:`refuse_unnamed_module`).

Three families need one of pglab's extras (:data:`FAMILIES`): MinAtar (``pglab[minatar]``; the
MinAtar package registers through Gymnasium's old entry-point group, which Gymnasium 1.x ignores, so
pglab registers its ids itself, exactly as ``minatar.gym.register_envs`` does, without importing
minatar), Atari (``pglab[atari]``; ale-py registers on import) and Box2D
(``pglab[box2d]``). Without the extra, such an id ends in one line naming what to install. Atari
environments are preprocessed as DQN's were, with the ALE v5 settings (:data:`ATARI_PREPROCESSING`).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

from pglab.core.config import VECTORIZATION_MODES
from pglab.core.preset import MINATAR_GAMES
from pglab.errors import EnvironmentSetupError

MAX_ENV_ID = 200  # characters; a longer --env is a mistake, refused before any lookup


@dataclass(frozen=True)
class EnvFamily:
    """Environments whose ids start with ``prefix`` and need ``module``, installed by ``pglab[extra]``."""

    prefix: str
    module: str
    extra: str
    register: Callable[[], None] | None = None  # registers the ids (gymnasium itself registers Box2D's)


def _register_minatar() -> None:
    """Register MinAtar's ids as minatar.gym.register_envs (MinAtar 1.0.15) does, without importing minatar.

    It registers each game (pglab.core.preset.MINATAR_GAMES, e.g. SpaceInvaders, whose module is
    minatar.environments.space_invaders) as MinAtar/<Game>-v0 (all 6 actions) and -v1 (the game's minimal
    action set). Importing minatar (its package, any module of it) imports matplotlib.pyplot and seaborn
    (scipy.stats, pandas: over a second), so pglab registers the same ids, entry point and arguments itself
    (a test compares them): nothing of minatar is imported until an environment is made.
    """
    for name in MINATAR_GAMES:
        game = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()  # minatar's name is game.title().replace("_", "")
        for version, minimal in (("v0", False), ("v1", True)):
            gym.register(
                id=f"MinAtar/{name}-{version}",
                entry_point="minatar.gym:BaseEnv",
                kwargs={"game": game, "use_minimal_action_set": minimal},
            )


def _register_ale() -> None:
    importlib.import_module("ale_py")  # its import registers the ALE/ ids (it needs numpy alone: cheap)


FAMILIES = (
    EnvFamily("MinAtar/", "minatar", "minatar", _register_minatar),
    EnvFamily("ALE/", "ale_py", "atari", _register_ale),
    EnvFamily("LunarLander", "Box2D", "box2d"),
    EnvFamily("BipedalWalker", "Box2D", "box2d"),
    EnvFamily("CarRacing", "Box2D", "box2d"),
)

# Gymnasium's AtariPreprocessing + FrameStackObservation as in the DQN papers, on the ALE v5 settings:
# sticky actions with probability 0.25 and no life-loss terminals (Machado et al. 2018), whose sticky
# actions also replace the no-op starts of earlier protocols (noop_max 0). The emulator runs every
# frame (frameskip 1) and the wrapper repeats each action 4 frames, max-pooling the last two. Sticky
# actions come from Gymnasium's StickyAction wrapper on every emulator frame, as in ALE, rather than
# from ALE itself: ALE's cloneState leaves out the previous action, so a resumed run could not
# continue exactly. Written to config.json.
ATARI_PREPROCESSING: dict[str, Any] = {
    "env_kwargs": {"frameskip": 1, "repeat_action_probability": 0.0, "full_action_space": False},
    "sticky_action_probability": 0.25,
    "atari_preprocessing": {
        "noop_max": 0,
        "frame_skip": 4,
        "screen_size": 84,
        "terminal_on_life_loss": False,
        "grayscale_obs": True,
        "scale_obs": False,
    },
    "frame_stack": 4,
}


def env_family(env_id: str) -> EnvFamily | None:
    """The extra-backed family of a (bare) environment id, or None."""
    return next((f for f in FAMILIES if env_id.startswith(f.prefix)), None)


def require_extra(env_id: str) -> None:
    """Import what ``env_id``'s family needs and register its ids; one line naming the extra if missing."""
    family = env_family(env_id)
    if family is None:
        return
    try:
        importlib.import_module(family.module)
    except ImportError as exc:
        raise EnvironmentSetupError(
            f"{env_id} needs {family.module}, which is not installed: pip install 'pglab[{family.extra}]'"
        ) from exc
    _register(family)


def _register(family: EnvFamily) -> None:
    """Register the family's ids, once (Gymnasium warns about every id registered again)."""
    if family.register is not None and not any(env_id.startswith(family.prefix) for env_id in gym.registry):
        family.register()


def extra_env_ids() -> dict[str, list[str] | None]:
    """By extra: the ids of the environments pglab registers (MinAtar's, Atari's), or None where the extra is
    not installed. Box2D's, which gymnasium registers, appear only when not installed: installed, they are
    made and listed as any other. Cheap: no environment is made and minatar is not imported (``pglab list``)."""
    found: dict[str, list[str] | None] = {}
    for family in FAMILIES:
        if importlib.util.find_spec(family.module) is None:
            found[family.extra] = None
        elif family.register is not None:
            _register(family)
            found[family.extra] = sorted(env_id for env_id in gym.registry if env_id.startswith(family.prefix))
    return found


def preprocessing(env_id: str) -> dict[str, Any] | None:
    """The preprocessing pglab applies to ``env_id`` (Atari's, see :data:`ATARI_PREPROCESSING`), or None."""
    family = env_family(env_id)
    return ATARI_PREPROCESSING if family is not None and family.extra == "atari" else None


def _wrappers(env_id: str) -> list[Callable[[gym.Env], gym.Env]]:
    settings = preprocessing(env_id)
    if settings is None:
        return []

    def atari(env: gym.Env) -> gym.Env:
        env = gym.wrappers.StickyAction(env, settings["sticky_action_probability"])
        env = gym.wrappers.AtariPreprocessing(env, **settings["atari_preprocessing"])
        return gym.wrappers.FrameStackObservation(env, settings["frame_stack"])

    return [atari]


def _make_kwargs(env_id: str, env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    settings = preprocessing(env_id)
    return {**(settings["env_kwargs"] if settings else {}), **dict(env_kwargs or {})}


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, **make_kwargs: Any) -> gym.Env:
    """One environment as pglab trains on it (with its family's preprocessing), e.g. for evaluation."""
    bare_id = resolve_env_id(env_id)
    env = gym.make(bare_id, **_make_kwargs(bare_id, env_kwargs), **make_kwargs)
    for wrap in _wrappers(bare_id):
        env = wrap(env)
    return env


@cache
def load_env_plugins() -> tuple[str, ...]:
    """Import every module named in the ``pglab.envs`` entry-point group; returns their names.

    A plug-in that fails to import is reported in one warning line and skipped, so one broken
    third-party package does not stop training on every other environment.
    """
    loaded = []
    for entry in entry_points(group="pglab.envs"):
        try:
            entry.load()
        except Exception as exc:  # a third party's bug must not take the lab down
            warnings.warn(
                f"pglab.envs plug-in {entry.name!r} ({entry.value}) failed to import: {exc}",
                stacklevel=2,
            )
        else:
            loaded.append(entry.value)
    return tuple(loaded)


def env_module(env_id: str) -> str:
    """The plug-in module named by ``module:EnvId`` ('' for a bare id)."""
    return env_id.rpartition(":")[0]


def refuse_unnamed_module(env_id: str, source: str, trusted_modules: Collection[str] = ()) -> None:
    """Refuse an environment id read from a file if making it would import a module the user did not name.

    Importing a module runs its code, so a run directory naming ``helpers:CartPole-v1`` beside a
    helpers.py would run that file on ``pglab eval``. pglab imports the module of an id it read from
    a file (config.json, a checkpoint) only if the user named the module (``--trust-env-module``, or
    the id itself on the command line) or it is already imported, which runs nothing.
    """
    module = env_module(env_id)
    if module and module not in trusted_modules and module not in sys.modules:
        raise EnvironmentSetupError(
            f"{source} names environment {env_id!r}, whose module {module!r} pglab would have to import (run) "
            f"to make it; pglab imports no module named by a file it opens: if you trust {module}, "
            f"add --trust-env-module {module}"
        )


def resolve_env_id(env_id: str) -> str:
    """Import the plug-in module of ``module:EnvId`` and check the id is registered.

    Returns the bare environment id. Raises EnvironmentSetupError with close matches for an
    unknown id, or the plug-in's import error in one line.
    """
    if len(env_id) > MAX_ENV_ID:
        raise EnvironmentSetupError(
            f"an environment id of {len(env_id):,} characters ({env_id[:40]!r}...); ids are short, like "
            "CartPole-v1: check --env"
        )
    load_env_plugins()
    module, sep, bare_id = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise EnvironmentSetupError(
                f"environment plug-in module {module!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
    else:
        bare_id = env_id
    require_extra(bare_id)
    if bare_id not in gym.registry:
        raise EnvironmentSetupError(f"unknown environment {bare_id!r}; {_suggest(bare_id)}")
    return bare_id


def _suggest(bare_id: str) -> str:
    """Close registered ids that can be made here; failing those, close ids with what they need."""
    close = difflib.get_close_matches(bare_id, list(gym.registry), n=6, cutoff=0.6)
    needs = {env_id: unmet_dependency(env_id) for env_id in close}
    usable = [env_id for env_id in close if needs[env_id] is None][:3]
    if usable:
        return f"did you mean {', '.join(usable)}?"
    if close:
        return "did you mean " + ", ".join(f"{env_id} (which {needs[env_id]})" for env_id in close[:3]) + "?"
    return "run `pglab list` to see the registered environments"


def unmet_dependency(env_id: str) -> str | None:
    """None if ``env_id`` can be made here, else what it needs, e.g. "needs Box2D: pip install 'pglab[box2d]'"."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gym.make(env_id).close()
    except (gym.error.DependencyNotInstalled, ImportError) as exc:
        return _needs(exc)
    except Exception as exc:  # an id that exists but cannot be made bare (required arguments, ...)
        return f"cannot be made without arguments ({type(exc).__name__})"
    return None


def _needs(exc: Exception) -> str:
    """What a DependencyNotInstalled or ImportError from making an environment asks the user to install."""
    text = str(exc)
    if "box2d" in text.lower():
        return "needs Box2D, which is not installed: pip install 'pglab[box2d]'"
    if isinstance(exc, ImportError) and exc.name:
        return f"needs {exc.name}, which is not installed"
    return f"needs a package that is not installed ({text.splitlines()[0] if text else type(exc).__name__})"


def discrete_env_ids() -> list[str]:
    """Registered environments whose action space is Discrete, made one by one to see; the environments of
    the extras that :func:`extra_env_ids` lists by id are left out."""
    load_env_plugins()
    listed_apart = {f.module for f in FAMILIES if f.register is not None}  # by extra_env_ids, without making them
    found = []
    for env_id, spec in sorted(gym.registry.items()):
        if isinstance(spec.entry_point, str) and spec.entry_point.split(":")[0].split(".")[0] in listed_apart:
            continue  # e.g. ale_py's hundreds of games, once imported: each would load its ROM
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env = gym.make(spec)
                discrete = isinstance(env.action_space, gym.spaces.Discrete)
                env.close()
        except Exception:  # environments needing extras (Box2D, MuJoCo, Atari) that are not installed
            continue
        if discrete:
            found.append(env_id)
    return found


def make_vector_env(
    env_id: str,
    num_envs: int,
    vectorization: str = "auto",
    env_kwargs: Mapping[str, Any] | None = None,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id``, checked to have Discrete actions and to autoreset on the next step.

    No episode-statistics wrapper: the collector (pglab.core.rollout) keeps each episode's return and
    length itself, with the arithmetic of Gymnasium's ``RecordEpisodeStatistics`` (which wrapped these
    environments until it cost a third of a MinAtar vector step).

    ``auto`` takes the environment's numpy-vectorised implementation where it has one (CartPole)
    and no ``env_kwargs`` forbid it, else a synchronous vector env; ``async`` runs one process per
    copy (worth it only for slow environments).
    """
    if vectorization not in VECTORIZATION_MODES:
        raise EnvironmentSetupError(
            f"unknown vectorization {vectorization!r}; choose one of {', '.join(VECTORIZATION_MODES)}"
        )
    bare_id = resolve_env_id(env_id)
    spec = gym.spec(bare_id)
    mode = vectorization
    if mode == "auto":
        mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    wrappers = _wrappers(bare_id)
    if wrappers and mode == "vector_entry_point":
        mode = "sync"
    try:
        envs = gym.make_vec(
            bare_id,
            num_envs=num_envs,
            vectorization_mode=mode,
            wrappers=wrappers or None,
            **_make_kwargs(bare_id, env_kwargs),
        )
    except (gym.error.DependencyNotInstalled, ImportError) as exc:
        raise EnvironmentSetupError(f"{bare_id} {_needs(exc)}") from exc
    except TypeError as exc:
        raise EnvironmentSetupError(f"{bare_id} rejected its arguments: {exc}; check --env-kwarg") from exc
    action_space = envs.single_action_space
    if not isinstance(action_space, gym.spaces.Discrete):
        envs.close()
        raise EnvironmentSetupError(
            f"{bare_id} has action space {action_space}, but pglab needs a Discrete action space "
            "(its estimators are for discrete actions); pick a Discrete-action environment, see `pglab list`"
        )
    autoreset = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if autoreset != gym.vector.AutoresetMode.NEXT_STEP:
        envs.close()
        raise EnvironmentSetupError(f"{bare_id}'s vector env uses {autoreset}; pglab's rollout expects NEXT_STEP")
    return envs
