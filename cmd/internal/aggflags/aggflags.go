// Package aggflags is the command line of aggregation that sreduce and
// swindow share: the key flag, the aggregate flags in the order they are
// given, --top/--by and --skip-bad.
package aggflags

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

// Help describes the aggregate flags, for a command's Description.
const Help = `Aggregates, each with the name of its output field (NAME=FIELD renames it):
  --count            records in the group: count (--count-as NAME)
  --sum F            sum of F: sum_F. An integer while every value is one, a
                     float once a float is summed; an integer overflow is an
                     error. Nulls and missing fields are left out; no value
                     at all gives null.
  --avg F            mean of F, a float: avg_F (nulls left out)
  --min F, --max F   smallest, largest value of F: min_F, max_F (nulls left
                     out; mixed types compare in the order below)
  --first F, --last F  F of the group's first, last record: first_F, last_F
                     (null included)
  --distinct F       number of distinct non-null values of F: distinct_F
  --collect F        the non-null values of F as a list: collect_F (groupByKey)
A value that is not a number in --sum or --avg, or an overflow, stops the
stage with an error naming the record; --skip-bad skips the record instead
(nothing of it is counted) and reports it in --progress (numSkippedRows).

Output order: by key, comparing the key fields in turn: null first, then
booleans, numbers (numerically), strings (bytewise), binary, timestamps,
arrays, maps. With --top N --by NAME only the N groups with the largest
aggregate NAME are written, largest first, ties by key (--by may be left out
when there is a single aggregate).`

// Flags returns the grouping and aggregate flags.
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "group by `FIELD[,FIELD...]`; none: all records are one group", Category: "Grouping"},
		&cli.BoolFlag{Name: "count", Usage: "count the records of each group (field count)", Category: "Aggregates"},
		&cli.StringFlag{Name: "count-as", Usage: "count the records of each group into field `NAME`", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "sum", Usage: "sum of `[NAME=]FIELD` (field sum_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "min", Usage: "smallest value of `[NAME=]FIELD` (field min_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "max", Usage: "largest value of `[NAME=]FIELD` (field max_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "avg", Usage: "mean of `[NAME=]FIELD` (field avg_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "first", Usage: "value of `[NAME=]FIELD` in the group's first record (field first_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "last", Usage: "value of `[NAME=]FIELD` in the group's last record (field last_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "distinct", Usage: "number of distinct values of `[NAME=]FIELD` (field distinct_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "collect", Usage: "list of the values of `[NAME=]FIELD` (field collect_FIELD)", Category: "Aggregates"},
		&cli.IntFlag{Name: "top", Usage: "write only the `N` groups with the largest --by aggregate", Category: "Aggregates"},
		&cli.StringFlag{Name: "by", Usage: "the output field `NAME` of the aggregate that --top ranks by", Category: "Aggregates"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip records whose values cannot be aggregated, and count them in --progress", Category: "Aggregates"},
		&cli.BoolFlag{Name: "strict", Usage: "a key or aggregated field that no record of a batch has is an error (by default a note on stderr, once per field)", Category: "Aggregates"},
	}
}

// Options is the parsed aggregation command line.
type Options struct {
	Cfg     agg.Config
	Top     int // 0: every group
	By      int // index in Cfg.Aggs that --top ranks by; -1 without --top
	SkipBad bool
	// Strict: a field that no record of a batch has is an error (--strict).
	Strict bool
}

// Parse reads the flags of Flags; args is the raw command line (args[0]
// the program), scanned for the order of the aggregate flags.
func Parse(c *cli.Context, args []string) (*Options, error) {
	o := &Options{By: -1, SkipBad: c.Bool("skip-bad"), Strict: c.Bool("strict")}
	o.Cfg.Keys = splitList(c.StringSlice("key"))
	aggs, err := scanAggs(args, c)
	if err != nil {
		return nil, err
	}
	o.Cfg.Aggs = aggs
	if err := o.Cfg.Validate(); err != nil {
		return nil, stage.Usage(err)
	}
	if err := parseTop(c, o); err != nil {
		return nil, err
	}
	return o, nil
}

// aggFlags are the flags that add an aggregate, by the function they add.
var aggFlags = map[string]agg.Kind{
	"count": agg.Count, "count-as": agg.Count,
	"sum": agg.Sum, "min": agg.Min, "max": agg.Max, "avg": agg.Avg,
	"first": agg.First, "last": agg.Last, "distinct": agg.Distinct, "collect": agg.Collect,
}

func parseTop(c *cli.Context, o *Options) error {
	if !c.IsSet("top") {
		if c.IsSet("by") {
			return stage.UsageError("--by ranks groups for --top: add --top N")
		}
		return nil
	}
	if o.Top = c.Int("top"); o.Top < 1 {
		return stage.UsageError("--top %d: want at least 1", o.Top)
	}
	names := make([]string, len(o.Cfg.Aggs))
	for i, a := range o.Cfg.Aggs {
		names[i] = a.Name
	}
	by := c.String("by")
	switch {
	case by != "":
		o.By = slices.Index(names, by)
		if o.By < 0 {
			if len(names) == 0 {
				return stage.UsageError("--by %s: there is no aggregate to rank by", by)
			}
			return stage.UsageError("--by %s: no aggregate of that name (the aggregates are %s)", by, strings.Join(names, ", "))
		}
	case len(names) == 1:
		o.By = 0
	case len(names) == 0:
		return stage.UsageError("--top needs an aggregate to rank by, e.g. --count")
	default:
		return stage.UsageError("--top with several aggregates: say which one ranks with --by NAME (one of %s)", strings.Join(names, ", "))
	}
	return nil
}

// splitList splits flag values at commas, as urfave/cli does for slice
// flags, keeping empty items so that they can be refused.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

// scanAggs returns the aggregates in command-line order. urfave/cli keeps
// the order of the values of one flag but not the order between different
// flags, so the raw arguments are scanned for it, with the same rules as
// the flag package (which flags take a value comes from cli); cli has
// already parsed and checked them, and its values are compared with the
// scan's to be sure both agree.
func scanAggs(args []string, c *cli.Context) ([]agg.Spec, error) {
	takesValue := map[string]bool{}
	for _, f := range c.App.Flags {
		tv := true
		if d, ok := f.(cli.DocGenerationFlag); ok {
			tv = d.TakesValue()
		}
		for _, n := range f.Names() {
			takesValue[n] = tv
		}
	}
	var specs []agg.Spec
	scanned := map[string][]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break // the flag package stops at the first argument that is not a flag
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, val, hasVal := strings.Cut(a, "=")
		if takesValue[name] && !hasVal && i+1 < len(args) {
			i++
			val, hasVal = args[i], true
		}
		k, isAgg := aggFlags[name]
		switch {
		case !isAgg:
		case name == "count":
			if on, err := strconv.ParseBool(val); hasVal && (err != nil || !on) {
				continue
			}
			specs = append(specs, agg.Spec{Kind: agg.Count, Name: agg.DefaultName(agg.Count, "")})
		case name == "count-as":
			if val == "" {
				return nil, stage.UsageError("--count-as: empty name")
			}
			specs = append(specs, agg.Spec{Kind: agg.Count, Name: val})
		default:
			for _, v := range splitList([]string{val}) {
				s, err := agg.ParseSpec(k, v)
				if err != nil {
					return nil, stage.Usage(err)
				}
				specs = append(specs, s)
				scanned[name] = append(scanned[name], v)
			}
		}
	}
	for name, k := range aggFlags {
		if k == agg.Count {
			continue
		}
		if !slices.Equal(scanned[name], c.StringSlice(name)) {
			return nil, fmt.Errorf("cannot tell the order of the aggregation flags (--%s: %q from the command line, %q from cli)",
				name, scanned[name], c.StringSlice(name))
		}
	}
	return specs, nil
}
