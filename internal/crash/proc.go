package crash

// Process control: the one place where the harness starts, signals and waits
// for processes.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stageCmd is one stage of a run: the binary's path and arguments, the
// command it runs under (strace, for a fault), and the file its stderr goes
// to.
type stageCmd struct {
	name   string // sbatch, smap, ...: in messages
	path   string
	args   []string
	wrap   []string // a command line the stage runs under, or nil
	stderr string
}

// pipeline is one run of a variant's stages, as a shell runs a pipeline: a
// process each, stdout to the next one's stdin through a pipe, all in one
// process group, so that a kill of the group stops every stage at once.
type pipeline struct {
	stages []stageCmd
	cmds   []*exec.Cmd
	done   []chan struct{} // closed when stage i has exited
	exited chan struct{}   // closed when every stage has exited
	pgid   int
	start  time.Time
}

// startPipeline starts stages in dir; the last one writes to stdout. The
// first stage reads /dev/null (sbatch reads its FILE arguments).
func startPipeline(dir string, stages []stageCmd, stdout *os.File) (*pipeline, error) {
	p := &pipeline{stages: stages, start: time.Now()}
	var prev *os.File // the read end of the pipe from the stage before
	for i, s := range stages {
		argv := append(append(append([]string(nil), s.wrap...), s.path), s.args...)
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
			ef, err = os.Create(filepath.Join(dir, s.stderr))
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
			return nil, fmt.Errorf("starting %s: %w", s.name, err)
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

// running reports whether stage i (any stage, for i < 0) has not exited yet.
func (p *pipeline) running(i int) bool {
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

// kill sends SIGKILL to stage i, or to the whole process group for i < 0,
// and reports whether it hit a process still running.
func (p *pipeline) kill(i int) bool {
	hit := p.running(i)
	if i < 0 {
		syscall.Kill(-p.pgid, syscall.SIGKILL)
	} else {
		p.cmds[i].Process.Kill()
	}
	return hit
}

// terminate sends SIGTERM to stage i itself (not to a strace it runs under).
func (p *pipeline) terminate(i int) error {
	pid, err := p.pid(i)
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGTERM)
}

// wait waits until every stage has exited, at most timeout; it reports
// false, having killed the group, if some had not.
func (p *pipeline) wait(timeout time.Duration) bool {
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

// ok reports whether every stage exited with status 0; call after wait.
func (p *pipeline) ok() bool {
	for _, c := range p.cmds {
		if c.ProcessState == nil || !c.ProcessState.Success() {
			return false
		}
	}
	return len(p.cmds) == len(p.stages)
}

// status describes how each stage ended: "sbatch 0, sreduce killed, ssink 1".
func (p *pipeline) status() string {
	var s []string
	for i, c := range p.cmds {
		st := c.ProcessState
		switch {
		case st == nil:
			s = append(s, p.stages[i].name+" running")
		case st.Sys().(syscall.WaitStatus).Signaled():
			s = append(s, p.stages[i].name+" "+st.Sys().(syscall.WaitStatus).Signal().String())
		default:
			s = append(s, p.stages[i].name+" "+strconv.Itoa(st.ExitCode()))
		}
	}
	return strings.Join(s, ", ")
}

// pid is the process of stage i itself: for a stage run under strace, the
// child strace started.
func (p *pipeline) pid(i int) (int, error) {
	pid := p.cmds[i].Process.Pid
	if p.stages[i].wrap == nil {
		return pid, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s: strace has not started it yet", p.stages[i].name)
	}
	return strconv.Atoi(f[0])
}

// readPos returns how far stage i has read the file path (the offset of its
// open descriptor of it, from /proc/PID/fdinfo); ok is false while it does
// not have the file open.
func (p *pipeline) readPos(i int, path string) (pos int64, ok bool) {
	pid, err := p.pid(i)
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
