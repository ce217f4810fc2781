package source

import (
	"io"
	"strings"
	"testing"

	"github.com/dstream/dstream/stage"
)

// A kind registered by a test, as a broker source would be: replayable by
// a tracker of its own, so it mixes with files under no checkpoint.
func init() {
	Register(&Kind{
		Scheme: "test-broker",
		Open:   func(spec string, _ Opening) (Source, error) { return &list{}, nil },
		NoFollow: func(string) error {
			return stage.UsageError("--follow: a broker is read as it comes anyway")
		},
		Track: func(Opening) (Tracker, error) { return nopTracker{}, nil },
	})
}

// TestResolve: each input finds its kind by its scheme, and the kinds say
// which options they go with.
func TestResolve(t *testing.T) {
	tests := []struct {
		o      Options
		kinds  []string // schemes
		errMsg string   // "" for no error; else a part of it, a usage error
	}{
		{o: Options{Inputs: []string{"-", "a.log", "http://x", "tcp://h:1", "tcp-listen://:1", "unix:///s", "unix-listen:///s"}},
			kinds: []string{"", "", "", "tcp", "tcp-listen", "unix", "unix-listen"}},
		{o: Options{Inputs: []string{"watch://d"}}, kinds: []string{"watch"}},
		{o: Options{Inputs: []string{"a.log", "watch://d"}}, errMsg: "watch://d is read alone"},
		{o: Options{Inputs: []string{"tcp://h:1", "a.log"}, Follow: true}, kinds: []string{"tcp", ""}},
		{o: Options{Inputs: []string{"a.log", "tcp://h:1"}, Follow: true}, errMsg: "a socket is read as it comes anyway"},
		{o: Options{Inputs: []string{"unix-listen:///s"}, Follow: true}, errMsg: "a socket is read as it comes anyway"},
		{o: Options{Inputs: []string{"-"}, Follow: true}, errMsg: "--follow follows the last FILE argument, not stdin"},
		{o: Options{Inputs: []string{"watch://d"}, Follow: true}, errMsg: "--watch reads each file once, whole: it does not go with --follow"},
		{o: Options{Inputs: []string{"a.log", "b.log"}, Checkpoint: "ck"}, kinds: []string{"", ""}},
		{o: Options{Inputs: []string{"a.log", "-"}, Checkpoint: "ck"}, errMsg: "stdin cannot be read again"},
		{o: Options{Inputs: []string{"a.log", "tcp://h:1"}, Checkpoint: "ck"}, errMsg: "--checkpoint replays input files, and tcp://h:1 cannot be read again"},
		{o: Options{Inputs: []string{"watch://d"}, Checkpoint: "ck"}, kinds: []string{"watch"}},
		// A new kind: found by its scheme, checked by what it declares.
		{o: Options{Inputs: []string{"test-broker://t"}, Checkpoint: "ck"}, kinds: []string{"test-broker"}},
		{o: Options{Inputs: []string{"test-broker://t"}, Follow: true}, errMsg: "a broker is read as it comes anyway"},
		{o: Options{Inputs: []string{"a.log", "test-broker://t"}}, kinds: []string{"", "test-broker"}},
		{o: Options{Inputs: []string{"a.log", "test-broker://t"}, Checkpoint: "ck"}, errMsg: "--checkpoint replays inputs of one kind: a.log and test-broker://t are not"},
		// An option of one kind of broker only.
		{o: Options{Inputs: []string{"nats://h:1/S"}, Subject: "a.>"}, kinds: []string{"nats"}},
		{o: Options{Inputs: []string{"kafka://h:1/t"}, Subject: "a.>"}, errMsg: "--subject is not an option of kafka://h:1/t"},
		{o: Options{Inputs: []string{"a.log"}, Subject: "a.>"}, errMsg: "--subject is not an option of a.log"},
	}
	for _, tt := range tests {
		ks, err := resolve(tt.o)
		if tt.errMsg != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errMsg) || exitCode(err) != 2 {
				t.Errorf("%v: got error %v, want a usage error with %q", tt.o, err, tt.errMsg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.o, err)
			continue
		}
		var got []string
		for _, k := range ks {
			got = append(got, k.Scheme)
		}
		if strings.Join(got, ",") != strings.Join(tt.kinds, ",") {
			t.Errorf("%v: kinds %q, want %q", tt.o.Inputs, got, tt.kinds)
		}
	}
}

// A scheme registered twice is a programming error.
func TestRegisterTwice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	Register(&Kind{Scheme: "tcp"})
}

// exitCode is the exit code of a stage whose action fails with err.
func exitCode(err error) int {
	c := &stage.Command{Name: "sbatch", Action: func(*stage.Env) error { return err }}
	return c.Run([]string{"sbatch"}, nil, io.Discard, io.Discard)
}
