"""Machines that run graphs: the compiled ``TapeMachine`` and the interpreting ``LispMachine``."""

from .lisp import LispMachine, NewLispMachine
from .options import (
    BindDualValues,
    EvalMode,
    ExecuteFwdOnly,
    MachineOpt,
    TrainMode,
    WithInfWatch,
    WithNaNWatch,
    WithNoBufferReuse,
    WithWatchlist,
)
from .tape import NewTapeMachine, Plan, TapeMachine

__all__ = [
    "LispMachine", "NewLispMachine", "TapeMachine", "NewTapeMachine", "Plan", "MachineOpt",
    "BindDualValues", "EvalMode", "TrainMode", "ExecuteFwdOnly", "WithInfWatch",
    "WithNaNWatch", "WithNoBufferReuse", "WithWatchlist",
]
