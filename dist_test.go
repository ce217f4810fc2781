package dstream_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSystemdUnit checks that dist/systemd/dstream@.service parses as
// systemd reads it, with no error and no warning (an unknown or misspelt
// key is only a warning to systemd, and ignored), where systemd-analyze
// is installed. The man pages of Documentation= are not looked for: they
// are installed by scripts/install.sh, not by the test.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "dist/systemd/dstream@.service").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify dist/systemd/dstream@.service: %v\n%s", err, out)
	}
}
