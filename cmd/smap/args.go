package main

import (
	"strings"

	"github.com/dstream/dstream/stage"
)

// argOp is one operation as the command line gives it: the flag's name
// ("map" also for the positional EXPR) and its value.
type argOp struct {
	flag  string
	value string
	pos   bool // the positional EXPR
}

// opFlags are the flags that are operations; each occurrence is one, in
// command-line order.
var opFlags = map[string]bool{
	flagMap: true, flagFilter: true, flagFlat: true, flagSet: true, flagSelect: true,
	flagDrop: true, flagRename: true, flagParseJSON: true, flagExec: true,
}

// valueFlags are the flags besides the operations that take a value: the
// common flags of every stage.
var valueFlags = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range stage.CommonValueFlags() {
		m[n] = true
	}
	return m
}()

// scanArgs reads the operations from the raw arguments (without the
// program name), in order, and returns the arguments rearranged for
// urfave/cli: flags first, then "--" and the positional arguments.
//
// Why a scan of our own: urfave/cli/v2 keeps each flag's values but not the
// order between different flags, and it stops at the first positional
// argument, so that `smap EXPR --filter X` would never see --filter. The
// scan follows Go's flag syntax (-name or --name, a value as the next
// argument or after "=", "--" ends the flags); urfave/cli still parses the
// rearranged arguments, so that --help, unknown flags and missing values
// are reported as for every stage.
func scanArgs(args []string) (ops []argOp, positional []string, rearranged []string) {
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, p := range args[i+1:] {
				ops = append(ops, argOp{flag: flagMap, value: p, pos: true})
				positional = append(positional, p)
			}
			break
		}
		if len(a) < 2 || a[0] != '-' {
			ops = append(ops, argOp{flag: flagMap, value: a, pos: true})
			positional = append(positional, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		name, value, hasValue := strings.Cut(name, "=")
		flags = append(flags, a)
		if !opFlags[name] && !valueFlags[name] {
			continue // a bool flag, or one urfave/cli will refuse
		}
		if !hasValue {
			if i+1 == len(args) {
				continue // urfave/cli reports the missing value
			}
			i++
			value = args[i]
			flags = append(flags, value)
		}
		if opFlags[name] {
			ops = append(ops, argOp{flag: name, value: value})
		}
	}
	rearranged = flags
	if len(positional) > 0 {
		rearranged = append(append(rearranged, "--"), positional...)
	}
	return ops, positional, rearranged
}
