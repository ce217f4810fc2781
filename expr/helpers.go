package expr

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/record"
)

// Helper is a function expressions can call besides expr's own builtins.
// Names never shadow a builtin: where a builtin does nearly what streams
// need (toJSON indents, fromJSON turns integers into floats) the helper has
// a name of its own.
type Helper struct {
	Name  string
	Group string // string, number, time, json or hash
	Usage string // how it is called: regexpExtract(s, re[, group])
	Doc   string // what it does
	Func  func(args ...any) (any, error)
	Types []any // its signatures, checked at compile time
}

// Doc documents one of expr's builtins, for help texts.
type Doc struct {
	Group, Usage, Doc string
}

// Helpers are the functions this package adds to expr.
var Helpers = []Helper{
	{Name: "fields", Group: "string", Usage: "fields(s)",
		Doc:   "the words of s, split around runs of white space (strings.Fields)",
		Func:  fieldsFn,
		Types: []any{new(func(string) []string)}},
	{Name: "sprintf", Group: "string", Usage: "sprintf(format, args...)",
		Doc:   `Go's fmt.Sprintf: sprintf("%s=%d", k, n), sprintf("%.2f", x), sprintf("%05d", n)`,
		Func:  sprintfFn,
		Types: []any{new(func(string, ...any) string)}},
	{Name: "regexpExtract", Group: "string", Usage: "regexpExtract(s, re[, group])",
		Doc:   `the first match of the regular expression re (RE2 syntax) in s: the given group (a number or a name), by default group 1 if re has groups and else the whole match; "" if re does not match (Spark's regexp_extract)`,
		Func:  regexpExtractFn,
		Types: []any{new(func(string, string) string), new(func(string, string, any) string)}},
	{Name: "regexpExtractAll", Group: "string", Usage: "regexpExtractAll(s, re[, group])",
		Doc:   "every match of re in s, as a list, with the group chosen as in regexpExtract",
		Func:  regexpExtractAllFn,
		Types: []any{new(func(string, string) []string), new(func(string, string, any) []string)}},
	{Name: "regexpReplace", Group: "string", Usage: "regexpReplace(s, re, repl)",
		Doc:   "s with every match of re replaced by repl, in which $1 or ${name} stand for a group",
		Func:  regexpReplaceFn,
		Types: []any{new(func(string, string, string) string)}},

	{Name: "toTime", Group: "time", Usage: "toTime(v[, layout[, tz]])",
		Doc:   `a time from v: a timestamp as it is, a number of unix seconds (fractions allowed), or a string in RFC 3339 ("2024-05-01T12:00:00Z"), "2006-01-02 15:04:05" or "2006-01-02" form; with a layout (Go's reference-time layout, or a name such as RFC1123 or DateTime) the string is read by it, in the time zone tz (default UTC)`,
		Func:  toTimeFn,
		Types: []any{new(func(any) time.Time), new(func(any, string) time.Time), new(func(any, string, string) time.Time)}},
	{Name: "formatTime", Group: "time", Usage: "formatTime(t, layout[, tz])",
		Doc:   `t (anything toTime reads) as text in the layout (Go's reference-time layout, or a name: RFC3339, RFC3339Nano, DateTime, DateOnly, TimeOnly, RFC1123, Kitchen, ...), in the time zone tz (default UTC)`,
		Func:  formatTimeFn,
		Types: []any{new(func(any, string) string), new(func(any, string, string) string)}},
	{Name: "truncateTime", Group: "time", Usage: "truncateTime(t, d)",
		Doc:   `t rounded down to a multiple of the duration d ("1m", "15s", "1h" or duration(...)), counted from the unix epoch, in UTC`,
		Func:  truncateTimeFn,
		Types: []any{new(func(any, any) time.Time)}},
	{Name: "unixSeconds", Group: "time", Usage: "unixSeconds(t)",
		Doc:   "t (anything toTime reads) as whole unix seconds",
		Func:  unixSecondsFn,
		Types: []any{new(func(any) int)}},
	{Name: "unixMillis", Group: "time", Usage: "unixMillis(t)",
		Doc:   "t (anything toTime reads) as unix milliseconds",
		Func:  unixMillisFn,
		Types: []any{new(func(any) int)}},
	{Name: "fromUnixMillis", Group: "time", Usage: "fromUnixMillis(ms)",
		Doc:   "the time of a number of unix milliseconds",
		Func:  fromUnixMillisFn,
		Types: []any{new(func(any) time.Time)}},

	{Name: "parseJSON", Group: "json", Usage: "parseJSON(s)",
		Doc:   "the value of the JSON text s: objects become maps, arrays lists, and integers stay integers (expr's fromJSON makes them floats)",
		Func:  parseJSONFn,
		Types: []any{new(func(string) any)}},
	{Name: "formatJSON", Group: "json", Usage: "formatJSON(v)",
		Doc:   "v as compact JSON text on one line, map keys sorted, times in RFC 3339 (expr's toJSON indents over several lines)",
		Func:  formatJSONFn,
		Types: []any{new(func(any) string)}},

	{Name: "md5", Group: "hash", Usage: "md5(v)",
		Doc:   "the MD5 digest of v in hex; strings are hashed as their bytes, other values as their text (42 as \"42\")",
		Func:  hashFn("md5", func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }),
		Types: []any{new(func(any) string)}},
	{Name: "sha1", Group: "hash", Usage: "sha1(v)",
		Doc:   "the SHA-1 digest of v in hex",
		Func:  hashFn("sha1", func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }),
		Types: []any{new(func(any) string)}},
	{Name: "sha256", Group: "hash", Usage: "sha256(v)",
		Doc:   "the SHA-256 digest of v in hex",
		Func:  hashFn("sha256", func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }),
		Types: []any{new(func(any) string)}},
	{Name: "fnv", Group: "hash", Usage: "fnv(v)",
		Doc:   "the 64-bit FNV-1a hash of v as a non-negative integer, for bucketing: fnv(user) % 16",
		Func:  fnvFn,
		Types: []any{new(func(any) int)}},
}

// Builtins documents the builtins of expr-lang/expr that streams use most;
// the full list is in its language definition.
var Builtins = []Doc{
	{"string", "split(s, sep[, n])", "the parts of s between the separators (strings.Split)"},
	{"string", "lower(s), upper(s)", "s in lower or upper case"},
	{"string", "trim(s[, chars]), trimPrefix(s, p), trimSuffix(s, p)", "s without surrounding white space (or chars), prefix or suffix"},
	{"string", "replace(s, old, new)", "s with every old replaced by new"},
	{"string", "indexOf(s, sub), hasPrefix(s, p), hasSuffix(s, p)", "where sub is, whether s starts or ends with p"},
	{"string", "join(list[, sep])", "the strings of list joined by sep"},
	{"string", "s contains sub, s startsWith p, s endsWith p, s matches re", "operators; matches is a regular-expression match"},
	{"string", "len(v)", "the length of a string (in characters), list or map"},
	{"number", "int(v), float(v), string(v)", "conversions; int and float also parse strings"},
	{"number", "round(x), floor(x), ceil(x), abs(x), min(a, b), max(a, b)", "rounding (half away from zero) and comparisons"},
	{"time", "now()", "the current time"},
	{"time", "date(s[, layout[, tz]])", "a time parsed from s"},
	{"time", "duration(s)", `a duration: duration("90s")`},
	{"list", "map(l, pred), filter(l, pred), any(l, pred), all(l, pred), count(l, pred), sum(l), first(l), last(l)", "over lists, # is the element: filter(tags, # != \"\")"},
	{"other", "x ?? y, c ? a : b, let v = ...; ...", "default for nil, condition, local variable"},
}

func argErr(fn string, i int, want string, v any) error {
	return fmt.Errorf("%s: argument %d: want %s, got %s", fn, i+1, want, describe(v))
}

func describe(v any) string {
	if v == nil {
		return "nil"
	}
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return fmt.Sprintf("%T (%s)", v, s)
}

func strArg(fn string, args []any, i int) (string, error) {
	switch v := args[i].(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", argErr(fn, i, "a string", args[i])
}

func intArg(fn string, args []any, i int) (int64, error) {
	switch v := args[i].(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case int32:
		return int64(v), nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v), nil
		}
	}
	return 0, argErr(fn, i, "an integer", args[i])
}

func fieldsFn(args ...any) (any, error) {
	s, err := strArg("fields", args, 0)
	if err != nil {
		return nil, err
	}
	return strings.Fields(s), nil
}

func sprintfFn(args ...any) (any, error) {
	f, err := strArg("sprintf", args, 0)
	if err != nil {
		return nil, err
	}
	return fmt.Sprintf(f, args[1:]...), nil
}

// regexpHelpers take a regular expression as their second argument.
var regexpHelpers = map[string]bool{"regexpExtract": true, "regexpExtractAll": true, "regexpReplace": true}

// Compiled regular expressions by pattern. Patterns are nearly always
// constants; a pattern taken from records could grow the cache without end,
// so it stops growing at maxRegexps.
var (
	regexps  sync.Map
	nregexps atomic.Int64
)

const maxRegexps = 1000

func cachedRegexp(pattern string) (*regexp.Regexp, error) {
	if re, ok := regexps.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if nregexps.Add(1) <= maxRegexps {
		// The key is copied: a pattern read from a record may point into
		// bytes that are reused (Program.Alias).
		regexps.Store(strings.Clone(pattern), re)
	}
	return re, nil
}

func regexpArgs(fn string, args []any) (string, *regexp.Regexp, error) {
	s, err := strArg(fn, args, 0)
	if err != nil {
		return "", nil, err
	}
	pat, err := strArg(fn, args, 1)
	if err != nil {
		return "", nil, err
	}
	re, err := cachedRegexp(pat)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", fn, err)
	}
	return s, re, nil
}

// group picks the submatch group of args[2], or the default: 1 when re has
// groups, else 0 (the whole match).
func group(fn string, re *regexp.Regexp, args []any) (int, error) {
	if len(args) < 3 {
		return min(1, re.NumSubexp()), nil
	}
	if name, ok := args[2].(string); ok {
		if i := re.SubexpIndex(name); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("%s: the regular expression %q has no group named %q", fn, re, name)
	}
	i, err := intArg(fn, args, 2)
	if err != nil {
		return 0, err
	}
	if i < 0 || i > int64(re.NumSubexp()) {
		return 0, fmt.Errorf("%s: the regular expression %q has no group %d", fn, re, i)
	}
	return int(i), nil
}

func regexpExtractFn(args ...any) (any, error) {
	s, re, err := regexpArgs("regexpExtract", args)
	if err != nil {
		return nil, err
	}
	g, err := group("regexpExtract", re, args)
	if err != nil {
		return nil, err
	}
	m := re.FindStringSubmatchIndex(s)
	if m == nil || m[2*g] < 0 {
		return "", nil
	}
	return s[m[2*g]:m[2*g+1]], nil
}

func regexpExtractAllFn(args ...any) (any, error) {
	s, re, err := regexpArgs("regexpExtractAll", args)
	if err != nil {
		return nil, err
	}
	g, err := group("regexpExtractAll", re, args)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		if m[2*g] >= 0 {
			out = append(out, s[m[2*g]:m[2*g+1]])
		} else {
			out = append(out, "")
		}
	}
	return out, nil
}

func regexpReplaceFn(args ...any) (any, error) {
	s, re, err := regexpArgs("regexpReplace", args)
	if err != nil {
		return nil, err
	}
	repl, err := strArg("regexpReplace", args, 2)
	if err != nil {
		return nil, err
	}
	return re.ReplaceAllString(s, repl), nil
}

// Times.

var layouts = map[string]string{
	"ANSIC":       time.ANSIC,
	"UnixDate":    time.UnixDate,
	"RubyDate":    time.RubyDate,
	"RFC822":      time.RFC822,
	"RFC822Z":     time.RFC822Z,
	"RFC850":      time.RFC850,
	"RFC1123":     time.RFC1123,
	"RFC1123Z":    time.RFC1123Z,
	"RFC3339":     time.RFC3339,
	"RFC3339Nano": time.RFC3339Nano,
	"Kitchen":     time.Kitchen,
	"Stamp":       time.Stamp,
	"StampMilli":  time.StampMilli,
	"StampMicro":  time.StampMicro,
	"StampNano":   time.StampNano,
	"DateTime":    time.DateTime,
	"DateOnly":    time.DateOnly,
	"TimeOnly":    time.TimeOnly,
}

func layout(s string) string {
	if l, ok := layouts[s]; ok {
		return l
	}
	return s
}

var zones sync.Map // name -> *time.Location

func zone(fn, name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	zones.Store(strings.Clone(name), z)
	return z, nil
}

// toTime reads a time: a time.Time, unix seconds, or a string.
func toTime(fn string, v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case int64:
		return time.Unix(t, 0).UTC(), nil
	case int:
		return time.Unix(int64(t), 0).UTC(), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			break
		}
		sec, frac := math.Modf(t)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	case string:
		for _, l := range []string{time.RFC3339Nano, time.DateTime, time.DateOnly} {
			if tt, err := time.Parse(l, t); err == nil {
				return tt, nil
			}
		}
		return time.Time{}, fmt.Errorf("%s: cannot read %q as a time: want RFC 3339 (2006-01-02T15:04:05Z07:00), \"2006-01-02 15:04:05\" or \"2006-01-02\", or give a layout", fn, t)
	}
	return time.Time{}, argErr(fn, 0, "a time, a number of unix seconds or a string", v)
}

func toTimeFn(args ...any) (any, error) {
	if len(args) == 1 {
		return toTime("toTime", args[0])
	}
	s, err := strArg("toTime", args, 0)
	if err != nil {
		return nil, err
	}
	l, err := strArg("toTime", args, 1)
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if len(args) > 2 {
		name, err := strArg("toTime", args, 2)
		if err != nil {
			return nil, err
		}
		if loc, err = zone("toTime", name); err != nil {
			return nil, err
		}
	}
	t, err := time.ParseInLocation(layout(l), s, loc)
	if err != nil {
		return nil, fmt.Errorf("toTime: %w", err)
	}
	return t, nil
}

func formatTimeFn(args ...any) (any, error) {
	t, err := toTime("formatTime", args[0])
	if err != nil {
		return nil, err
	}
	l, err := strArg("formatTime", args, 1)
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if len(args) > 2 {
		name, err := strArg("formatTime", args, 2)
		if err != nil {
			return nil, err
		}
		if loc, err = zone("formatTime", name); err != nil {
			return nil, err
		}
	}
	return t.In(loc).Format(layout(l)), nil
}

func truncateTimeFn(args ...any) (any, error) {
	t, err := toTime("truncateTime", args[0])
	if err != nil {
		return nil, err
	}
	var d time.Duration
	switch v := args[1].(type) {
	case time.Duration:
		d = v
	case string:
		if d, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("truncateTime: %w", err)
		}
	default:
		return nil, argErr("truncateTime", 1, `a duration such as "1m"`, v)
	}
	if d <= 0 {
		return nil, fmt.Errorf("truncateTime: the duration must be positive, not %v", d)
	}
	// time.Truncate counts from the zero time; from the epoch, so that
	// windows line up with batch times (which are unix milliseconds).
	ns := t.UnixNano()
	r := ns % int64(d)
	if r < 0 {
		r += int64(d)
	}
	return time.Unix(0, ns-r).UTC(), nil
}

func unixSecondsFn(args ...any) (any, error) {
	t, err := toTime("unixSeconds", args[0])
	if err != nil {
		return nil, err
	}
	return int(t.Unix()), nil
}

func unixMillisFn(args ...any) (any, error) {
	t, err := toTime("unixMillis", args[0])
	if err != nil {
		return nil, err
	}
	return int(t.UnixMilli()), nil
}

func fromUnixMillisFn(args ...any) (any, error) {
	ms, err := intArg("fromUnixMillis", args, 0)
	if err != nil {
		return nil, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

// JSON.

func parseJSONFn(args ...any) (any, error) {
	s, err := strArg("parseJSON", args, 0)
	if err != nil {
		return nil, err
	}
	b, err := record.AppendJSONValue(nil, []byte(s))
	if err != nil {
		return nil, fmt.Errorf("parseJSON: %w", err)
	}
	return record.Decode(b)
}

func formatJSONFn(args ...any) (any, error) {
	b, err := record.AppendValue(nil, args[0])
	if err != nil {
		return nil, fmt.Errorf("formatJSON: %w", err)
	}
	j, _, err := record.AppendJSON(nil, b)
	if err != nil {
		return nil, fmt.Errorf("formatJSON: %w", err)
	}
	return string(j), nil
}

// Hashes.

// hashBytes gives the bytes of a string, or the text of another value.
func hashBytes(fn string, v any) ([]byte, error) {
	switch s := v.(type) {
	case string:
		return []byte(s), nil
	case []byte:
		return s, nil
	}
	b, err := record.AppendValue(nil, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return record.FormatText(nil, b), nil
}

func hashFn(name string, sum func([]byte) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		b, err := hashBytes(name, args[0])
		if err != nil {
			return nil, err
		}
		return sum(b), nil
	}
}

func fnvFn(args ...any) (any, error) {
	b, err := hashBytes("fnv", args[0])
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write(b)
	return int(h.Sum64() & math.MaxInt64), nil
}
