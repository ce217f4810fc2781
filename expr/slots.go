package expr

import (
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Fields as VM variables.
//
// Why: with a map for environment, every record costs a map assignment per
// field to bind it and a hashed lookup per read (OpLoadFast), 12-25% of a
// simple expression's time. The VM has a cheaper kind of variable, the one
// a let declares: a slot of VM.Variables read by index (OpLoadVar). So a
// program that does not use $env as a whole is compiled as usual against a
// map, then its reads of fields are turned into reads of slots past those
// of its let variables, and Bind writes the slots.
//
// A read of a field compiles to one instruction, OpLoadFast NAME, when the
// field is an identifier. $env.NAME and $env["NAME"] (and the identifiers
// that name functions, which the analyzer rewrote so) compile to several;
// they are first replaced in the tree by an identifier no expression can
// write, so that they too compile to one OpLoadFast. That instruction is
// then rewritten in place to OpLoadVar: same length, so no jump moves. A
// program with anything else left that reads the environment (OpLoadEnv)
// keeps the map.
//
// Why not an expr option: expr reads a struct environment by reflection
// (OpLoadField), slower than the map, and has no environment of slots.

// envPrefix starts the name of the identifier that stands for $env.NAME: an
// identifier of the language has no dot, so it cannot meet one written in
// an expression, nor a let variable.
const envPrefix = "$env."

// envReads replaces the $env.NAME and $env["NAME"] of tree by identifiers
// envPrefix+NAME. It returns a function that puts the tree back as it was.
func envReads(tree *ast.Node) (undo func()) {
	v := &envVisitor{}
	ast.Walk(tree, v)
	return func() {
		for i := len(v.slots) - 1; i >= 0; i-- {
			*v.slots[i] = v.old[i]
		}
	}
}

type envVisitor struct {
	slots []*ast.Node
	old   []ast.Node
}

func (v *envVisitor) Visit(n *ast.Node) {
	name, ok := envMember(*n)
	if !ok {
		return
	}
	id := &ast.IdentifierNode{Value: envPrefix + name}
	id.SetLocation((*n).Location())
	id.SetNature(*(*n).Nature()) // the compiler picks opcodes by the types of operands
	v.slots = append(v.slots, n)
	v.old = append(v.old, *n)
	*n = id
}

// slotReads rewrites prog to read fields from VM variables: the field
// index[NAME] (or the field NAME of an identifier envPrefix+NAME) from
// variable base+index[NAME], base being the first variable prog does not
// use. It returns base and the instructions rewritten, or false, leaving
// prog unchanged, if prog reads anything else from its environment.
func slotReads(prog *vm.Program, index map[string]int) (base int, loads []int, ok bool) {
	for ip, op := range prog.Bytecode {
		switch op {
		case vm.OpStore, vm.OpLoadVar:
			base = max(base, prog.Arguments[ip]+1)
		case vm.OpLoadFast:
			loads = append(loads, ip)
		case vm.OpLoadEnv, vm.OpLoadConst, vm.OpLoadField, vm.OpLoadMethod:
			return 0, nil, false
		}
	}
	fields := make([]int, len(loads))
	for k, ip := range loads {
		name, _ := prog.Constants[prog.Arguments[ip]].(string)
		if f, ok := strings.CutPrefix(name, envPrefix); ok {
			name = f
		}
		i, found := index[name]
		if !found {
			return 0, nil, false
		}
		fields[k] = i
	}
	for k, ip := range loads {
		prog.Bytecode[ip] = vm.OpLoadVar
		prog.Arguments[ip] = base + fields[k]
	}
	return base, loads, true
}

// dropDerefs returns a copy of prog in which the OpDeref that follows a read
// of a field (at loads) does nothing, or nil if there is none.
//
// Why: OpDeref follows most reads of a variable whose type is not known at
// compile time; it takes reflect's look at the value to follow a pointer,
// 9-14% of a simple expression's time. A field's value is a pointer only
// if the msgpack library made one (an extension type registered as a
// pointer): Bind notes that, and Run then takes prog itself. An OpDeref
// that a jump lands on may see another value than the field's, and stays.
//
// The OpDeref becomes OpJump 0, which goes on to the next instruction: the
// VM has no instruction that does nothing, and removing one would move the
// jumps.
func dropDerefs(prog *vm.Program, loads []int) *vm.Program {
	target := make([]bool, len(prog.Bytecode)+1)
	for ip, op := range prog.Bytecode {
		switch op {
		case vm.OpJump, vm.OpJumpIfTrue, vm.OpJumpIfFalse, vm.OpJumpIfNil, vm.OpJumpIfNotNil, vm.OpJumpIfEnd:
			if t := ip + 1 + prog.Arguments[ip]; t >= 0 && t < len(target) {
				target[t] = true
			}
		case vm.OpJumpBackward:
			if t := ip + 1 - prog.Arguments[ip]; t >= 0 && t < len(target) {
				target[t] = true
			}
		}
	}
	var drop []int
	for _, ip := range loads {
		if d := ip + 1; d < len(prog.Bytecode) && prog.Bytecode[d] == vm.OpDeref && !target[d] {
			drop = append(drop, d)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	fast := *prog
	fast.Bytecode = slices.Clone(prog.Bytecode)
	fast.Arguments = slices.Clone(prog.Arguments)
	for _, ip := range drop {
		fast.Bytecode[ip] = vm.OpJump
		fast.Arguments[ip] = 0
	}
	return &fast
}
