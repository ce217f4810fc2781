package expr

import (
	"bytes"
	"cmp"
	"strconv"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"

	"github.com/dstream/dstream/record"
)

// A pred is a simple predicate recognised on the parsed tree, evaluated
// straight on the raw msgpack record by Program.FastBool.
//
// Why: a filter such as `value != ""` run through the VM binds its fields
// into a map, boxes every string and runs the VM: ~250 ns and an
// allocation per record, most of a pipeline's time. Comparisons of a field
// with a constant need none of that: one record.Pick finds the fields, each
// is read once, and strings compare as the raw bytes they are.
//
// The shapes (FIELD is an identifier or $env.NAME / $env["NAME"], CONST an
// integer, float, string, bool or nil literal, a number possibly negated):
//
//	FIELD OP CONST, CONST OP FIELD          OP: == != < <= > >=
//	len(FIELD) OP CONST, CONST OP len(FIELD)
//	FIELD contains|startsWith|endsWith "STRING"
//	FIELD in [CONST, ...]
//	FIELD                                   a bool field
//	P and P, P or P, not P                  also &&, ||, !; parentheses
//
// Bool literals are not operands of and, or, not: expr's optimiser folds
// `x and true` into x, which is not a bool when x is not.
//
// The semantics are expr's (vm/runtime Equal, Less, In, builtin len, the
// contains opcodes), for the value kinds nil (or missing), bool, int, float
// and string. An evaluation that is not certainly expr's, where expr would
// fail (`nil > 3`, `"a" < 1`, `not nil`, len of a number) or whose value
// would not be a bool (`x > 1 and y` with y not a bool), and a record with
// any other kind of value (uint above MaxInt64, binary, array, map,
// timestamp) in a field the expression reads, even one that and/or would
// skip, declines: the caller runs the program, which gives expr's value or
// error.
type pred struct {
	root   *pnode
	fields []string
	index  map[string]int
	spans  []record.Span // where Pick found fields[i]
	vals   []fval        // fields[i] of the record in hand
}

type pkind uint8

const (
	pCompare    pkind = iota // operand op c
	pContains                // field contains c
	pStartsWith              // field startsWith c
	pEndsWith                // field endsWith c
	pIn                      // field in list (or set)
	pField                   // a bool field
	pNot                     // not x
	pAnd                     // x and y
	pOr                      // x or y
)

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var strOps = map[string]pkind{"contains": pContains, "startsWith": pStartsWith, "endsWith": pEndsWith}

var cmpOps = map[string]cmpOp{"==": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}

// flip gives the operator of c OP x written as x OP' c.
var flip = [...]cmpOp{opEq: opEq, opNe: opNe, opLt: opGt, opLe: opGe, opGt: opLt, opGe: opLe}

type pnode struct {
	kind   pkind
	op     cmpOp
	field  int  // index in pred.fields
	length bool // the operand is len(field)
	c      pval
	list   []pval
	// set is the list of `in` when it holds only strings: expr's optimiser
	// turns it into a map[string]struct{}, which a nil needle finds as ""
	// and any needle but a string makes fail.
	set  map[string]struct{}
	x, y *pnode
}

// pval is a constant of the predicate, of one of the kinds handled:
// KindNil, KindBool, KindInt, KindFloat or KindString.
type pval struct {
	kind record.Kind
	b    bool
	i    int64
	f    float64
	s    []byte
}

// predShape recognises a simple predicate on the parsed tree, after the
// analyzer and before the checker and optimiser; nil for any other
// expression.
func predShape(root ast.Node, config *conf.Config) *pred {
	// expr compares int64 values as int; and without short circuits, both
	// sides of and/or run, with their errors.
	if strconv.IntSize != 64 || !config.ShortCircuit {
		return nil
	}
	p := &pred{index: map[string]int{}}
	n, ok := p.node(root)
	if !ok {
		return nil
	}
	p.root = n
	p.spans = make([]record.Span, len(p.fields))
	p.vals = make([]fval, len(p.fields))
	return p
}

func (p *pred) field(n ast.Node) (int, bool) {
	name, ok := fieldRef(n)
	if !ok {
		return 0, false
	}
	i, seen := p.index[name]
	if !seen {
		i = len(p.fields)
		p.index[name] = i
		p.fields = append(p.fields, name)
	}
	return i, true
}

// operand recognises FIELD or len(FIELD).
func (p *pred) operand(n ast.Node) (field int, length, ok bool) {
	if b, isLen := n.(*ast.BuiltinNode); isLen {
		if b.Name != "len" || len(b.Arguments) != 1 {
			return 0, false, false
		}
		field, ok = p.field(b.Arguments[0])
		return field, true, ok
	}
	field, ok = p.field(n)
	return field, false, ok
}

// constant recognises a literal, as the optimiser would fold it.
func constant(n ast.Node) (pval, bool) {
	switch n := n.(type) {
	case *ast.NilNode:
		return pval{kind: record.KindNil}, true
	case *ast.BoolNode:
		return pval{kind: record.KindBool, b: n.Value}, true
	case *ast.IntegerNode:
		return pval{kind: record.KindInt, i: int64(n.Value)}, true
	case *ast.FloatNode:
		return pval{kind: record.KindFloat, f: n.Value}, true
	case *ast.StringNode:
		return pval{kind: record.KindString, s: []byte(n.Value)}, true
	case *ast.UnaryNode:
		if n.Operator != "-" && n.Operator != "+" {
			return pval{}, false
		}
		v, ok := constant(n.Node)
		if !ok || (v.kind != record.KindInt && v.kind != record.KindFloat) {
			return pval{}, false
		}
		if n.Operator == "-" {
			v.i, v.f = -v.i, -v.f
		}
		return v, true
	}
	return pval{}, false
}

func (p *pred) node(n ast.Node) (*pnode, bool) {
	switch n := n.(type) {
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil, false
		}
		x, ok := p.node(n.Node)
		return &pnode{kind: pNot, x: x}, ok
	case *ast.BinaryNode:
		switch n.Operator {
		case "and", "&&", "or", "||":
			x, ok := p.node(n.Left)
			if !ok {
				return nil, false
			}
			y, ok := p.node(n.Right)
			k := pAnd
			if n.Operator == "or" || n.Operator == "||" {
				k = pOr
			}
			return &pnode{kind: k, x: x, y: y}, ok
		case "contains", "startsWith", "endsWith":
			f, ok := p.field(n.Left)
			s, isStr := n.Right.(*ast.StringNode)
			if !ok || !isStr {
				return nil, false
			}
			return &pnode{kind: strOps[n.Operator], field: f, c: pval{kind: record.KindString, s: []byte(s.Value)}}, true
		case "in":
			return p.in(n)
		}
		op, isCmp := cmpOps[n.Operator]
		if !isCmp {
			return nil, false
		}
		if f, length, ok := p.operand(n.Left); ok {
			if c, ok := constant(n.Right); ok {
				return &pnode{kind: pCompare, op: op, field: f, length: length, c: c}, true
			}
			return nil, false
		}
		if c, ok := constant(n.Left); ok {
			if f, length, ok := p.operand(n.Right); ok {
				return &pnode{kind: pCompare, op: flip[op], field: f, length: length, c: c}, true
			}
		}
		return nil, false
	}
	if f, ok := p.field(n); ok {
		return &pnode{kind: pField, field: f}, true
	}
	return nil, false
}

func (p *pred) in(n *ast.BinaryNode) (*pnode, bool) {
	f, ok := p.field(n.Left)
	arr, isArr := n.Right.(*ast.ArrayNode)
	if !ok || !isArr {
		return nil, false
	}
	in := &pnode{kind: pIn, field: f}
	strs := len(arr.Nodes) > 0 // as the optimiser decides (optimizer/in_array.go)
	for _, e := range arr.Nodes {
		c, ok := constant(e)
		if !ok {
			return nil, false
		}
		if _, isStr := e.(*ast.StringNode); !isStr {
			strs = false
		}
		in.list = append(in.list, c)
	}
	if strs {
		in.set = make(map[string]struct{}, len(in.list))
		for _, c := range in.list {
			in.set[string(c.s)] = struct{}{}
		}
		in.list = nil
	}
	return in, true
}

// FastBool evaluates a simple predicate (see pred) straight on rec, a raw
// msgpack record, without binding or running the program. ok is false when
// the expression is not such a predicate or this record is not certainly
// handled; then BindRecord and Run give the value, or the error. When ok,
// v is what Run would give. It allocates nothing.
func (p *Program) FastBool(rec []byte) (v, ok bool) {
	pr := p.pred
	if pr == nil {
		return false, false
	}
	if err := record.Pick(rec, pr.fields, pr.spans); err != nil {
		return false, false
	}
	// Every field is read here, even one that and/or skips: BindRecord
	// decodes them all, and a value that might not decode declines.
	for i, sp := range pr.spans {
		if !pr.vals[i].read(rec, sp) {
			return false, false
		}
	}
	return pr.eval(pr.root, rec)
}

func (p *pred) eval(n *pnode, rec []byte) (v, ok bool) {
	switch n.kind {
	case pAnd:
		if v, ok = p.eval(n.x, rec); !ok || !v {
			return v, ok
		}
		return p.eval(n.y, rec)
	case pOr:
		if v, ok = p.eval(n.x, rec); !ok || v {
			return v, ok
		}
		return p.eval(n.y, rec)
	case pNot:
		if v, ok = p.eval(n.x, rec); !ok {
			return false, false
		}
		return !v, true
	}
	a := &p.vals[n.field]
	switch n.kind {
	case pField:
		return a.b, a.kind == record.KindBool
	case pCompare:
		if n.length {
			return lenCompare(n.op, a.str(rec), a.kind, &n.c)
		}
		return compare(n.op, a, rec, &n.c)
	case pContains, pStartsWith, pEndsWith:
		switch a.kind {
		case record.KindNil:
			return false, true
		case record.KindString:
			switch s := a.str(rec); n.kind {
			case pContains:
				return bytes.Contains(s, n.c.s), true
			case pStartsWith:
				return bytes.HasPrefix(s, n.c.s), true
			default:
				return bytes.HasSuffix(s, n.c.s), true
			}
		}
		return false, false
	case pIn:
		if n.set != nil {
			// A nil needle is looked up as the map's zero key, "".
			if a.kind != record.KindNil && a.kind != record.KindString {
				return false, false
			}
			_, found := n.set[string(a.str(rec))]
			return found, true
		}
		for i := range n.list {
			if equal(a, rec, &n.list[i]) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

// fval is a field's value in the record in hand, of a kind handled; a
// string as offsets into the record, so that storing it costs no write
// barrier.
type fval struct {
	kind       record.Kind
	b          bool
	i          int64
	f          float64
	start, end int32 // a string's bytes; empty for other kinds
}

// read sets v to the value Pick found at sp; a missing field is nil. It
// reports false for a kind not handled. Field by field: a struct returned
// by value and copied cost a store-forwarding stall per record.
func (v *fval) read(rec []byte, sp record.Span) bool {
	v.start, v.end = 0, 0
	if sp.End == 0 {
		v.kind = record.KindNil
		return true
	}
	raw := rec[sp.Start:sp.End]
	v.kind = record.KindOf(raw)
	var ok bool
	switch v.kind {
	case record.KindNil:
		return true
	case record.KindBool:
		v.b = raw[0] == 0xc3
		return true
	case record.KindInt:
		v.i, ok = record.Int(raw)
	case record.KindFloat:
		v.f, ok = record.Float(raw)
	case record.KindString:
		var s []byte
		s, ok = record.Str(raw) // the string ends the value
		v.start, v.end = sp.End-int32(len(s)), sp.End
	}
	return ok
}

func (v *fval) str(rec []byte) []byte { return rec[v.start:v.end] }

func numeric(k record.Kind) bool { return k == record.KindInt || k == record.KindFloat }

func (v *fval) float() float64 {
	if v.kind == record.KindInt {
		return float64(v.i)
	}
	return v.f
}

func (c *pval) float() float64 {
	if c.kind == record.KindInt {
		return float64(c.i)
	}
	return c.f
}

// equal is runtime.Equal over the kinds handled: numbers compare as int64,
// or as float64 when either is a float; values of different kinds are not
// equal; nil equals nil.
func equal(a *fval, rec []byte, c *pval) bool {
	switch {
	case a.kind == record.KindInt && c.kind == record.KindInt:
		return a.i == c.i
	case numeric(a.kind) && numeric(c.kind):
		return a.float() == c.float()
	case a.kind != c.kind:
		return false
	case a.kind == record.KindString:
		return bytes.Equal(a.str(rec), c.s)
	case a.kind == record.KindBool:
		return a.b == c.b
	}
	return a.kind == record.KindNil
}

// compare is a op c as expr's runtime has it. Ordering is defined between
// numbers and between strings (bytewise); any other pair is an error in
// expr, and declines.
func compare(op cmpOp, a *fval, rec []byte, c *pval) (v, ok bool) {
	switch {
	case op == opEq:
		return equal(a, rec, c), true
	case op == opNe:
		return !equal(a, rec, c), true
	case a.kind == record.KindInt && c.kind == record.KindInt:
		return order(op, a.i, c.i), true
	case numeric(a.kind) && numeric(c.kind):
		return order(op, a.float(), c.float()), true // false with a NaN, as in Go
	case a.kind == record.KindString && c.kind == record.KindString:
		return order(op, bytes.Compare(a.str(rec), c.s), 0), true
	}
	return false, false
}

// lenCompare is len(s) op c, s a value of kind k: len counts the runes of
// a string.
func lenCompare(op cmpOp, s []byte, k record.Kind, c *pval) (v, ok bool) {
	if k != record.KindString {
		return false, false // len(nil), len(1): an error in expr
	}
	n := &fval{kind: record.KindInt}
	// A string of n bytes has between ceil(n/4) and n runes (an invalid
	// byte counts as one). An order that holds, or fails, at both ends
	// does so in between: `len(value) > 3` need not count.
	if op >= opLt && numeric(c.kind) {
		n.i = int64(len(s)+3) / 4
		lo, _ := compare(op, n, nil, c)
		n.i = int64(len(s))
		if hi, _ := compare(op, n, nil, c); lo == hi {
			return lo, true
		}
	}
	n.i = int64(utf8.RuneCount(s))
	return compare(op, n, nil, c)
}

func order[T cmp.Ordered](op cmpOp, a, b T) bool {
	switch op {
	case opLt:
		return a < b
	case opLe:
		return a <= b
	case opGt:
		return a > b
	}
	return a >= b
}
