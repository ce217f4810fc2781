//go:build unix

package stage

import (
	"os/exec"
	"syscall"
)

// OwnProcessGroup makes cmd, a program a stage runs for a batch (smap
// --exec, ssink --exec), start in a process group of its own. The SIGINT or
// SIGTERM sent to the pipeline's process group (Ctrl-C, systemctl stop,
// kill -- -PGID) then does not kill it in the middle of its batch: the stage
// stops gracefully, and the command finishes the batch in hand with it.
// A forced stop too waits for the batch in hand, so for the command.
func OwnProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// KillProcessGroup kills a command started with OwnProcessGroup and
// whatever it started.
func KillProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
