//go:build unix

package stage

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
)

// TestOpenInput: a FIFO, a file and a listening endpoint as inputs beside
// the main one. The FIFO's writer opens it only after the stage has begun
// reading, as a tee'd upstream does.
func TestOpenInput(t *testing.T) {
	dir := t.TempDir()
	stream := func(tag string) []byte {
		return frametest.Stream(t, []frametest.Batch{{ID: 0, Time: 1000, Recs: []string{`{"in":"` + tag + `"}`}}})
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, stream("file"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")

	var buf bytes.Buffer
	e := &Env{Name: "union", Out: framing.NewWriter(&buf), In: framing.NewReader(bytes.NewReader(stream("main")))}
	defer e.close()
	ins := []Input{e.MainInput()}
	for _, spec := range []string{fifo, file, "unix-listen://" + sock} {
		in, err := e.OpenInput(spec)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.Write(stream("fifo"))
		f.Close()
	}()
	go func() {
		for range 100 {
			c, err := net.Dial("unix", sock)
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			c.Write(stream("socket"))
			c.Close()
			return
		}
	}()
	u := newUnion(e.Out, len(ins))
	done := make(chan error, 1)
	go func() { done <- e.LoopInputs(ins, u) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoopInputs did not return")
	}
	want := `0@1000 0:0 1:0 2:0 3:0: {"in":"main"} {"in":"fifo"} {"in":"file"} {"in":"socket"}`
	if got := strings.Join(u.trace, "\n"); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if ins[0].Name != "stdin" || ins[1].Name != fifo {
		t.Fatalf("names %q, %q", ins[0].Name, ins[1].Name)
	}
}

func TestOpenInputMissing(t *testing.T) {
	e := &Env{Name: "union"}
	_, err := e.OpenInput(filepath.Join(t.TempDir(), "nothing"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error %v", err)
	}
	if hintOf(err) == "" {
		t.Fatal("no hint")
	}
	if _, err := e.OpenInput("tcp-listen://no-port"); err == nil {
		t.Fatal("a bad endpoint is accepted")
	}
}
