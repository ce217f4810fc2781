package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/dstream/dstream/expr"
	"github.com/dstream/dstream/stage"
)

type opKind uint8

const (
	opMap opKind = iota
	opFilter
	opFlat
	opSet
	opSelect
	opDrop
	opRename
	opParseJSON
	opExec
)

// op is one compiled operation.
type op struct {
	kind  opKind
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

// compile turns the command line's operations into ops, checking them all
// before any input is read. Its errors are usage errors (exit 2).
func compile(args []argOp) ([]*op, error) {
	var ops []*op
	for _, a := range args {
		o := &op{label: fmt.Sprintf("--%s %s", a.flag, quote(a.value))}
		if a.pos {
			o.label = "map " + quote(a.value)
		}
		var err error
		switch a.flag {
		case flagMap:
			o.kind = opMap
			if o.prog, err = compileExpr(o.label, a.value); err == nil {
				o.shape, o.hasShape = o.prog.MapShape()
				for _, k := range o.shape.Keys {
					o.shapeKeys = append(o.shapeKeys, []byte(k))
				}
			}
		case flagFilter:
			o.kind = opFilter
			if o.prog, err = compileExpr(o.label, a.value); err != nil {
				break
			}
			if t := o.prog.Type(); t != nil && t.Kind() != reflect.Bool {
				err = stage.UsageError("%s: the expression gives %s, not true or false", o.label, t)
				break
			}
			if v, ok := o.prog.Constant(); ok && v == true {
				continue // keeps every record: no operation at all
			}
		case flagFlat:
			o.kind = opFlat
			if o.prog, err = compileExpr(o.label, a.value); err != nil {
				break
			}
			if sp, ok := o.prog.Split(); ok {
				o.split = &sp
			}
		case flagSet:
			o.kind = opSet
			name, src, ok := strings.Cut(a.value, "=")
			if name = strings.TrimSpace(name); !ok || name == "" {
				err = stage.UsageError("%s: want NAME=EXPR", o.label)
				break
			}
			o.name = []byte(name)
			o.prog, err = compileExpr(o.label, src)
		case flagSelect, flagDrop:
			o.kind = opSelect
			if a.flag == flagDrop {
				o.kind = opDrop
			}
			for _, n := range stage.ParseList(a.value) {
				o.names = append(o.names, []byte(n))
			}
			if len(o.names) == 0 {
				err = stage.UsageError("%s: want a comma-separated list of fields", o.label)
			}
		case flagRename:
			o.kind = opRename
			for _, p := range stage.ParseList(a.value) {
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
		case flagParseJSON:
			o.kind = opParseJSON
			if strings.TrimSpace(a.value) == "" {
				err = stage.UsageError("%s: want a field name", o.label)
			}
			o.name = []byte(strings.TrimSpace(a.value))
		case flagExec:
			o.kind = opExec
			if strings.TrimSpace(a.value) == "" {
				err = stage.UsageError("%s: want a command", o.label)
			}
			o.cmd = a.value
		default:
			panic("smap: unknown operation " + a.flag)
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}

func compileExpr(label, src string) (*expr.Program, error) {
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
