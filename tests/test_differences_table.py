"""docs/differences.md has a row for every public name of Gorgonia, and every graphcore name
a row points to exists.

Names the table lists before graphcore has them go in PENDING (empty now): their rows say
"same", and removing a name from PENDING checks it.
"""

from __future__ import annotations

import re
from pathlib import Path

import graphcore as gc

DOC = Path(__file__).resolve().parents[1] / "docs" / "differences.md"
SECTION = "## Every Gorgonia name"
HOW = ("same", "renamed", "not needed", "not ported")

PENDING: set[str] = set()  # names the table lists before graphcore has them

# Gorgonia's exported package-level names (gorgonia.org/gorgonia, every file, build tags too)
GORGONIA = """
Abs Sign Ceil Floor Sin Cos Exp Log Log2 Neg Square Sqrt Inverse InverseSqrt Cube Tanh Sigmoid
Log1p Expm1 Softplus Add Sub HadamardProd HadamardDiv Pow Lt Gt Lte Gte Eq Ne BroadcastAdd
BroadcastSub BroadcastHadamardProd BroadcastHadamardDiv BroadcastPow BroadcastLt BroadcastGt
BroadcastLte BroadcastGte BroadcastEq BroadcastNe Batched BatchedBLAS BatchedDevice Use
WhichBLAS BLAS NewBroadcastPattern Broadcast BroadcastPattern Nodes Compile CompileFunction
AddToStdLib CUDAMachine ExternMetadata CUDA GraphCollisionStats DEBUG TABCOUNT Device CPU
Backpropagate SetDerivOf StandardEngine Lift1 Lift1Axial Lift2 Lift2Broadcast Err LiftResult
TransformResult CheckOne NodesFromInputs Result Input Errer Mker NoOpError AutoDiffError
SymDiffError NewExternalOp Arena External ExecutionContext ExternalOp FmtNodeMap Must
NodeFromAny NewScalar NewVector NewMatrix NewTensor NewConstant UniformRandomNode
GaussianRandomNode BinomialRandomNode OneHotVector Grad Let UnsafeLet Set Read WithGraphName
NewGraph ExprGraph Tensor SetOptimizationLevel BinaryXent Dropout LeakyRelu Rectify Im2Col
Conv2d Conv1d MaxPool2D MaxPool1D BatchNorm GlobalAveragePool2D WithType WithChildren WithOp
In WithName WithValue WithGrad WithInit WithShape WithGroupName NewUniqueNode NodeID Node
NodeConsOpt NewNodeSet NodeSet ShapesToDimSizers DimSizersToShapes ApplyOp ApplyOpWithName
DimSizer Op UnaryOp BinaryOp NoRetOp ADOp SDOp ReductionOp TrainModeOp IncrDoer
UsePreallocDoer UnsafeDoer CUDADoer CLDoer CUDAADOp Iop AveragePool1D AveragePool2D ByIndices
CTCLoss Reduction ReductionMean ReductionSum GroupNorm GroupNormOp NewAddOp NewSubOp
NewHadamardProdOp BatchNormOp SoftMax LogSoftMax Sparsemax ConvType Upsample2D YOLOv3 Mul
BatchedMatMul OuterProd Div Auto LogSumExp At Max Mean Sum Norm ReduceAdd ReduceMul SizeOf
Slice Transpose Concat Unconcat Reshape Ravel Tensordot Mish MinBetween MaxBetween DiagFlat
UseStabilization UseNonStable DebugDerives DontDebugDerives ReturnNode ReturnType KeepDims S
WithL2Reg WithL1Reg WithBatchSize WithEps WithClip WithLearnRate WithBeta1 WithBeta2 WithRho
WithMomentum NewRMSPropSolver NewAdamSolver NewVanillaSolver NewMomentum NewAdaGradSolver
NewBarzilaiBorweinSolver NewAdamW Solver ValueGrad Namer SolverOpt RMSPropSolver AdamSolver
VanillaSolver Momentum AdaGradSolver BarzilaiBorweinSolver AdamW TensorType Float64 Float32
Int Int64 Int32 Byte Bool Ptr NodesToValueGrads ScalarAsTensor Value Valuer Zeroer ZeroValuer
Dtyper Typer ValueEqualer ValueCloser Cloner CloneErrorer CopierTo CopierFrom NewF64 NewF32
NewI NewI64 NewI32 NewU8 NewB Scalar F64 F32 I I64 I32 U8 B TypeOf ValueEq ValueClose
CloneValue ZeroValue Copy EvalMode WithLogger WithValueFmt WithWatchlist WithNaNWatch
WithInfWatch WithPointerWatch ExecuteFwdOnly ExecuteBwdOnly LogFwd LogBwd LogBothDir TraceExec
BindDualValues WithPrecompiled WithManualGradient WithEngine VM VMOpt NewLispMachine
NewTapeMachine UseCudaFor WalkGraph Sort UnstableSort Zeroes Ones RangedFrom
RangedFromWithStep ValuesOf Gaussian Uniform GlorotN GlorotU HeN HeU Gaussian64 Gaussian32
Uniform64 Uniform32 Binomial64 Binomial32 GlorotEtAlN64 GlorotEtAlN32 GlorotEtAlU64
GlorotEtAlU32 HeEtAlN64 HeEtAlU64 InitWFn
""".split()
# and the methods of its graph, node, machine, program, solver and op types
GORGONIA_METHODS = """
ExprGraph.AddNode ExprGraph.AllNodes ExprGraph.ByName ExprGraph.Clone ExprGraph.Constant
ExprGraph.Edge ExprGraph.Edges ExprGraph.ExactSubgraphRoots ExprGraph.From ExprGraph.Has
ExprGraph.HasEdgeBetween ExprGraph.HasEdgeFromTo ExprGraph.Inputs ExprGraph.Node
ExprGraph.Nodes ExprGraph.RemoveNode ExprGraph.Roots ExprGraph.SetEdge ExprGraph.String
ExprGraph.Subgraph ExprGraph.SubgraphRoots ExprGraph.To ExprGraph.ToDot ExprGraph.UnbindAll
ExprGraph.UnbindAllNonInputs Node.Clone Node.CloneTo Node.DataSize Node.Deriv Node.DerivOf
Node.Device Node.Dims Node.Dtype Node.Err Node.Grad Node.GradOnDevice Node.Graph Node.Groups
Node.Hashcode Node.ID Node.IsColVec Node.IsMatrix Node.IsRowVec Node.IsScalar Node.IsVar
Node.IsVec Node.IsVector Node.Name Node.Node Node.Nodes Node.Op Node.RestrictedToDot
Node.Shape Node.Strides Node.String Node.ToDot Node.Type Node.Value Node.ValueOnDevice
Node.WriteHash VM.RunAll VM.Reset VM.Close tapeMachine.Close tapeMachine.Let
tapeMachine.LocMap tapeMachine.Prog tapeMachine.Reset tapeMachine.Run tapeMachine.RunAll
tapeMachine.Set lispMachine.Close lispMachine.ForceCPU lispMachine.LastRun lispMachine.Reset
lispMachine.RunAll lispMachine.UnbindAll lispMachine.WorkAvailable program.CPUMemReq
program.GPUMemReq program.Graph program.String Op.Arity Op.Type Op.InferShape Op.Do
Op.ReturnsPtr Op.CallsExtern Op.OverwritesInput Op.WriteHash Op.Hashcode Op.String Solver.Step
ValueGrad.Value ValueGrad.Grad SDOp.DiffWRT SDOp.SymDiff ADOp.DoDiff TrainModeOp.SetTraining
IncrDoer.IncrDo UsePreallocDoer.UsePreallocDo UnsafeDoer.UnsafeDo NoRetOp.ReturnsNothing
""".split()


def _rows() -> list[tuple[list[str], list[str], str]]:
    text = DOC.read_text()
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1]
    body = re.split(r"^## ", body, flags=re.M)[0]  # up to the next section
    rows = []
    for line in body.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a row needs three cells: {line}"
        names = re.findall(r"`([^`]+)`", cells[0])
        refs = [r for r in re.findall(r"`([^`]+)`", cells[1]) if r.startswith("gc.")]
        rows.append((names, refs, cells[2]))
    return rows


def _samples() -> dict[type, object]:
    """Instances of the classes whose attributes are set in __init__ (``node.id``)."""
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"), gc.WithValue([1.0, 2]))
    y = gc.Exp(x)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    return {
        gc.Node: x, gc.Graph: g, gc.TapeMachine: vm, gc.machines.Plan: vm.plan,
        gc.LispMachine: gc.NewLispMachine(g, gc.ExecuteFwdOnly()), gc.ExecContext: vm.ctx,
        gc.Program: gc.CompileFunction(g, [x], [y]),
    }


def _resolve(path: str, samples: dict[type, object]) -> bool:
    obj: object = gc
    for part in path.split(".")[1:]:
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif isinstance(obj, type) and obj in samples and hasattr(samples[obj], part):
            obj = getattr(samples[obj], part)
        else:
            return False
    return True


def test_every_gorgonia_name_has_a_row():
    listed = {n for names, _, _ in _rows() for n in names}
    missing = [n for n in GORGONIA + GORGONIA_METHODS if n not in listed]
    assert not missing, f"Gorgonia names without a row in {DOC.name}: {missing}"


def test_every_row_says_how_and_why():
    for names, refs, how in _rows():
        kind = next((k for k in HOW if how.startswith(k)), None)
        assert kind, f"{names}: the third cell must start with one of {HOW}, got {how!r}"
        if kind == "same":
            assert refs, f"{names}: a 'same' row names what it is in graphcore (`gc....`)"
        if kind == "renamed" and not refs:
            assert ":" in how, f"{names}: say what it is renamed to"
        if kind.startswith("not"):
            assert ":" in how and len(how.split(":", 1)[1].strip()) > 10, (
                f"{names}: say why it is {kind}"
            )


def test_same_names_exist_under_the_same_name():
    for names, refs, how in _rows():
        if not how.startswith("same"):
            continue
        for n in names:
            assert f"gc.{n}" in refs, f"{n}: a 'same' row points to gc.{n}"
            if n not in PENDING:
                assert hasattr(gc, n), f"{n}: the table says graphcore has it, but it does not"


def test_every_name_the_table_points_to_exists():
    samples = _samples()
    missing = [
        ref
        for _, refs, _ in _rows()
        for ref in refs
        if not set(ref.split(".")) & PENDING and not _resolve(ref, samples)
    ]
    assert not missing, f"{DOC.name} points to names graphcore does not have: {missing}"


def test_pending_names_are_in_the_table():
    for name in PENDING:  # so that removing one from PENDING checks it
        assert any(name in names for names, _, _ in _rows()), name
