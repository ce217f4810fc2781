package expr

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
)

// analyzer walks a parsed tree before the checker sees it. It
//   - collects the record fields the expression reads: identifiers that are
//     not let variables, and $env.NAME / $env["NAME"];
//   - notes a use of $env as a whole, which needs every field;
//   - rewrites an identifier that names a function but is not called into
//     $env["NAME"], so that a field named count or type stays a field (expr
//     would take it for the function);
//   - refuses calls of unknown functions, which expr would only report when
//     the expression runs, and regular expressions that do not compile.
//
// Why a walk of our own and not an ast.Visitor: a visitor sees a node but
// not its parent, and whether an identifier is a field depends on where it
// stands (callee, let scope, $env member).
type analyzer struct {
	config *conf.Config
	fields []string
	index  map[string]int
	all    bool
	err    *file.Error
}

func (a *analyzer) field(name string) {
	if _, ok := a.index[name]; !ok {
		a.index[name] = len(a.fields)
		a.fields = append(a.fields, name)
	}
}

func (a *analyzer) fail(n ast.Node, format string, args ...any) {
	if a.err == nil {
		a.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}
	}
}

func (a *analyzer) isFunction(name string) bool {
	_, fn := a.config.Functions[name]
	_, b := a.config.Builtins[name]
	return fn || b
}

func inScope(scope []string, name string) bool {
	for _, s := range scope {
		if s == name {
			return true
		}
	}
	return false
}

// envMember reports whether n is $env.NAME or $env["NAME"], and NAME.
func envMember(n ast.Node) (string, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return "", false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "$env" {
		return "", false
	}
	s, ok := m.Property.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return s.Value, true
}

func (a *analyzer) walk(slot *ast.Node, scope []string) {
	switch n := (*slot).(type) {
	case nil:
	case *ast.IdentifierNode:
		switch {
		case inScope(scope, n.Value):
		case n.Value == "$env":
			a.all = true
		case a.isFunction(n.Value):
			ast.Patch(slot, &ast.MemberNode{
				Node:     &ast.IdentifierNode{Value: "$env"},
				Property: &ast.StringNode{Value: n.Value},
			})
			a.field(n.Value)
		default:
			a.field(n.Value)
		}
	case *ast.MemberNode:
		if name, ok := envMember(n); ok {
			a.field(name)
			return
		}
		a.walk(&n.Node, scope)
		a.walk(&n.Property, scope)
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && !inScope(scope, id.Value) {
			if _, known := a.config.Functions[id.Value]; !known {
				a.fail(n, "unknown function %s", id.Value)
				return
			}
			a.checkRegexp(id.Value, n.Arguments)
		} else {
			a.walk(&n.Callee, scope)
		}
		for i := range n.Arguments {
			a.walk(&n.Arguments[i], scope)
		}
	case *ast.VariableDeclaratorNode:
		a.walk(&n.Value, scope)
		a.walk(&n.Expr, append(scope[:len(scope):len(scope)], n.Name))
	case *ast.UnaryNode:
		a.walk(&n.Node, scope)
	case *ast.BinaryNode:
		a.walk(&n.Left, scope)
		a.walk(&n.Right, scope)
	case *ast.ChainNode:
		a.walk(&n.Node, scope)
	case *ast.SliceNode:
		a.walk(&n.Node, scope)
		a.walk(&n.From, scope)
		a.walk(&n.To, scope)
	case *ast.BuiltinNode:
		for i := range n.Arguments {
			a.walk(&n.Arguments[i], scope)
		}
	case *ast.PredicateNode:
		a.walk(&n.Node, scope)
	case *ast.SequenceNode:
		for i := range n.Nodes {
			a.walk(&n.Nodes[i], scope)
		}
	case *ast.ConditionalNode:
		a.walk(&n.Cond, scope)
		a.walk(&n.Exp1, scope)
		a.walk(&n.Exp2, scope)
	case *ast.ArrayNode:
		for i := range n.Nodes {
			a.walk(&n.Nodes[i], scope)
		}
	case *ast.MapNode:
		for i := range n.Pairs {
			a.walk(&n.Pairs[i], scope)
		}
	case *ast.PairNode:
		a.walk(&n.Key, scope)
		a.walk(&n.Value, scope)
	}
	// NilNode, IntegerNode, FloatNode, BoolNode, StringNode, BytesNode,
	// ConstantNode and PointerNode (#, #acc, #index) read no field.
}

// checkRegexp compiles a constant pattern given to a regexp helper, so that
// a bad one fails at start-up as it does with the matches operator.
func (a *analyzer) checkRegexp(fn string, args []ast.Node) {
	if !regexpHelpers[fn] || len(args) < 2 {
		return
	}
	if s, ok := args[1].(*ast.StringNode); ok {
		if _, err := cachedRegexp(s.Value); err != nil {
			a.fail(s, "%v", err)
		}
	}
}

// fieldRef reports whether n reads one record field as it is.
func fieldRef(n ast.Node) (string, bool) {
	if id, ok := n.(*ast.IdentifierNode); ok && id.Value != "$env" {
		return id.Value, true
	}
	return envMember(n)
}

// MapShape describes an expression whose value is a map literal, such as
// `{"word": value, "n": len(value)}`: Keys are its constant keys in the
// order written, and Fields[i] names the record field whose value Keys[i]
// takes unchanged ("" when the value is computed). A Go map loses the order
// of its keys; a stage that builds a record from the map uses this order
// (keys computed at run time follow, sorted).
type MapShape struct {
	Keys   []string
	Fields []string
}

// MapShape returns the shape of an expression that is a map literal.
func (p *Program) MapShape() (MapShape, bool) { return p.shape, p.hasShape }

func mapShape(root ast.Node) (MapShape, bool) {
	m, ok := root.(*ast.MapNode)
	if !ok {
		return MapShape{}, false
	}
	var s MapShape
	seen := map[string]bool{}
	for _, pn := range m.Pairs {
		pair := pn.(*ast.PairNode)
		k, ok := pair.Key.(*ast.StringNode)
		if !ok || seen[k.Value] {
			continue
		}
		seen[k.Value] = true
		f, _ := fieldRef(pair.Value)
		s.Keys = append(s.Keys, k.Value)
		s.Fields = append(s.Fields, f)
	}
	return s, true
}

// Split returns the shape of an expression that splits one string field,
// split(FIELD, "SEP") or fields(FIELD), so that a stage can cut the raw
// string itself (see Split).
func (p *Program) Split() (Split, bool) { return p.split, p.hasSplit }

func splitShape(root ast.Node) (Split, bool) {
	switch n := root.(type) {
	case *ast.BuiltinNode:
		if n.Name != "split" || len(n.Arguments) != 2 {
			return Split{}, false
		}
		f, ok := fieldRef(n.Arguments[0])
		sep, ok2 := n.Arguments[1].(*ast.StringNode)
		if ok && ok2 {
			return Split{Field: f, Sep: sep.Value}, true
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "fields" || len(n.Arguments) != 1 {
			return Split{}, false
		}
		if f, ok := fieldRef(n.Arguments[0]); ok {
			return Split{Field: f, Fields: true}, true
		}
	}
	return Split{}, false
}
