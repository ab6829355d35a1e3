package policies

import (
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// CEL function names the policy environment adds to the CEL standard library.
const (
	FuncVersionCompare = "version_compare"  // version_compare(a, b) -> int (-1, 0, 1)
	FuncVersionAtLeast = "version_at_least" // a.version_at_least(b) -> bool
)

var (
	envOnce    sync.Once
	ruleEnv    *cel.Env // variables: every namespace
	groupEnv   *cel.Env // variables: endpoint only
	envInitErr error
)

// environments returns the CEL environments for rule conditions and group match conditions.
func environments() (rules, groups *cel.Env, err error) {
	envOnce.Do(func() {
		factMap := cel.MapType(cel.StringType, cel.DynType)
		common := []cel.EnvOption{
			cel.ParserRecursionLimit(maxCELRecursion),
			cel.ParserExpressionSizeLimit(MaxExprLength),
			cel.Function(FuncVersionCompare,
				cel.Overload("version_compare_string_string",
					[]*cel.Type{cel.StringType, cel.StringType}, cel.IntType,
					cel.BinaryBinding(celVersionCompare))),
			cel.Function(FuncVersionAtLeast,
				cel.MemberOverload("string_version_at_least_string",
					[]*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
					cel.BinaryBinding(celVersionAtLeast))),
		}
		ruleOpts := append([]cel.EnvOption{}, common...)
		for _, ns := range Namespaces {
			ruleOpts = append(ruleOpts, cel.Variable(ns, factMap))
		}
		ruleEnv, envInitErr = cel.NewEnv(ruleOpts...)
		if envInitErr != nil {
			return
		}
		groupEnv, envInitErr = cel.NewEnv(append(common, cel.Variable(NamespaceEndpoint, factMap))...)
	})
	return ruleEnv, groupEnv, envInitErr
}

func celVersionCompare(a, b ref.Val) ref.Val {
	x, ok1 := a.(types.String)
	y, ok2 := b.(types.String)
	if !ok1 || !ok2 {
		return types.NewErr("version_compare: arguments must be strings")
	}
	return types.Int(CompareVersions(string(x), string(y)))
}

func celVersionAtLeast(a, b ref.Val) ref.Val {
	x, ok1 := a.(types.String)
	y, ok2 := b.(types.String)
	if !ok1 || !ok2 {
		return types.NewErr("version_at_least: arguments must be strings")
	}
	return types.Bool(CompareVersions(string(x), string(y)) >= 0)
}

// celPos is a position inside a CEL expression (1-based line, 1-based column) where known.
type celPos struct{ line, col int }

// celError is one compile problem of a CEL expression.
type celError struct {
	pos celPos
	msg string
}

// condition is a compiled CEL condition.
type condition struct {
	prg   cel.Program
	loops int // comprehension nesting depth: 0 none, 1 a loop, 2 a loop in a loop, …
}

// compileBool compiles expr in env and checks that it yields a bool (or dyn, checked at run time).
func compileBool(env *cel.Env, expr string) (*condition, []celError) {
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var out []celError
		for _, e := range iss.Errors() {
			out = append(out, celError{
				pos: celPos{line: e.Location.Line(), col: e.Location.Column() + 1},
				msg: strings.TrimSuffix(e.Message, " (in container '')"),
			})
		}
		if len(out) == 0 {
			out = append(out, celError{msg: iss.Err().Error()})
		}
		return nil, out
	}
	switch t := ast.OutputType(); {
	case t.IsExactType(cel.BoolType), t.IsExactType(cel.DynType):
	default:
		return nil, []celError{{msg: fmt.Sprintf("expression has type %s, want bool", t)}}
	}
	prg, err := env.Program(ast,
		cel.InterruptCheckFrequency(interruptCheckFrequency),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, []celError{{msg: err.Error()}}
	}
	return &condition{prg: prg, loops: loopDepth(ast.NativeRep().Expr())}, nil
}

// loopDepth returns how deeply comprehensions (exists, all, map, filter, …) nest in e: the
// evaluation cost of a condition grows with the product of the sizes of the lists they iterate.
func loopDepth(e celast.Expr) int {
	if e == nil {
		return 0
	}
	d := 0
	deeper := func(x celast.Expr, add int) {
		if n := loopDepth(x) + add; n > d {
			d = n
		}
	}
	switch e.Kind() {
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			deeper(c.Target(), 0)
		}
		for _, a := range c.Args() {
			deeper(a, 0)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		deeper(c.IterRange(), 0)
		deeper(c.AccuInit(), 0)
		deeper(c.LoopCondition(), 1)
		deeper(c.LoopStep(), 1)
		deeper(c.Result(), 0)
		if d == 0 {
			d = 1
		}
	case celast.ListKind:
		for _, x := range e.AsList().Elements() {
			deeper(x, 0)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			deeper(en.AsMapEntry().Key(), 0)
			deeper(en.AsMapEntry().Value(), 0)
		}
	case celast.SelectKind:
		deeper(e.AsSelect().Operand(), 0)
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			deeper(f.AsStructField().Value(), 0)
		}
	}
	return d
}
