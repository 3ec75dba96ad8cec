"""The actor runtime: sessions as trio task-actors with mailboxes, a supervisor, agents and stores.

This package knows messages, connection handles with a non-blocking ``send``, and stores. It must never
import ``server`` (no sockets, no Socket.IO): it is driven from tests with no network at all.

The public surface is re-exported here: ``Supervisor``, ``SupervisorConfig``, ``SessionInfo``, ``ActorRef``,
the node's ``FanOut``, placement (``Lease``, ``Placement``, ``LocalPlacement``), the messages (``Join``,
``Leave``, ``Act``, ``Passivate``, ``Inspect``, ``Stop``), ``Reply``/``ActResult``, the agent interface
(``Agent``, ``EchoAgent``, ``load_agent_factory``), the restart policy and the errors.
"""

from actors.agent import Agent, AgentFactory, Emit, agent_message, load_agent_factory
from actors.config import SupervisorConfig
from actors.echo import EchoAgent
from actors.errors import (
    ActorError,
    AgentBusy,
    InvalidAction,
    MailboxFull,
    SessionFailed,
    SessionForbidden,
    SessionNotFound,
    SupervisorClosed,
    TooManySessions,
)
from actors.fanout import FanOut
from actors.lifecycle import ActorState
from actors.messages import Act, ActorInfo, ActResult, Inspect, Join, Leave, Passivate, Stop
from actors.placement import Lease, LocalPlacement, Placement
from actors.ref import ActorRef
from actors.reply import Reply
from actors.restart import RestartConfig, RestartPolicy
from actors.supervisor import SessionInfo, Supervisor

__all__ = [
    "Act",
    "ActResult",
    "ActorError",
    "ActorInfo",
    "ActorRef",
    "ActorState",
    "Agent",
    "AgentBusy",
    "AgentFactory",
    "EchoAgent",
    "Emit",
    "FanOut",
    "Inspect",
    "InvalidAction",
    "Join",
    "Lease",
    "Leave",
    "LocalPlacement",
    "MailboxFull",
    "Passivate",
    "Placement",
    "Reply",
    "RestartConfig",
    "RestartPolicy",
    "SessionFailed",
    "SessionForbidden",
    "SessionInfo",
    "SessionNotFound",
    "Stop",
    "Supervisor",
    "SupervisorClosed",
    "SupervisorConfig",
    "TooManySessions",
    "agent_message",
    "load_agent_factory",
]
