"""Machines that run graphs: the compiled ``TapeMachine`` and the interpreting ``LispMachine``."""

from .function import TapeFunction
from .lisp import LispMachine, NewLispMachine
from .options import (
    BindDualValues,
    EvalMode,
    ExecuteBwdOnly,
    ExecuteFwdOnly,
    LogBothDir,
    LogBwd,
    LogFwd,
    MachineOpt,
    TraceExec,
    TrainMode,
    WithInfWatch,
    WithLogger,
    WithManualGradient,
    WithNaNWatch,
    WithNoBufferReuse,
    WithPrecompiled,
    WithWatchlist,
)
from .program import CompileFunction, Program
from .tape import NewTapeMachine, Plan, TapeMachine

__all__ = [
    "LispMachine", "NewLispMachine", "TapeMachine", "NewTapeMachine", "TapeFunction", "Plan",
    "MachineOpt",
    "BindDualValues", "EvalMode", "TrainMode", "ExecuteFwdOnly", "ExecuteBwdOnly",
    "WithInfWatch", "WithNaNWatch", "WithNoBufferReuse", "WithWatchlist", "TraceExec",
    "WithManualGradient", "WithLogger", "LogFwd", "LogBwd", "LogBothDir", "WithPrecompiled",
    "CompileFunction", "Program",
]
