//go:build !unix

package stage

import "os/exec"

// OwnProcessGroup does nothing where there are no process groups.
func OwnProcessGroup(*exec.Cmd) {}

// KillProcessGroup kills the command.
func KillProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}
