package crash

// Fault injection: a stage run under strace, which makes one of its system
// calls fail.

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// straceWrap is the command line that runs a stage with the k-th call of
// syscalls (a comma-separated set) failing with EIO, counting only the
// calls on path if it is not "", and logging the calls to log.
func straceWrap(syscalls string, k int, path, log string) []string {
	w := []string{"strace", "-f", "-qq", "--seccomp-bpf", "-o", log}
	if path != "" {
		w = append(w, "-P", path)
	}
	return append(w, "-e", "trace="+syscalls, "-e", fmt.Sprintf("inject=%s:error=EIO:when=%d", syscalls, k))
}

// straceWorks reports why fault injection cannot run here, or nil: strace
// missing, or ptrace not permitted (a container without CAP_SYS_PTRACE).
func straceWorks() error {
	path, err := exec.LookPath("strace")
	if err != nil {
		return errors.New("strace is not installed (scripts/install.sh installs it)")
	}
	out, err := exec.Command(path, "-f", "-qq", "-o", "/dev/null", "-e", "inject=fsync:error=EIO:when=1", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("strace cannot trace here (%v): %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
