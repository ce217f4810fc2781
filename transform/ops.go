package transform

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/dstream/dstream/expr"
	"github.com/dstream/dstream/stage"
)

// Kind is the kind of an operation. Its String is the name of smap's flag
// for it, the name by which messages refer to the operation.
type Kind uint8

const (
	Map       Kind = iota // the record becomes the value of an expression
	Filter                // keep the records for which an expression is true
	Flat                  // each element of the list an expression gives becomes a record
	Set                   // add or replace one field: NAME=EXPR
	Select                // keep only these fields, in this order
	Drop                  // remove these fields
	Rename                // rename fields: OLD=NEW,...
	ParseJSON             // replace a field holding a JSON object by its fields
	Exec                  // pipe each batch through a command as JSON lines
)

var kindNames = [...]string{
	Map: "map", Filter: "filter", Flat: "flat", Set: "set", Select: "select",
	Drop: "drop", Rename: "rename", ParseJSON: "parse-json", Exec: "exec",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Op is one operation as the user gave it.
type Op struct {
	Kind Kind
	// Arg is the operation's argument as given: an expression (Map,
	// Filter, Flat), NAME=EXPR (Set), comma-separated fields (Select,
	// Drop), OLD=NEW pairs, comma-separated (Rename), a field (ParseJSON)
	// or a command for sh -c (Exec).
	Arg string
	// Positional marks a Map given as smap's argument EXPR rather than as
	// --map EXPR: messages call it "map EXPR".
	Positional bool
}

// op is one compiled operation.
type op struct {
	kind  Kind
	label string // how errors name it: --filter 'len(value) > 3'

	prog      *expr.Program // map, filter, flat, set
	shape     expr.MapShape // map: a map literal's key order
	shapeKeys [][]byte      // shape.Keys as bytes
	hasShape  bool
	split     *expr.Split // flat: split(FIELD, SEP) or fields(FIELD), cut in place

	name    []byte      // set: the field; parse-json: the field
	names   [][]byte    // select, drop
	renames [][2][]byte // rename: old, new
	cmd     string      // exec

	tmp []field // scratch list of fields, swapped with a record's
}

// compile turns the operations into ops, checking them all before any
// input is read. Its errors are usage errors (exit 2).
func compile(args []Op) ([]*op, error) {
	var ops []*op
	for _, a := range args {
		o := &op{label: fmt.Sprintf("--%s %s", a.Kind, Quote(a.Arg))}
		if a.Positional {
			o.label = "map " + Quote(a.Arg)
		}
		var err error
		switch a.Kind {
		case Map:
			o.kind = Map
			if o.prog, err = CompileExpr(o.label, a.Arg); err == nil {
				o.shape, o.hasShape = o.prog.MapShape()
				for _, k := range o.shape.Keys {
					o.shapeKeys = append(o.shapeKeys, []byte(k))
				}
			}
		case Filter:
			o.kind = Filter
			if o.prog, err = CompileExpr(o.label, a.Arg); err != nil {
				break
			}
			if t := o.prog.Type(); t != nil && t.Kind() != reflect.Bool {
				err = stage.UsageError("%s: the expression gives %s, not true or false", o.label, t)
				break
			}
			if v, ok := o.prog.Constant(); ok && v == true {
				continue // keeps every record: no operation at all
			}
		case Flat:
			o.kind = Flat
			if o.prog, err = CompileExpr(o.label, a.Arg); err != nil {
				break
			}
			if sp, ok := o.prog.Split(); ok {
				o.split = &sp
			}
		case Set:
			o.kind = Set
			name, src, ok := strings.Cut(a.Arg, "=")
			if name = strings.TrimSpace(name); !ok || name == "" {
				err = stage.UsageError("%s: want NAME=EXPR", o.label)
				break
			}
			o.name = []byte(name)
			o.prog, err = CompileExpr(o.label, src)
		case Select, Drop:
			o.kind = Select
			if a.Kind == Drop {
				o.kind = Drop
			}
			for _, n := range stage.ParseList(a.Arg) {
				o.names = append(o.names, []byte(n))
			}
			if len(o.names) == 0 {
				err = stage.UsageError("%s: want a comma-separated list of fields", o.label)
			}
		case Rename:
			o.kind = Rename
			for _, p := range stage.ParseList(a.Arg) {
				old, new, ok := strings.Cut(p, "=")
				old, new = strings.TrimSpace(old), strings.TrimSpace(new)
				if !ok || old == "" || new == "" {
					err = stage.UsageError("%s: want OLD=NEW[,OLD=NEW...], not %q", o.label, p)
					break
				}
				o.renames = append(o.renames, [2][]byte{[]byte(old), []byte(new)})
			}
			if err == nil && len(o.renames) == 0 {
				err = stage.UsageError("%s: want OLD=NEW[,OLD=NEW...]", o.label)
			}
		case ParseJSON:
			o.kind = ParseJSON
			if strings.TrimSpace(a.Arg) == "" {
				err = stage.UsageError("%s: want a field name", o.label)
			}
			o.name = []byte(strings.TrimSpace(a.Arg))
		case Exec:
			o.kind = Exec
			if strings.TrimSpace(a.Arg) == "" {
				err = stage.UsageError("%s: want a command", o.label)
			}
			o.cmd = a.Arg
		default:
			panic(fmt.Sprintf("transform: unknown operation %v", a.Kind))
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// CompileExpr compiles the expression src of an option, label naming it
// in messages ("--filter 'x > 1'"): an empty or wrong expression is a
// usage error. The program aliases strings into the record it is bound to
// (expr.Program.Alias): its value must be used before those bytes change.
// smap's operations and swindow's --session-gap-expr compile with it.
func CompileExpr(label, src string) (*expr.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, stage.UsageError("%s: the expression is empty", label)
	}
	p, err := expr.Compile(src)
	if err != nil {
		var ce *expr.CompileError
		if errors.As(err, &ce) {
			return nil, stage.UsageError("%s: %v", label, err)
		}
		return nil, err
	}
	// Every value an expression gives is encoded before the bytes it was
	// read from are reused (the frame until the next block, the arena until
	// the next record): strings may point into them. See expr.Program.Alias.
	p.Alias = true
	return p, nil
}

// Quote shows an expression or command as a shell would take it back, as
// messages show them.
func Quote(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return fmt.Sprintf("%q", s)
}
