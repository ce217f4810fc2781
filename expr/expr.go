// Package expr compiles and runs the expressions dstream stages apply to
// records: expr-lang/expr over a record's fields, plus helpers for streams
// (regular expressions, sprintf, times, JSON, hashing; see Helpers).
//
// A Program is compiled once at start-up and run once per record. Each field
// of the record is a variable of the expression (a text line is the field
// `value`). Compile walks the expression's syntax tree to learn which fields
// it reads, so that a stage decodes only those from the raw msgpack record
// and passes every other field on as raw bytes:
//
//	p, err := expr.Compile(`len(value) > 3`)
//	...
//	for each record:
//		if err := p.BindRecord(rec); err != nil { ... }
//		v, err := p.Run()
//
// A field that the record does not have reads as nil, as a missing column of
// a JSON source reads as null in Spark; `x ?? 0` gives a default. A field
// whose name is also the name of a function (count, type, date, ...) is still
// the field when it is not called: `count > 10` reads the field count.
//
// A Program is not safe for concurrent use.
package expr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	exprlang "github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/dstream/dstream/record"
)

// Program is one compiled expression with the variables of the record it
// runs on.
type Program struct {
	// Source is the expression as written.
	Source string
	// Alias makes Bind keep string values that point into the raw bytes
	// they came from instead of copying them. That saves an allocation per
	// string field, but then the result of Run, and anything derived from
	// the bound values, is valid only as long as those bytes are unchanged:
	// set it only when every result is encoded or copied before the raw
	// bytes are reused.
	Alias bool

	fields  []string       // fields read, in order of first appearance
	index   map[string]int // fields[i] -> i
	all     bool           // the expression uses $env as a whole: bind every field
	present []bool         // present[i]: fields[i] was bound from the record
	unbound bool           // Reset since the last Run: clear the fields not bound
	vars    map[string]any // the environment; bound fields if slots is nil
	slots   []any          // fields[i] is slots[i], a VM variable (see slots.go); or nil
	prog    *vm.Program
	fast    *vm.Program // prog without the OpDeref of fields (see dropDerefs); or nil
	pointer bool        // a field bound since Reset is a pointer: run prog, not fast
	machine vm.VM
	typ     reflect.Type // static result type; nil when only known at run time
	walker  record.Fields
	boxes   boxes

	// Shapes of the parsed tree, taken before the checker and optimiser
	// rewrite it: a map literal of constants folds into one Go map, which
	// has lost the order of its keys.
	shape    MapShape
	hasShape bool
	split    Split
	hasSplit bool
	pred     *pred // a simple predicate, for FastBool; nil if not one
}

// CompileError is an expression that does not compile. Its message is
// expr's, with the line and column and, on the lines after it, the
// expression with a caret under the place of the error.
type CompileError struct {
	Source string
	Err    error
}

func (e *CompileError) Error() string { return e.Err.Error() }
func (e *CompileError) Unwrap() error { return e.Err }

// RunError is an expression that failed on one record.
type RunError struct {
	Msg     string   // what went wrong, with the line:column in the expression
	Missing []string // fields the expression reads that the record lacks
	Err     error    // the underlying error, if any
}

func (e *RunError) Error() string {
	if len(e.Missing) == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%s (the record has no field %s)", e.Msg, quoteList(e.Missing))
}

func (e *RunError) Unwrap() error { return e.Err }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// Compile compiles src with the helpers of this package. Its errors are
// *CompileError.
//
// It runs expr.Compile's steps itself (parse, check, optimise, compile):
// the analyzer must see, and rewrite, the tree between parsing and checking.
func Compile(src string) (*Program, error) { return compile(src, true) }

// compile is Compile; with slots false the program reads every field from
// the map, as a reference for the tests of slots.go.
func compile(src string, slots bool) (*Program, error) {
	config := conf.CreateNew()
	for _, opt := range []exprlang.Option{
		exprlang.Env(map[string]any{}),
		exprlang.AllowUndefinedVariables(),
	} {
		opt(config)
	}
	for _, h := range Helpers {
		exprlang.Function(h.Name, h.Func, h.Types...)(config)
	}
	fail := func(err error) (*Program, error) {
		return nil, &CompileError{Source: src, Err: err}
	}
	tree, err := parser.ParseWithConfig(src, config)
	if err != nil {
		return fail(err)
	}
	a := analyzer{config: config, index: map[string]int{}}
	a.walk(&tree.Node, nil)
	if a.err != nil {
		return fail(a.err.Bind(tree.Source))
	}
	p := &Program{Source: src, fields: a.fields, index: a.index, all: a.all}
	p.present = make([]bool, len(p.fields))
	p.vars = make(map[string]any, len(p.fields))
	p.shape, p.hasShape = mapShape(tree.Node)
	p.split, p.hasSplit = splitShape(tree.Node)
	p.pred = predShape(tree.Node, config)
	t, err := new(checker.Checker).PatchAndCheck(tree, config)
	if err != nil {
		return fail(err)
	}
	if t != nil && t.Kind() != reflect.Interface {
		p.typ = t
	}
	if err := optimizer.Optimize(&tree.Node, config); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return fail(fe.Bind(tree.Source))
		}
		return fail(err)
	}
	if err := p.compile(tree, config, slots); err != nil {
		return fail(err)
	}
	return p, nil
}

// compile compiles the checked and optimised tree, with the fields in VM
// variables if it can (see slots.go), else read from the map.
func (p *Program) compile(tree *parser.Tree, config *conf.Config, slots bool) error {
	if slots && !p.all {
		undo := envReads(&tree.Node)
		prog, err := compiler.Compile(tree, config)
		if err == nil {
			if base, loads, ok := slotReads(prog, p.index); ok {
				p.prog = prog
				p.fast = dropDerefs(prog, loads)
				p.machine.Variables = make([]any, base+len(p.fields))
				p.slots = p.machine.Variables[base:]
				return nil
			}
		}
		undo()
	}
	var err error
	p.prog, err = compiler.Compile(tree, config)
	return err
}

// Fields returns the record fields the expression reads, in the order they
// first appear in it. Bind takes an index into this list.
func (p *Program) Fields() []string { return p.fields }

// ReadsAll reports whether the expression uses $env as a whole (keys($env),
// 'x' in $env, $env[name]), so that every field of a record must be bound
// with BindAll.
func (p *Program) ReadsAll() bool { return p.all }

// Type returns the type of the expression's value when it is known at
// compile time (`len(value) > 3` is a bool), else nil.
func (p *Program) Type() reflect.Type { return p.typ }

// Constant returns the value of an expression that does not depend on the
// record (`true`, `1 + 1`), as the optimiser folded it.
func (p *Program) Constant() (any, bool) {
	switch n := p.prog.Node().(type) {
	case *ast.BoolNode:
		return n.Value, true
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.FloatNode:
		return n.Value, true
	case *ast.StringNode:
		return n.Value, true
	case *ast.NilNode:
		return nil, true
	case *ast.ConstantNode:
		return n.Value, true
	}
	return nil, false
}

// Reset forgets the fields bound for the last record. Bind and BindAll
// after it bind the next one, and Run sees nil for the fields not bound;
// BindRecord resets by itself.
func (p *Program) Reset() {
	if p.all {
		clear(p.vars)
	}
	clear(p.present)
	p.unbound = true
	p.pointer = false
}

// Bind sets field i of Fields from its raw msgpack value.
func (p *Program) Bind(i int, raw []byte) error {
	v, err := p.boxes.decode(raw, p.Alias)
	if err != nil {
		return fmt.Errorf("field %q: %w", p.fields[i], err)
	}
	if v != nil && reflect.TypeOf(v).Kind() == reflect.Pointer {
		p.pointer = true
	}
	p.set(i, v)
	p.present[i] = true
	return nil
}

// set makes v the value of fields[i].
func (p *Program) set(i int, v any) {
	if p.slots != nil {
		p.slots[i] = v
	} else {
		p.vars[p.fields[i]] = v
	}
}

// lookup returns the index in Fields of key, or -1. A few fields are
// compared in turn: cheaper than hashing the key.
func (p *Program) lookup(key []byte) int {
	if len(p.fields) > 8 {
		if i, ok := p.index[string(key)]; ok {
			return i
		}
		return -1
	}
	for i, f := range p.fields {
		if f == string(key) {
			return i
		}
	}
	return -1
}

// BindAll sets any field, for expressions that ReadsAll; for the others it
// binds the field if the expression reads it.
func (p *Program) BindAll(key, raw []byte) error {
	if i := p.lookup(key); i >= 0 {
		if p.present[i] {
			return nil // the first of duplicate keys wins, as in record.Get
		}
		return p.Bind(i, raw)
	}
	if !p.all {
		return nil
	}
	if _, dup := p.vars[string(key)]; dup {
		return nil
	}
	v, err := p.boxes.decode(raw, p.Alias)
	if err != nil {
		return fmt.Errorf("field %q: %w", key, err)
	}
	p.vars[string(key)] = v
	return nil
}

// BindRecord resets the program and binds the fields it reads from rec, a
// msgpack map, decoding only those.
func (p *Program) BindRecord(rec []byte) error {
	p.Reset()
	f := &p.walker
	f.Reset(rec)
	if p.all {
		for f.Next() {
			if err := p.BindAll(f.Key(), f.Value()); err != nil {
				return err
			}
		}
		return f.Err()
	}
	left := len(p.fields)
	for left > 0 && f.Next() {
		if i := p.lookup(f.Key()); i >= 0 && !p.present[i] {
			if err := p.Bind(i, f.Value()); err != nil {
				return err
			}
			left--
		}
	}
	return f.Err()
}

// Run evaluates the expression over the fields bound. Its errors are
// *RunError.
func (p *Program) Run() (any, error) {
	if p.unbound {
		// Fields the record lacks read as nil, not as the last record's.
		for i, ok := range p.present {
			if !ok && !p.all {
				p.set(i, nil)
			}
		}
		p.unbound = false
	}
	prog := p.prog
	if p.fast != nil && !p.pointer {
		prog = p.fast
	}
	v, err := p.machine.Run(prog, p.vars)
	if err != nil {
		return nil, p.runError(err)
	}
	return v, nil
}

func (p *Program) runError(err error) error {
	re := &RunError{Msg: err.Error(), Err: err}
	var fe *file.Error
	if errors.As(err, &fe) {
		// The message without expr's snippet: the caller shows the
		// expression, and one line per record error reads better.
		re.Msg = fe.Message
		if fe.Snippet != "" {
			re.Msg = fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column+1)
		}
		if fe.Prev != nil {
			re.Err = fe.Prev
		}
	}
	for i, ok := range p.present {
		if !ok {
			re.Missing = append(re.Missing, p.fields[i])
		}
	}
	return re
}

// decode turns a raw msgpack value into the Go value an expression sees:
// strings, int64, float64, bool, nil, time.Time, []any, map[string]any.
// The common scalars are read here without the msgpack library, and boxed
// by b.
func (b *boxes) decode(raw []byte, alias bool) (any, error) {
	switch record.KindOf(raw) {
	case record.KindString:
		if s, ok := record.Str(raw); ok {
			if alias {
				return b.string(unsafe.String(unsafe.SliceData(s), len(s))), nil
			}
			return b.string(string(s)), nil
		}
	case record.KindInt:
		if v, ok := record.Int(raw); ok {
			return b.int(v), nil
		}
	case record.KindFloat:
		if v, ok := record.Float(raw); ok {
			return b.float(v), nil
		}
	case record.KindNil:
		return nil, nil
	case record.KindBool:
		return raw[0] == 0xc3, nil
	}
	return record.Decode(raw)
}
