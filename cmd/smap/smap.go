package main

import (
	"io"
	"strings"

	"github.com/dstream/dstream/expr"
	"github.com/dstream/dstream/stage"
	"github.com/dstream/dstream/transform"
	"github.com/urfave/cli/v2"
)

// Flags that are operations, applied in command-line order.
const (
	flagMap       = "map"
	flagFilter    = "filter"
	flagFlat      = "flat"
	flagSet       = "set"
	flagSelect    = "select"
	flagDrop      = "drop"
	flagRename    = "rename"
	flagParseJSON = "parse-json"
	flagExec      = "exec"
	flagSkipBad   = "skip-bad"
)

const description = `smap applies per-record operations to every batch: DStream's map, filter
and flatMap, and Structured Streaming's select, fused in one process. The
operations apply in the order they are given on the command line; batch
boundaries, empty batches and watermarks pass through untouched.

Operations:
  EXPR, --map EXPR      map: the record becomes the value of EXPR. A map
                        becomes the record (the keys of a map literal in the
                        order written); any other value becomes {"value": v}.
  --filter EXPR         keep the records for which EXPR is true (nil, as from
                        a missing field, counts as false)
  --flat EXPR           flatMap: EXPR gives a list, and each element becomes a
                        record (a map as it is, anything else {"value": x});
                        nil gives none
  --set NAME=EXPR       add the field NAME, or replace it where it stands
  --select A,B          keep only these fields, in this order (a missing one
                        is null)
  --drop A,B            remove these fields
  --rename OLD=NEW,...  rename fields (a missing OLD is no error; a field
                        already named NEW gives way)
  --parse-json FIELD    replace FIELD, a string holding a JSON object, by the
                        fields of the object, where FIELD stood (they replace
                        fields of the same name)
  --exec CMD            pipe each batch through 'sh -c CMD', as RDD.pipe: the
                        records as JSON lines on its stdin, and each line of its
                        stdout (a JSON object, or any JSON value as {"value": v})
                        a record of the batch. One process per batch, empty
                        batches too; DSTREAM_BATCH_ID and DSTREAM_BATCH_TIME
                        (unix ms) are in its environment; its stderr is
                        smap's. A non-zero exit fails the stage.

A map expression is given as the argument EXPR or as --map EXPR (repeatable,
for several maps or to place one exactly); EXPR may stand before or after the
flags. Every operation flag may be repeated.

Expressions are expr-lang/expr (https://expr-lang.org), compiled once at
start-up: an expression that does not compile stops smap before it reads
anything, showing where. Each field of the record is a variable (a text line
from sbatch is the field value); a field the record lacks is nil ('x ?? 0'
gives a default); $env["odd-name"] reads any field. Integers stay integers,
floats floats, timestamps timestamps. Only the fields an expression reads are
decoded; the others pass on as they came.

Errors: an expression that fails on a record (a missing field, a wrong type)
stops smap with the batch, the record's number in the batch (from 1) and the
record as JSON; with --skip-bad the record is dropped instead and counted in
--progress (numSkippedRows). A bad output line of --exec is handled alike.

Examples:
  printf 'a b\nc\n' | sbatch --once | smap --flat 'split(value, " ")' | ssink --format lines
  sbatch -i 1s access.log | smap --filter 'value contains "ERROR"' | ssink
  sbatch --once app.log | smap --filter 'len(value) > 3' --set 'n=len(value)' --select value,n | ssink
  sbatch --format json events.jsonl | smap '{"user": user, "day": formatTime(ts, "DateOnly")}' | ssink
  sbatch --format json kafka.jsonl | smap --parse-json value --filter 'status >= 500' | ssink --format json
  sbatch --format json in.jsonl | smap --exec 'python3 enrich.py' | ssink --format json
  sbatch --format json x.jsonl | smap --exec 'jq -c "{n: .a}"' | ssink --format json
`

// helpText names the helpers and the builtins, from the expr package's
// tables, so that --help and the code cannot disagree; what each does is
// in docs/smap.md (its tables are checked against the same ones).
func helpText() string {
	var b strings.Builder
	b.WriteString("\nFunctions added to expr's builtins (what each does: docs/smap.md, Functions):\n")
	var group string
	var items []string
	for _, h := range expr.Helpers {
		if h.Group != group {
			if items != nil {
				b.WriteString(wrap("  "+group+": ", items))
			}
			group, items = h.Group, nil
		}
		items = append(items, h.Usage)
	}
	b.WriteString(wrap("  "+group+": ", items))
	items = nil
	for _, d := range expr.Builtins {
		items = append(items, d.Usage)
	}
	b.WriteString("expr's builtins used most (all: https://expr-lang.org/docs/language-definition):\n")
	b.WriteString(wrap("  ", items))
	return b.String()
}

// wrap writes items after head, separated by "; ", in lines of at most 78
// columns, an item never split, the lines after the first indented.
func wrap(head string, items []string) string {
	var b strings.Builder
	line := head
	for i, it := range items {
		if i > 0 {
			line += ";"
			if len(line)+1+len(it) > 78 {
				b.WriteString(line + "\n")
				line = "     "
			}
			line += " "
		}
		line += it
	}
	return b.String() + line + "\n"
}

func newCommand(ops []transform.Op, positional []string) *stage.Command {
	return &stage.Command{
		Name:        "smap",
		Usage:       "map, filter, flatMap and select over records, fused in one process",
		ArgsUsage:   "[EXPR]",
		Description: description + helpText(),
		Input:       true,
		Output:      true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagMap, Usage: "map: the record becomes the value of `EXPR` (repeatable)", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagFilter, Usage: "keep the records for which `EXPR` is true (repeatable)", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagFlat, Usage: "flatMap: each element of the list `EXPR` gives becomes a record (repeatable)", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagSet, Usage: "add or replace field NAME with the value of EXPR (`NAME=EXPR`, repeatable)", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagSelect, Usage: "keep only `FIELDS` (comma-separated), in that order", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagDrop, Usage: "remove `FIELDS` (comma-separated)", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagRename, Usage: "rename fields (`OLD=NEW`, comma-separated)", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagParseJSON, Usage: "replace `FIELD`, a JSON object in a string, by its fields", Category: "Operations (applied in command-line order)"},
			&cli.StringFlag{Name: flagExec, Usage: "pipe each batch through `CMD` (sh -c) as JSON lines", Category: "Operations (applied in command-line order)"},
			&cli.BoolFlag{Name: flagSkipBad, Usage: "drop records an operation fails on (and bad --exec output lines), counted in --progress, instead of failing"},
		},
		Action: func(e *stage.Env) error {
			if len(positional) > 1 {
				return stage.Hint(stage.UsageError("one map EXPR argument at most, got %d: %s", len(positional), quoteArgs(positional)),
					"quote the expression, as in smap 'upper(value)'; use --map EXPR for several maps")
			}
			m, err := transform.New(transform.Options{Ops: ops, SkipBad: e.Ctx.Bool(flagSkipBad)}, e.Out, e.Stderr, &e.Stats)
			if err != nil {
				return err
			}
			defer m.Close()
			return e.Loop(m)
		},
	}
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = transform.Quote(a)
	}
	return strings.Join(q, " ")
}

// smapCommand is the command of main.go. It scans the raw arguments for the
// order of the operations before stage.Command parses them: see scanArgs.
type smapCommand struct{}

var command smapCommand

// Run runs smap with args (args[0] is the program name) and returns the
// exit code.
func (smapCommand) Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"smap"}
	}
	if len(args) > 1 && (args[1] == "--man" || args[1] == "--completion") {
		return newCommand(nil, nil).Run(args, stdin, stdout, stderr) // made from the flags alone
	}
	ops, positional, rearranged := scanArgs(args[1:])
	return newCommand(ops, positional).Run(append([]string{args[0]}, rearranged...), stdin, stdout, stderr)
}
