package main

import (
	"strings"
	"sync"

	"github.com/dstream/dstream/transform"
	"github.com/urfave/cli/v2"
)

// opFlags are the flags that are operations, by the operation they give;
// each occurrence is one, in command-line order.
var opFlags = map[string]transform.Kind{
	flagMap: transform.Map, flagFilter: transform.Filter, flagFlat: transform.Flat,
	flagSet: transform.Set, flagSelect: transform.Select, flagDrop: transform.Drop,
	flagRename: transform.Rename, flagParseJSON: transform.ParseJSON, flagExec: transform.Exec,
}

// valueFlags tells, by name, which flags of smap's command line take a
// value: all but the bool flags. It comes from the definitions (the flags
// common to every stage and smap's own), as aggflags' scan does, so that a
// flag added to either needs nothing here.
var valueFlags = sync.OnceValue(func() map[string]bool {
	takes := map[string]bool{}
	for _, f := range newCommand(nil, nil).AllFlags() {
		tv := true
		if d, ok := f.(cli.DocGenerationFlag); ok {
			tv = d.TakesValue()
		}
		for _, n := range f.Names() {
			takes[n] = tv
		}
	}
	return takes
})

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
func scanArgs(args []string) (ops []transform.Op, positional []string, rearranged []string) {
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, p := range args[i+1:] {
				ops = append(ops, transform.Op{Kind: transform.Map, Arg: p, Positional: true})
				positional = append(positional, p)
			}
			break
		}
		if len(a) < 2 || a[0] != '-' {
			ops = append(ops, transform.Op{Kind: transform.Map, Arg: a, Positional: true})
			positional = append(positional, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		name, value, hasValue := strings.Cut(name, "=")
		flags = append(flags, a)
		if !valueFlags()[name] {
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
		if k, ok := opFlags[name]; ok {
			ops = append(ops, transform.Op{Kind: k, Arg: value})
		}
	}
	rearranged = flags
	if len(positional) > 0 {
		rearranged = append(append(rearranged, "--"), positional...)
	}
	return ops, positional, rearranged
}
