package stage

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
)

// startProfile starts a CPU profile when DSTREAM_CPUPROFILE names a
// directory (a developer's tool: docs/development.md): each stage writes
// DIR/STAGE-PID.pprof, so that every stage of one pipeline can be profiled
// in one run. The returned function stops it; it is a no-op without the
// variable.
func startProfile(name string) func() {
	dir := os.Getenv("DSTREAM_CPUPROFILE")
	if dir == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s/%s-%d.pprof", strings.TrimRight(dir, "/"), name, os.Getpid())
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: note: DSTREAM_CPUPROFILE: %v\n", name, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
