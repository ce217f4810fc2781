// Package procgroup runs a pipeline of the stages' binaries as a shell
// does, a process each joined by pipes, in a process group of its own, for
// the harnesses that crash pipelines and check what they leave behind
// (internal/crash, internal/scale): the one place where they start, signal
// and wait for processes.
package procgroup

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stage is one stage of a pipeline: the binary's path and arguments, the
// command it runs under (strace, for a fault), and the file its stderr goes
// to.
type Stage struct {
	Name   string // sbatch, smap, ...: in messages
	Path   string
	Args   []string
	Wrap   []string // a command line the stage runs under, or nil
	Stderr string   // the file its stderr goes to, relative to the pipeline's directory
}

// Pipeline is one run of stages, as a shell runs a pipeline: a
// process each, stdout to the next one's stdin through a pipe, all in one
// process group, so that a kill of the group stops every stage at once.
type Pipeline struct {
	stages []Stage
	cmds   []*exec.Cmd
	done   []chan struct{} // closed when stage i has exited
	exited chan struct{}   // closed when every stage has exited
	pgid   int
	start  time.Time
}

// Start starts stages in dir; the last one writes to stdout. The first
// stage reads /dev/null (sbatch reads its FILE arguments).
func Start(dir string, stages []Stage, stdout *os.File) (*Pipeline, error) {
	p := &Pipeline{stages: stages, start: time.Now()}
	var prev *os.File // the read end of the pipe from the stage before
	for i, s := range stages {
		argv := append(append(append([]string(nil), s.Wrap...), s.Path), s.Args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: p.pgid}
		if prev != nil {
			cmd.Stdin = prev
		}
		var r, w *os.File
		var err error
		if i == len(stages)-1 {
			cmd.Stdout = stdout
		} else if r, w, err = os.Pipe(); err == nil {
			cmd.Stdout = w
		}
		var ef *os.File
		if err == nil {
			ef, err = os.Create(filepath.Join(dir, s.Stderr))
		}
		if err == nil {
			cmd.Stderr = ef
			err = cmd.Start()
			ef.Close()
		}
		// The parent keeps no pipe ends: a stage sees the end of its input,
		// or EPIPE on its output, as soon as its neighbour is gone.
		for _, f := range []*os.File{prev, w} {
			if f != nil {
				f.Close()
			}
		}
		prev = r
		if err != nil {
			if r != nil {
				r.Close()
			}
			if p.pgid != 0 {
				syscall.Kill(-p.pgid, syscall.SIGKILL)
				for _, c := range p.cmds {
					c.Wait()
				}
			}
			return nil, fmt.Errorf("starting %s: %w", s.Name, err)
		}
		if p.pgid == 0 {
			p.pgid = cmd.Process.Pid
		}
		p.cmds = append(p.cmds, cmd)
	}
	// Only now are the stages waited for: an unreaped leader, even one that
	// has exited, keeps the process group there for the stages after it to
	// join (setpgid fails with EPERM once the group is gone).
	for _, cmd := range p.cmds {
		done := make(chan struct{})
		p.done = append(p.done, done)
		go func() { cmd.Wait(); close(done) }()
	}
	p.exited = make(chan struct{})
	go func() {
		for _, d := range p.done {
			<-d
		}
		close(p.exited)
	}()
	return p, nil
}

// Running reports whether stage i (any stage, for i < 0) has not exited yet.
func (p *Pipeline) Running(i int) bool {
	for j, d := range p.done {
		if i >= 0 && j != i {
			continue
		}
		select {
		case <-d:
		default:
			return true
		}
	}
	return false
}

// Kill sends SIGKILL to stage i, or to the whole process group for i < 0,
// and reports whether it hit a process still running. A group whose
// processes have all exited is not signalled: its id may be another's by
// now.
func (p *Pipeline) Kill(i int) bool {
	hit := p.Running(i)
	if i < 0 {
		if !hit {
			return false
		}
		syscall.Kill(-p.pgid, syscall.SIGKILL)
	} else {
		p.cmds[i].Process.Kill()
	}
	return hit
}

// Terminate sends SIGTERM to stage i itself (not to a strace it runs under).
func (p *Pipeline) Terminate(i int) error {
	pid, err := p.PID(i)
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGTERM)
}

// Wait waits until every stage has exited, at most timeout; it reports
// false, having killed the group, if some had not.
func (p *Pipeline) Wait(timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		syscall.Kill(-p.pgid, syscall.SIGKILL)
		for _, d := range p.done {
			<-d
		}
		return false
	}
}

// OK reports whether every stage exited with status 0; call after Wait.
func (p *Pipeline) OK() bool {
	for _, c := range p.cmds {
		if c.ProcessState == nil || !c.ProcessState.Success() {
			return false
		}
	}
	return len(p.cmds) == len(p.stages)
}

// Status describes how each stage ended: "sbatch 0, sreduce killed, ssink 1".
func (p *Pipeline) Status() string {
	var s []string
	for i, c := range p.cmds {
		st := c.ProcessState
		switch {
		case st == nil:
			s = append(s, p.stages[i].Name+" running")
		case st.Sys().(syscall.WaitStatus).Signaled():
			s = append(s, p.stages[i].Name+" "+st.Sys().(syscall.WaitStatus).Signal().String())
		default:
			s = append(s, p.stages[i].Name+" "+strconv.Itoa(st.ExitCode()))
		}
	}
	return strings.Join(s, ", ")
}

// PID is the process of stage i itself: for a stage run under strace, the
// child strace started.
func (p *Pipeline) PID(i int) (int, error) {
	pid := p.cmds[i].Process.Pid
	if p.stages[i].Wrap == nil {
		return pid, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: strace has not started it yet", p.stages[i].Name)
	}
	return strconv.Atoi(f[0])
}

// ReadPos returns how far stage i has read the file path (the offset of its
// open descriptor of it, from /proc/PID/fdinfo); ok is false while it does
// not have the file open.
func (p *Pipeline) ReadPos(i int, path string) (pos int64, ok bool) {
	pid, err := p.PID(i)
	if err != nil {
		return 0, false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, false
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err != nil || l != path {
			continue
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			return 0, false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, found := strings.CutPrefix(sc.Text(), "pos:"); found {
				pos, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return pos, err == nil
			}
		}
	}
	return 0, false
}

// Exited is closed when every stage has exited.
func (p *Pipeline) Exited() <-chan struct{} { return p.exited }

// Started is when the pipeline was started.
func (p *Pipeline) Started() time.Time { return p.start }

// FirstErrors returns the first error line of each stage's stderr, as
// "; sbatch: error: ...".
func (p *Pipeline) FirstErrors(dir string) string {
	var s string
	for _, st := range p.stages {
		b, _ := os.ReadFile(filepath.Join(dir, st.Stderr))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "error:") {
				s += "; " + l
				break
			}
		}
	}
	return s
}

// Stop sends SIGTERM to every process of the pipeline at once, as
// systemctl stop does to a unit's control group: a graceful stop.
func (p *Pipeline) Stop() {
	if p.Running(-1) {
		syscall.Kill(-p.pgid, syscall.SIGTERM)
	}
}
