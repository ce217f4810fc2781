//go:build unix

package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestMain lets the test binary stand in for a second stage holding a
// checkpoint: with DSTREAM_LOCK_HELPER=DIR it opens DIR's offsets, says so
// and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DSTREAM_LOCK_HELPER"); dir != "" {
		if _, err := OpenLog(dir, OffsetsDir); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		select {}
	}
	os.Exit(m.Run())
}

// TestLockOtherProcess: a second process is refused while the first holds
// the part, named by its pid, and admitted once the first is killed (the
// kernel drops the lock of a crashed process).
func TestLockOtherProcess(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DSTREAM_LOCK_HELPER="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	_, err = OpenLog(root, OffsetsDir)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrInUse) || inUse.PID != cmd.Process.Pid {
		t.Fatalf("second open: %v, want in use by pid %d", err, cmd.Process.Pid)
	}
	want := fmt.Sprintf("checkpoint %s is in use (pid %d): another process writes its offsets", root, cmd.Process.Pid)
	if err.Error() != want {
		t.Errorf("message %q\nwant %q", err, want)
	}
	// Other parts of the directory are free.
	if _, err := OpenLog(root, CommitsDir); err != nil {
		t.Errorf("commits: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := OpenLog(root, OffsetsDir); err != nil {
		t.Errorf("after the holder died: %v", err)
	}
}

func TestID(t *testing.T) {
	root := t.TempDir() + "/ck"
	a, err := ID(root)
	if err != nil || len(a) != 32 {
		t.Fatalf("ID: %q, %v", a, err)
	}
	if b, err := ID(root); err != nil || b != a {
		t.Errorf("again: %q, %v; want %q", b, err, a)
	}
	if b, err := ID(t.TempDir()); err != nil || b == a {
		t.Errorf("another directory: %q, %v", b, err)
	}
}
