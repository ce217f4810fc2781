package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrInUse reports a part of a checkpoint directory that another process
// holds: a second run of the same pipeline (an overlapping cron job, a
// second service instance) is refused, not interleaved with the first.
var ErrInUse = errors.New("checkpoint: in use")

// InUseError names the directory and the process that holds it.
type InUseError struct {
	Root string // the checkpoint directory
	Part string // the part held: offsets, commits, state/NAME
	PID  int    // the holder's process id, 0 if unknown
}

func (e *InUseError) Error() string {
	pid := "pid unknown"
	if e.PID > 0 {
		pid = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("checkpoint %s is in use (%s): another process writes its %s", e.Root, pid, e.Part)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// Hint is the advice printed under the error.
func (e *InUseError) Hint() string {
	return "a checkpoint belongs to one running pipeline: wait for the other run to end (or stop it), or give this one another --checkpoint directory"
}

// lockName is the lock file in each part's directory; a leading dot keeps
// it out of the entries.
const lockName = ".lock"

// held keeps the locks this process holds, by the directory they lock, for
// the life of the process: the kernel releases them when it exits or
// crashes. A process opening a part again (tests that run a stage twice in
// one process) holds it already.
var (
	heldMu sync.Mutex
	held   = map[string]*os.File{}
)

// lockDir takes the lock of the part dir (a directory under root) for the
// life of the process, and writes the process id into the lock file for
// the message a second process gets.
func lockDir(root, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if held[abs] != nil {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	switch err := flock(f); {
	case errors.Is(err, errLocked):
		b, _ := os.ReadFile(f.Name())
		f.Close()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		part, _ := filepath.Rel(root, dir)
		return &InUseError{Root: root, Part: filepath.ToSlash(part), PID: pid}
	case err != nil:
		f.Close()
		return fmt.Errorf("checkpoint: locking %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	held[abs] = f
	return nil
}
