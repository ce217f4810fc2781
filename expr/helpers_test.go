package expr

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHelpers(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 34, 56, 789000000, time.UTC)
	r := rec(t, "value", "GET /index.html 200 1532", "n", int64(42), "t", ts,
		"s", "2024-05-01T12:34:56.789Z", "secs", int64(1714566896), "fsecs", 1714566896.5,
		"ms", int64(1714566896789), "js", `{"a": 1, "b": [2.5, "x"], "c": {"d": null}}`, "words", "  a \t b  ")
	tests := []struct {
		src  string
		want any
	}{
		{`fields(words)`, []string{"a", "b"}},
		{`sprintf("%s:%d:%.1f", "k", n, 1.25)`, "k:42:1.2"},
		{`sprintf("%05d", n)`, "00042"},
		{`regexpExtract(value, "^(\\w+) (\\S+)")`, "GET"},
		{`regexpExtract(value, "^(\\w+) (\\S+)", 2)`, "/index.html"},
		{`regexpExtract(value, "^(\\w+) (\\S+)", 0)`, "GET /index.html"},
		{`regexpExtract(value, "(?P<code>\\d{3})", "code")`, "200"},
		{`regexpExtract(value, "\\d+")`, "200"},
		{`regexpExtract(value, "nomatch(\\d)")`, ""},
		{`regexpExtractAll(value, "\\d+")`, []string{"200", "1532"}},
		{`regexpExtractAll(value, "(\\d)(\\d+)", 2)`, []string{"00", "532"}},
		{`regexpExtractAll(value, "zzz")`, []string{}},
		{`regexpReplace(value, "(\\d+)", "<$1>")`, "GET /index.html <200> <1532>"},
		{`regexpReplace("a-b", "-", "")`, "ab"},
		{`value matches "^GET"`, true},

		{`toTime(s)`, ts},
		{`toTime(t)`, ts},
		{`toTime(secs)`, time.Unix(1714566896, 0).UTC()},
		{`toTime(fsecs)`, time.Unix(1714566896, 500000000).UTC()},
		{`toTime("2024-05-01 12:34:56")`, time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC)},
		{`toTime("2024-05-01")`, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{`toTime("01/05/2024", "02/01/2006")`, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{`toTime("Wed, 01 May 2024 12:34:56 UTC", "RFC1123")`, time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC)},
		{`unixSeconds(toTime("2024-05-01 14:00", "2006-01-02 15:04", "Europe/Paris"))`, 1714564800},
		{`formatTime(t, "2006-01-02")`, "2024-05-01"},
		{`formatTime(t, "RFC3339")`, "2024-05-01T12:34:56Z"},
		{`formatTime(t, "RFC3339Nano")`, "2024-05-01T12:34:56.789Z"},
		{`formatTime(secs, "DateTime")`, "2024-05-01 12:34:56"},
		{`formatTime(s, "15:04", "Asia/Tokyo")`, "21:34"},
		{`truncateTime(t, "1m")`, time.Date(2024, 5, 1, 12, 34, 0, 0, time.UTC)},
		{`truncateTime(t, "15m")`, time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{`truncateTime(t, duration("1h"))`, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{`truncateTime(toTime(-1.5), "1s")`, time.Unix(-2, 0).UTC()},
		{`unixSeconds(t)`, 1714566896},
		{`unixMillis(t)`, 1714566896789},
		{`unixMillis(s)`, 1714566896789},
		{`fromUnixMillis(ms)`, ts},
		{`unixMillis(fromUnixMillis(ms)) == ms`, true},

		{`parseJSON(js)`, map[string]any{"a": int64(1), "b": []any{2.5, "x"}, "c": map[string]any{"d": nil}}},
		{`parseJSON("[1, 2]")`, []any{int64(1), int64(2)}},
		{`parseJSON(js).a + 1`, 2},
		{`formatJSON({"b": 1, "a": [true, nil, "x"], "t": t})`, `{"a":[true,null,"x"],"b":1,"t":"2024-05-01T12:34:56.789Z"}`},
		{`formatJSON(parseJSON(js))`, `{"a":1,"b":[2.5,"x"],"c":{"d":null}}`},

		{`md5("hello")`, "5d41402abc4b2a76b9719d911017c592"},
		{`sha1("hello")`, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"},
		{`sha256("hello")`, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
		{`fnv("hello")`, 0xa430d84680aabd0b & 0x7fffffffffffffff}, // FNV-1a 64 of "hello" is 0xa430d84680aabd0b
		{`fnv(n) == fnv("42")`, true},
		{`md5(n) == md5("42")`, true},
		{`fnv("a") % 16 >= 0`, true},

		// Builtins documented in the help.
		{`int("12") + 1`, 13},
		{`float("1.5")`, 1.5},
		{`round(2.5)`, 3.0},
		{`upper(split(value, " ")[0])`, "GET"},
		{`trim("  x ")`, "x"},
		{`replace("a-b-c", "-", "+")`, "a+b+c"},
		{`value contains "index"`, true},
	}
	for _, tt := range tests {
		got, err := run(t, tt.src, r)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if gt, ok := got.(time.Time); ok {
			if wt, ok := tt.want.(time.Time); ok && gt.Equal(wt) {
				continue
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v (%T), want %#v (%T)", tt.src, got, got, tt.want, tt.want)
		}
	}
}

func TestHelperErrors(t *testing.T) {
	r := rec(t, "value", "x", "n", int64(1), "re", "([")
	tests := []struct{ src, want string }{
		{`regexpExtract(value, re)`, "regexpExtract: error parsing regexp"},
		{`regexpExtract(value, "(a)", 2)`, `regexpExtract: the regular expression "(a)" has no group 2`},
		{`regexpExtract(value, "(a)", "nope")`, `has no group named "nope"`},
		{`regexpReplace(n, "a", "b")`, "regexpReplace: argument 1: want a string, got int64 (1)"},
		{`toTime("yesterday")`, `toTime: cannot read "yesterday" as a time`},
		{`toTime("x", "2006")`, `toTime: parsing time "x"`},
		{`toTime(true)`, "toTime: argument 1: want a time, a number of unix seconds or a string, got bool (true)"},
		{`formatTime(value, "DateOnly")`, `formatTime: cannot read "x" as a time`},
		{`formatTime(n, "DateOnly", "Mars/Base")`, "formatTime: unknown time zone Mars/Base"},
		{`truncateTime(n, "0s")`, "truncateTime: the duration must be positive"},
		{`truncateTime(n, "abc")`, `truncateTime: time: invalid duration "abc"`},
		{`parseJSON(value)`, "parseJSON: invalid character 'x' looking for beginning of value at offset 0"},
		{`parseJSON("{")`, "parseJSON: unexpected end of JSON input at offset 1"},
		{`fromUnixMillis(value)`, "fromUnixMillis: argument 1: want an integer"},
		{`sprintf(n)`, "sprintf: argument 1: want a string"},
	}
	for _, tt := range tests {
		_, err := run(t, tt.src, r)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.src, err, tt.want)
		}
	}
}

// Every helper has a usage and a doc, and none takes a builtin's name.
func TestHelperTable(t *testing.T) {
	p, err := Compile("1")
	if err != nil {
		t.Fatal(err)
	}
	_ = p
	seen := map[string]bool{}
	for _, h := range Helpers {
		if h.Usage == "" || h.Doc == "" || h.Group == "" || len(h.Types) == 0 {
			t.Errorf("helper %s is not fully described", h.Name)
		}
		if !strings.HasPrefix(h.Usage, h.Name+"(") {
			t.Errorf("helper %s: usage %q does not start with its name", h.Name, h.Usage)
		}
		if seen[h.Name] {
			t.Errorf("helper %s twice", h.Name)
		}
		seen[h.Name] = true
	}
}
